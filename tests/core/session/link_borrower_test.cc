// LinkBorrower (core/session/link_borrower.h) on its own, against the fake
// link pool and store links (fake_store_link.h) and a host that records what
// it hears: borrowing (warm, waited for, refused, failed, answered after the
// device went away), the steps that bring a lent link to what a job needs,
// the lent link's bookkeeping, and giving a link back or losing it. The
// driver's use of it is device_driver_pool_test.cc's.
#include "core/session/link_borrower.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;
using testing::FakeLinkPool;
using testing::FakeStoreLink;
using ::testing::IsEmpty;

// The driver's side: records each call as a line of calls().
class FakeHost final : public LinkBorrower::Host {
 public:
  // StoreLinkClient: a host is the link's client; nothing here reads it.
  void OnStoreBytes(absl::string_view) override {}
  void OnStoreResponseEnd(absl::string_view) override {}
  void OnStoreDrained() override {}
  void OnStoreClosed(absl::Status) override {}
  // LinkBorrower::Host
  StoreCredentials LinkCredentials() const override {
    return {"alice", password, ""};
  }
  bool StorePasswordRejected() const override { return password_rejected; }
  void OnStoreLoginRejected(const std::string& p) override {
    calls.push_back(absl::StrCat("OnStoreLoginRejected(", p, ")"));
  }
  void FromOutside(absl::FunctionRef<void()> call) override {
    calls.push_back("FromOutside {");
    call();
    calls.push_back("}");
  }
  void OnLinkBorrowed() override { calls.push_back("OnLinkBorrowed"); }
  void OnNoLink(const absl::Status& pool_error,
                absl::string_view why) override {
    calls.push_back(absl::StrCat("OnNoLink(", pool_error.ok() ? "ok" : "error",
                                 ", ", why, ")"));
  }

  std::string password = "secret";
  bool password_rejected = false;
  std::vector<std::string> calls;
};

class LinkBorrowerTest : public ::testing::Test {
 protected:
  static constexpr int64_t kTimeoutMs = 2500;

  void Acquire() { links_.Acquire(&host_, &pool_, kTimeoutMs, alive_); }

  // An idle link of alice's with QRESYNC on and `folder` selected (read-write
  // unless `read_only`), synchronised up to `events`.
  PooledLink* Warm(const std::string& folder, bool read_only = false,
                   uint64_t events = 0) {
    PooledLink p;
    p.selected_folder = folder;
    p.read_only = read_only;
    p.qresync_enabled = true;
    p.synced_events = events;
    return pool_.AddIdle(p);
  }

  static LinkNeed Need(const std::string& folder, bool read_only = false,
                       uint64_t events = 0) {
    LinkNeed need;
    need.folder = folder;
    need.read_only = read_only;
    need.events = events;
    return need;
  }

  FakeHost host_;
  FakeLinkPool pool_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  LinkBorrower links_;
};

TEST_F(LinkBorrowerTest, HoldsNothingAtFirst) {
  EXPECT_EQ(links_.link(), nullptr);
  EXPECT_EQ(links_.lent(), nullptr);
  EXPECT_FALSE(links_.acquiring());
  EXPECT_FALSE(links_.reading_paused());
}

TEST_F(LinkBorrowerTest, AWarmLinkIsLentAtOnce) {
  PooledLink* warm = Warm("INBOX");
  FakeStoreLink* store = pool_.fake(warm);
  store->SetReading(false);
  Acquire();
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  EXPECT_THAT(host_.calls, ElementsAre("OnLinkBorrowed"));
  EXPECT_EQ(links_.lent(), warm);
  EXPECT_EQ(links_.link(), store);
  EXPECT_EQ(store->client(), &host_);
  EXPECT_TRUE(store->reading());
  EXPECT_FALSE(links_.acquiring());
}

TEST_F(LinkBorrowerTest, WithoutAWarmLinkThePoolIsAskedOnce) {
  pool_.try_borrow_hits = false;
  Acquire();
  Acquire();  // one borrow at a time
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  EXPECT_TRUE(links_.acquiring());
  EXPECT_THAT(host_.calls, IsEmpty());
  PooledLink* lent = pool_.CompleteBorrow();
  // The pool's answer comes from outside: the host holds itself around it.
  EXPECT_THAT(host_.calls, ElementsAre("FromOutside {", "OnLinkBorrowed", "}"));
  EXPECT_FALSE(links_.acquiring());
  EXPECT_EQ(links_.lent(), lent);
  EXPECT_EQ(pool_.fake(lent)->client(), &host_);
}

TEST_F(LinkBorrowerTest, NoPoolNoLink) {
  links_.Acquire(&host_, nullptr, kTimeoutMs, alive_);
  EXPECT_THAT(host_.calls,
              ElementsAre("OnNoLink(ok, The connection to the message store "
                          "is gone)"));
  EXPECT_FALSE(links_.acquiring());
}

TEST_F(LinkBorrowerTest, ARejectedPasswordIsNotTriedAgain) {
  host_.password_rejected = true;
  pool_.try_borrow_hits = false;
  Acquire();
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> none"));
  EXPECT_THAT(host_.calls,
              ElementsAre("OnNoLink(ok, The message store rejected the "
                          "password; log in again)"));
  EXPECT_FALSE(links_.acquiring());
}

TEST_F(LinkBorrowerTest, AWarmLinkIsLentEvenWithARejectedPassword) {
  // It is logged in already: lending it costs the store no login.
  host_.password_rejected = true;
  Warm("INBOX");
  Acquire();
  EXPECT_THAT(host_.calls, ElementsAre("OnLinkBorrowed"));
}

TEST_F(LinkBorrowerTest, ThePoolsRefusalIsReported) {
  pool_.try_borrow_hits = false;
  Acquire();
  pool_.FailBorrow(absl::UnavailableError("timeout"));
  EXPECT_THAT(host_.calls,
              ElementsAre("FromOutside {",
                          "OnNoLink(error, The message store is not "
                          "available; try again later)",
                          "}"));
  EXPECT_FALSE(links_.acquiring());
  EXPECT_EQ(links_.link(), nullptr);
}

TEST_F(LinkBorrowerTest, TheStoresRefusalOfThePasswordIsRecorded) {
  pool_.try_borrow_hits = false;
  Acquire();
  host_.password = "changed meanwhile";  // the borrow's own password counts
  pool_.FailBorrow(absl::UnauthenticatedError("no"));
  EXPECT_THAT(host_.calls,
              ElementsAre("FromOutside {", "OnStoreLoginRejected(secret)",
                          "OnNoLink(error, The message store is not "
                          "available; try again later)",
                          "}"));
}

TEST_F(LinkBorrowerTest, ALinkLentAfterTheDeviceWentGoesStraightBack) {
  pool_.try_borrow_hits = false;
  Acquire();
  alive_.reset();
  PooledLink* lent = pool_.CompleteBorrow();
  EXPECT_THAT(host_.calls, IsEmpty());
  EXPECT_EQ(pool_.state(lent), FakeLinkPool::State::kIdle);
  EXPECT_THAT(pool_.violations(), IsEmpty());
}

TEST_F(LinkBorrowerTest, AFreshLinkIsEnabledSelectedAndSynced) {
  pool_.try_borrow_hits = false;
  Acquire();
  pool_.CompleteBorrow();  // a new login: nothing enabled or selected
  LinkNeed need = Need("Work", false, /*events=*/3);
  EXPECT_TRUE(links_.Behind(need));
  LinkStep step = links_.NextStep(need);
  EXPECT_EQ(step.job, DeviceJob::kLinkEnable);
  EXPECT_EQ(step.command, "ENABLE QRESYNC");
  links_.OnSent(3);
  links_.OnCompleted();
  links_.StepDone(step.job, "", false);
  EXPECT_TRUE(links_.lent()->qresync_enabled);
  // ENABLE caught the link up already (a completed command shows every event
  // received when it went).
  EXPECT_EQ(links_.lent()->synced_events, 3u);
  step = links_.NextStep(need);
  EXPECT_EQ(step.job, DeviceJob::kLinkSelect);
  EXPECT_EQ(step.command, "SELECT \"Work\"");
  EXPECT_EQ(step.folder, "Work");
  links_.StepDone(step.job, step.folder, false);
  EXPECT_EQ(links_.lent()->selected_folder, "Work");
  EXPECT_FALSE(links_.Behind(need));
  EXPECT_EQ(links_.NextStep(need).job, DeviceJob::kNone);
}

TEST_F(LinkBorrowerTest, TheJobThatEnablesNeedsNoEnableFirst) {
  pool_.try_borrow_hits = false;
  Acquire();
  pool_.CompleteBorrow();
  LinkNeed need;
  need.qresync = false;
  EXPECT_FALSE(links_.Behind(need));
  EXPECT_EQ(links_.NextStep(need).job, DeviceJob::kNone);
}

TEST_F(LinkBorrowerTest, ReadOnlyIsSelectedAnewWithExamine) {
  Warm("INBOX");
  Acquire();
  LinkNeed need = Need("INBOX", /*read_only=*/true);
  EXPECT_TRUE(links_.Behind(need));
  LinkStep step = links_.NextStep(need);
  EXPECT_EQ(step.job, DeviceJob::kLinkSelect);
  EXPECT_EQ(step.command, "EXAMINE \"INBOX\"");
  // Until the EXAMINE completes, nothing is known to be selected: a failed
  // one leaves the link in no folder.
  EXPECT_EQ(links_.lent()->selected_folder, "");
  links_.StepDone(step.job, step.folder, true);
  EXPECT_EQ(links_.lent()->selected_folder, "INBOX");
  EXPECT_TRUE(links_.lent()->read_only);
  EXPECT_EQ(links_.NextStep(need).job, DeviceJob::kNone);
}

TEST_F(LinkBorrowerTest, TheSelectCarriesTheViewsQresync) {
  Warm("INBOX");
  Acquire();
  LinkNeed need = Need("Work");
  need.select_qresync = " (QRESYNC (7 120))";
  EXPECT_EQ(links_.NextStep(need).command, "SELECT \"Work\" (QRESYNC (7 120))");
}

TEST_F(LinkBorrowerTest, ALinkBehindTheEventsCatchesUpWithANoop) {
  Warm("INBOX", false, /*events=*/4);
  Acquire();
  LinkNeed need = Need("INBOX", false, /*events=*/6);
  EXPECT_TRUE(links_.Behind(need));
  LinkStep step = links_.NextStep(need);
  EXPECT_EQ(step.job, DeviceJob::kLinkSync);
  EXPECT_EQ(step.command, "NOOP");
  // The NOOP completes: the link shows what had come when it went.
  links_.OnSent(6);
  links_.OnCompleted();
  links_.StepDone(step.job, "", false);
  EXPECT_FALSE(links_.Behind(need));
  // A job that is the catch-up itself does not wait for it.
  need.events = 9;
  need.synced = false;
  EXPECT_FALSE(links_.Behind(need));
  // Nothing to catch up in no folder.
  EXPECT_FALSE(links_.Behind(Need("", false, 9)));
}

TEST_F(LinkBorrowerTest, ACompletedCommandNeverMovesTheSyncBack) {
  Warm("INBOX", false, /*events=*/8);
  Acquire();
  links_.OnSent(5);
  links_.OnCompleted();
  EXPECT_EQ(links_.lent()->synced_events, 8u);
}

TEST_F(LinkBorrowerTest, TheDevicesOwnCommandsAreRecordedOnTheLentLink) {
  pool_.try_borrow_hits = false;
  Acquire();
  pool_.CompleteBorrow();
  links_.QresyncEnabled();
  links_.Selected("Work", true);
  EXPECT_TRUE(links_.lent()->qresync_enabled);
  EXPECT_EQ(links_.lent()->selected_folder, "Work");
  EXPECT_TRUE(links_.lent()->read_only);
  links_.ForgetSelected();
  EXPECT_EQ(links_.lent()->selected_folder, "");
}

TEST_F(LinkBorrowerTest, ALinkOfItsOwnIsAlwaysInState) {
  FakeStoreLink own;
  links_.Adopt(nullptr, {"alice", "secret", ""}, &own, &host_);
  EXPECT_EQ(links_.link(), &own);
  EXPECT_EQ(links_.lent(), nullptr);
  EXPECT_EQ(own.client(), &host_);
  EXPECT_FALSE(links_.Behind(Need("Work", true, 100)));
  EXPECT_EQ(links_.NextStep(Need("Work", true, 100)).job, DeviceJob::kNone);
  // Bookkeeping without a lent link changes nothing, and fails nothing.
  links_.Selected("Work", true);
  links_.ForgetSelected();
  links_.OnCompleted();
  // Gone with the device: closed, no pool involved.
  links_.Detach(nullptr, true);
  EXPECT_TRUE(own.closed());
  EXPECT_EQ(links_.link(), nullptr);
}

TEST_F(LinkBorrowerTest, TheLoginLinkIsAdoptedIntoThePool) {
  FakeStoreLink login;
  links_.Adopt(&pool_, {"alice", "secret", ""}, &login, &host_);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Adopt(alice) -> L1"));
  EXPECT_EQ(links_.lent(), pool_.pooled("L1"));
  EXPECT_EQ(links_.link(), &login);
  links_.Return(&pool_, true);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_EQ(links_.link(), nullptr);
  EXPECT_EQ(links_.lent(), nullptr);
}

TEST_F(LinkBorrowerTest, APoolShuttingDownLeavesTheLoginLinkTheDevices) {
  pool_.refuse_adopt = true;
  FakeStoreLink login;
  links_.Adopt(&pool_, {"alice", "secret", ""}, &login, &host_);
  EXPECT_EQ(links_.lent(), nullptr);
  EXPECT_EQ(links_.link(), &login);
  links_.Return(&pool_, true);  // nothing lent: nothing to give back
  EXPECT_EQ(links_.link(), &login);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Adopt(alice) -> none"));
}

TEST_F(LinkBorrowerTest, ReadingPausesAndResumesOnce) {
  EXPECT_FALSE(links_.PauseReading());  // no link: nothing to pause
  Warm("INBOX");
  Acquire();
  FakeStoreLink* store = pool_.fake(links_.lent());
  EXPECT_TRUE(links_.PauseReading());
  EXPECT_FALSE(store->reading());
  EXPECT_TRUE(links_.reading_paused());
  EXPECT_FALSE(links_.PauseReading());
  EXPECT_TRUE(links_.ResumeReading());
  EXPECT_TRUE(store->reading());
  EXPECT_FALSE(links_.ResumeReading());
}

TEST_F(LinkBorrowerTest, AReturnedLinkIsNoLongerPaused) {
  Warm("INBOX");
  Acquire();
  PooledLink* lent = const_cast<PooledLink*>(links_.lent());
  links_.PauseReading();
  links_.Return(&pool_, true);
  EXPECT_FALSE(links_.reading_paused());
  EXPECT_EQ(pool_.state(lent), FakeLinkPool::State::kIdle);
  EXPECT_TRUE(pool_.fake(lent)->reading());
}

TEST_F(LinkBorrowerTest, ALinkInTheMiddleOfACommandIsClosedOnDetach) {
  Warm("INBOX");
  Acquire();
  PooledLink* lent = const_cast<PooledLink*>(links_.lent());
  links_.Detach(&pool_, /*reusable=*/false);
  EXPECT_EQ(pool_.state(lent), FakeLinkPool::State::kClosed);
  EXPECT_EQ(links_.link(), nullptr);
  EXPECT_EQ(links_.lent(), nullptr);
}

TEST_F(LinkBorrowerTest, ALostLinkIsForgottenAndThePoolTold) {
  Warm("INBOX");
  Acquire();
  PooledLink* lent = const_cast<PooledLink*>(links_.lent());
  links_.PauseReading();
  pool_.TakeCalls();
  links_.OnLinkClosed(&pool_);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Lost(L1)"));
  EXPECT_EQ(pool_.state(lent), FakeLinkPool::State::kLost);
  EXPECT_EQ(links_.link(), nullptr);
  EXPECT_EQ(links_.lent(), nullptr);
  // Nothing is read any more, so nothing is paused: the device may hibernate.
  EXPECT_FALSE(links_.reading_paused());
  Warm("INBOX");
  Acquire();
  EXPECT_FALSE(links_.reading_paused());
  EXPECT_THAT(pool_.violations(), IsEmpty());
}

}  // namespace
}  // namespace pimap::session
