// Tests for store::LinkPool with a fake StoreConnector and fake StoreLinks (no
// sockets); time is a TimerWheel advanced by hand. Every step checks the pool's
// gauges against what it should hold.
#include "store/link_pool.h"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "core/base/log.h"
#include "gtest/gtest.h"

namespace pimap::store {
namespace {

using session::PooledLink;
using session::StoreCredentials;
using session::StoreLink;
using session::StoreLinkClient;

class FakeLink final : public StoreLink {
 public:
  explicit FakeLink(StoreCredentials c) : credentials(std::move(c)) {}
  void SetClient(StoreLinkClient* c) override { client = c; }
  void Send(absl::string_view bytes) override {
    sent.append(bytes.data(), bytes.size());
  }
  size_t PendingOutput() const override { return 0; }
  void SetReading(bool on) override { reading = on; }
  const std::vector<std::string>& capabilities() const override {
    return capabilities_;
  }
  void Close() override {
    EXPECT_FALSE(gone) << "Close() on a link the store had closed";
    EXPECT_FALSE(closed) << "Close() twice";
    closed = true;
    client = nullptr;
  }
  // The store drops the connection: the client hears OnStoreClosed, after
  // which the link object is gone (the fake keeps it for inspection).
  void DropFromStore() {
    ASSERT_NE(client, nullptr);
    gone = true;
    StoreLinkClient* c = client;
    client = nullptr;
    c->OnStoreClosed(absl::UnavailableError("store closed the connection"));
  }

  StoreCredentials credentials;
  StoreLinkClient* client = nullptr;
  std::string sent;
  bool reading = true;
  bool closed = false;
  bool gone = false;

 private:
  std::vector<std::string> capabilities_ = {"IMAP4REV1"};
};

class FakeConnector final : public session::StoreConnector {
 public:
  void Login(const StoreCredentials& credentials,
             LoginCallback done) override {
    ++logins;
    if (sync_result.has_value()) {  // Answer inside Login().
      if (sync_result->ok()) {
        done(NewLink(credentials));
      } else {
        done(*sync_result);
      }
      return;
    }
    pending.push_back(Pending{credentials, std::move(done)});
  }
  // Completes the oldest pending login successfully.
  FakeLink* Succeed() {
    EXPECT_FALSE(pending.empty());
    if (pending.empty()) return nullptr;
    Pending p = std::move(pending.front());
    pending.pop_front();
    FakeLink* link = NewLink(p.credentials);
    p.done(link);
    return link;
  }
  void Refuse(absl::Status status) {
    ASSERT_FALSE(pending.empty());
    Pending p = std::move(pending.front());
    pending.pop_front();
    p.done(std::move(status));
  }

  struct Pending {
    StoreCredentials credentials;
    LoginCallback done;
  };
  std::deque<Pending> pending;
  std::vector<std::unique_ptr<FakeLink>> links;  // every link ever opened
  int logins = 0;
  std::optional<absl::Status> sync_result;  // set: Login answers at once

 private:
  FakeLink* NewLink(const StoreCredentials& credentials) {
    links.push_back(std::make_unique<FakeLink>(credentials));
    return links.back().get();
  }
};

StoreCredentials User(const std::string& user,
                      const std::string& password = "secret-pw") {
  return StoreCredentials{user, password, ""};
}
StoreCredentials Master(const std::string& authzid) {
  return StoreCredentials{"master", "master-pw", authzid};
}

// What a Borrow() callback received.
struct Outcome {
  int calls = 0;
  absl::StatusOr<PooledLink*> value = absl::UnknownError("not called");
  PooledLink* link() const { return value.ok() ? *value : nullptr; }
};

class LinkPoolTest : public ::testing::Test {
 protected:
  void MakePool(size_t max_links, int64_t idle_ms = 30000) {
    pool_ = std::make_unique<LinkPool>(&connector_, &timers_, &counters_,
                                       LinkPoolConfig{max_links, idle_ms});
  }

  void Advance(int64_t ms) {
    now_ += ms;
    timers_.Advance(now_);
  }

  // Borrow(), checking that `done` did not run inside it.
  std::shared_ptr<Outcome> Borrow(const StoreCredentials& credentials,
                                  int64_t timeout_ms = 5000) {
    auto outcome = std::make_shared<Outcome>();
    pool_->Borrow(credentials, timeout_ms,
                  [outcome](absl::StatusOr<PooledLink*> v) {
                    ++outcome->calls;
                    outcome->value = std::move(v);
                  });
    EXPECT_EQ(outcome->calls, 0) << "done ran inside Borrow()";
    return outcome;
  }

  // Borrow through a new login, completed at once; returns the lent link.
  PooledLink* LendNew(const StoreCredentials& credentials) {
    const int logins = connector_.logins;
    auto outcome = Borrow(credentials);
    EXPECT_EQ(connector_.logins, logins + 1);
    connector_.Succeed();
    EXPECT_EQ(outcome->calls, 0) << "done ran inside the login callback";
    Advance(0);
    EXPECT_EQ(outcome->calls, 1);
    EXPECT_TRUE(outcome->value.ok()) << outcome->value.status();
    return outcome->link();
  }

  FakeLink* Fake(PooledLink* p) { return static_cast<FakeLink*>(p->link); }

  void ExpectGauges(int64_t open, int64_t busy, int64_t idle,
                    int64_t waiters) {
    EXPECT_EQ(counters_.store_links_open.load(), open);
    EXPECT_EQ(counters_.store_links_busy.load(), busy);
    EXPECT_EQ(counters_.store_links_idle.load(), idle);
    EXPECT_EQ(counters_.store_link_waiters.load(), waiters);
    EXPECT_EQ(open, busy + idle);
    EXPECT_EQ(pool_->busy_links(), static_cast<size_t>(busy));
    EXPECT_EQ(pool_->idle_links(), static_cast<size_t>(idle));
    EXPECT_EQ(pool_->waiters(), static_cast<size_t>(waiters));
  }

  uint64_t WaitHistogramCount() const {
    uint64_t n = 0;
    for (const auto& b : counters_.store_link_wait.buckets) n += b.load();
    return n;
  }

  int64_t now_ = 0;
  TimerWheel timers_{0};
  ShardCounters counters_;
  FakeConnector connector_;
  std::unique_ptr<LinkPool> pool_;  // destroyed first
};

TEST_F(LinkPoolTest, ReusesTheIdleLinkOfTheSameIdentity) {
  MakePool(10);
  PooledLink* first = LendNew(User("alice"));
  ASSERT_NE(first, nullptr);
  ExpectGauges(1, 1, 0, 0);
  EXPECT_EQ(Fake(first)->credentials.user, "alice");
  // The borrower records the store-side state it leaves behind.
  first->link->SetClient(nullptr);
  first->link->SetReading(false);
  first->selected_folder = "INBOX";
  first->qresync_enabled = true;
  first->highest_modseq = 42;
  pool_->Return(first, /*reusable=*/true);
  ExpectGauges(1, 0, 1, 0);
  EXPECT_FALSE(Fake(first)->closed);
  // The pool is the client of its idle link, and reads from it.
  EXPECT_NE(Fake(first)->client, nullptr);
  EXPECT_TRUE(Fake(first)->reading);

  auto again = Borrow(User("alice", "another-password"));
  EXPECT_EQ(connector_.logins, 1);  // no new login
  ExpectGauges(1, 1, 0, 0);         // reserved for the borrower already
  Advance(0);
  ASSERT_EQ(again->calls, 1);
  ASSERT_EQ(again->link(), first);
  EXPECT_EQ(again->link()->selected_folder, "INBOX");
  EXPECT_TRUE(again->link()->qresync_enabled);
  EXPECT_EQ(again->link()->highest_modseq, 42u);
  pool_->Return(again->link(), true);

  // TryBorrow lends it synchronously.
  PooledLink* tried = pool_->TryBorrow(User("alice"));
  EXPECT_EQ(tried, first);
  ExpectGauges(1, 1, 0, 0);
  EXPECT_EQ(connector_.logins, 1);
  EXPECT_EQ(counters_.store_link_borrows.load(), 3u);
  EXPECT_EQ(counters_.store_link_opens.load(), 1u);
  EXPECT_EQ(WaitHistogramCount(), 0u);  // nobody queued
  pool_->Return(tried, true);
}

TEST_F(LinkPoolTest, MostRecentlyReturnedLinkOfTheIdentityIsLent) {
  MakePool(10);
  PooledLink* a = LendNew(User("alice"));
  PooledLink* b = LendNew(User("alice"));
  ExpectGauges(2, 2, 0, 0);
  pool_->Return(a, true);
  pool_->Return(b, true);
  ExpectGauges(2, 0, 2, 0);
  EXPECT_EQ(pool_->TryBorrow(User("alice")), b);
  EXPECT_EQ(pool_->TryBorrow(User("alice")), a);
  EXPECT_EQ(pool_->TryBorrow(User("alice")), nullptr);
  ExpectGauges(2, 2, 0, 0);
}

TEST_F(LinkPoolTest, DifferentIdentitiesDoNotShare) {
  MakePool(10);
  pool_->Return(LendNew(User("alice")), true);
  pool_->Return(LendNew(Master("alice")), true);  // master on behalf of alice
  ExpectGauges(2, 0, 2, 0);
  EXPECT_EQ(pool_->TryBorrow(User("bob")), nullptr);
  EXPECT_EQ(pool_->TryBorrow(Master("bob")), nullptr);
  EXPECT_EQ(pool_->TryBorrow(User("master")), nullptr);

  auto bob = Borrow(User("bob"));
  EXPECT_EQ(connector_.logins, 3);  // a login of its own
  ExpectGauges(2, 0, 2, 0);         // logins in progress are not open yet
  EXPECT_EQ(pool_->opening_links(), 1u);
  connector_.Succeed();
  Advance(0);
  ASSERT_NE(bob->link(), nullptr);
  EXPECT_EQ(Fake(bob->link())->credentials.user, "bob");
  ExpectGauges(3, 1, 2, 0);

  PooledLink* master = pool_->TryBorrow(Master("alice"));
  ASSERT_NE(master, nullptr);
  EXPECT_EQ(Fake(master)->credentials.authzid, "alice");
  PooledLink* alice = pool_->TryBorrow(User("alice"));
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(Fake(alice)->credentials.authzid, "");
  ExpectGauges(3, 3, 0, 0);
}

TEST_F(LinkPoolTest, AtTheCapTheLeastRecentlyUsedIdleLinkIsEvicted) {
  MakePool(2);
  PooledLink* alice = LendNew(User("alice"));
  PooledLink* bob = LendNew(User("bob"));
  // Returned bob first: bob is the least recently used, although opened last.
  pool_->Return(bob, true);
  pool_->Return(alice, true);
  ExpectGauges(2, 0, 2, 0);
  FakeLink* bob_link = Fake(bob);
  FakeLink* alice_link = Fake(alice);

  auto carol = Borrow(User("carol"));
  EXPECT_TRUE(bob_link->closed);  // logged out for carol's login
  EXPECT_FALSE(alice_link->closed);
  EXPECT_EQ(counters_.store_link_evictions.load(), 1u);
  EXPECT_EQ(connector_.logins, 3);
  ExpectGauges(1, 0, 1, 0);
  connector_.Succeed();
  Advance(0);
  ASSERT_NE(carol->link(), nullptr);
  ExpectGauges(2, 1, 1, 0);

  auto dave = Borrow(User("dave"));
  EXPECT_TRUE(alice_link->closed);
  EXPECT_EQ(counters_.store_link_evictions.load(), 2u);
  connector_.Succeed();
  Advance(0);
  ASSERT_NE(dave->link(), nullptr);
  ExpectGauges(2, 2, 0, 0);
}

TEST_F(LinkPoolTest, WaiterOfTheSameIdentityGetsTheReturnedLink) {
  MakePool(1);
  PooledLink* first = LendNew(User("alice"));
  Advance(10);
  auto waiter = Borrow(User("alice"));
  EXPECT_EQ(connector_.logins, 1);
  ExpectGauges(1, 1, 0, 1);
  Advance(30);
  EXPECT_EQ(waiter->calls, 0);
  pool_->Return(first, true);
  EXPECT_EQ(waiter->calls, 0) << "done ran inside Return()";
  ExpectGauges(1, 1, 0, 0);  // handed over directly, never idle
  Advance(0);
  ASSERT_EQ(waiter->calls, 1);
  EXPECT_EQ(waiter->link(), first);
  EXPECT_FALSE(Fake(first)->closed);
  EXPECT_EQ(connector_.logins, 1);
  // The 30 ms wait is in the histogram (bucket le=50ms).
  EXPECT_EQ(WaitHistogramCount(), 1u);
  EXPECT_EQ(counters_.store_link_wait.buckets[3].load(), 1u);
  EXPECT_EQ(counters_.store_link_wait.sum_ms.load(), 30u);
}

// A reload raising the cap serves the borrowers already waiting.
TEST_F(LinkPoolTest, ARaisedCapServesTheWaitingBorrowers) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  ASSERT_NE(alice, nullptr);
  auto bob = Borrow(User("bob"), 60000);
  ExpectGauges(1, 1, 0, 1);
  pool_->Reconfigure(LinkPoolConfig{4, 30000});
  Advance(0);
  EXPECT_EQ(connector_.logins, 2);
}

TEST_F(LinkPoolTest, WaitersAreServedInArrivalOrder) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  auto bob = Borrow(User("bob"));
  auto carol = Borrow(User("carol"));
  auto alice2 = Borrow(User("alice"));
  ExpectGauges(1, 1, 0, 3);
  // alice's link goes to alice's waiter, although bob and carol came first.
  pool_->Return(alice, true);
  Advance(0);
  ASSERT_EQ(alice2->link(), alice);
  ExpectGauges(1, 1, 0, 2);
  // Not reusable: the slot goes to the first waiter, bob.
  pool_->Return(alice, false);
  EXPECT_EQ(connector_.logins, 2);
  ASSERT_EQ(connector_.pending.size(), 1u);
  EXPECT_EQ(connector_.pending.front().credentials.user, "bob");
  ExpectGauges(0, 0, 0, 1);
  connector_.Succeed();
  Advance(0);
  ASSERT_NE(bob->link(), nullptr);
  // bob's link, returned idle, is evicted at once for carol.
  FakeLink* bob_link = Fake(bob->link());
  pool_->Return(bob->link(), true);
  EXPECT_TRUE(bob_link->closed);
  EXPECT_EQ(counters_.store_link_evictions.load(), 1u);
  ASSERT_EQ(connector_.pending.size(), 1u);
  EXPECT_EQ(connector_.pending.front().credentials.user, "carol");
  ExpectGauges(0, 0, 0, 0);
  connector_.Succeed();
  Advance(0);
  EXPECT_NE(carol->link(), nullptr);
  EXPECT_EQ(WaitHistogramCount(), 3u);
}

TEST_F(LinkPoolTest, WaiterTimesOut) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  auto bob = Borrow(User("bob"), /*timeout_ms=*/100);
  ExpectGauges(1, 1, 0, 1);
  Advance(99);
  EXPECT_EQ(bob->calls, 0);
  Advance(1);  // the deadline
  // Failures are delivered from a timer of their own.
  Advance(0);
  ASSERT_EQ(bob->calls, 1);
  EXPECT_EQ(bob->value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(counters_.store_link_wait_timeouts.load(), 1u);
  ExpectGauges(1, 1, 0, 0);
  // A later Return does not go to the waiter that gave up.
  pool_->Return(alice, true);
  ExpectGauges(1, 0, 1, 0);
  EXPECT_EQ(connector_.logins, 1);
  Advance(1000);
  EXPECT_EQ(bob->calls, 1);
  EXPECT_EQ(WaitHistogramCount(), 0u);  // only borrows that got a link
}

TEST_F(LinkPoolTest, BorrowerWhoseLoginIsTooSlowTimesOutAndTheLinkIsKept) {
  MakePool(2);
  auto alice = Borrow(User("alice"), /*timeout_ms=*/50);
  Advance(50);
  Advance(0);
  ASSERT_EQ(alice->calls, 1);
  EXPECT_EQ(alice->value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(counters_.store_link_wait_timeouts.load(), 1u);
  // The login completes later: the link is idle for the next borrower.
  FakeLink* link = connector_.Succeed();
  EXPECT_FALSE(link->closed);
  ExpectGauges(1, 0, 1, 0);
  EXPECT_EQ(alice->calls, 1);
  PooledLink* again = pool_->TryBorrow(User("alice"));
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->link, link);
}

TEST_F(LinkPoolTest, WaiterQueueIsBounded) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  std::vector<std::shared_ptr<Outcome>> waiting;
  for (size_t i = 0; i < LinkPool::kWaitersPerLink; ++i) {
    waiting.push_back(Borrow(User("bob")));
  }
  ExpectGauges(1, 1, 0, 4);
  auto refused = Borrow(User("bob"));  // checks done did not run inside
  ExpectGauges(1, 1, 0, 4);
  Advance(0);
  ASSERT_EQ(refused->calls, 1);
  EXPECT_EQ(refused->value.status().code(), absl::StatusCode::kUnavailable);
  for (const auto& w : waiting) EXPECT_EQ(w->calls, 0);
  // Not a timeout.
  EXPECT_EQ(counters_.store_link_wait_timeouts.load(), 0u);
  pool_->Return(alice, true);
}

TEST_F(LinkPoolTest, IdleLinkClosesAfterTheIdleTimeout) {
  MakePool(4, /*idle_ms=*/1000);
  PooledLink* alice = LendNew(User("alice"));
  FakeLink* link = Fake(alice);
  Advance(500);
  pool_->Return(alice, true);
  Advance(999);
  EXPECT_FALSE(link->closed);
  ExpectGauges(1, 0, 1, 0);
  // Borrowing and returning restarts the idle time.
  PooledLink* again = pool_->TryBorrow(User("alice"));
  ASSERT_EQ(again, alice);
  pool_->Return(again, true);
  Advance(999);
  EXPECT_FALSE(link->closed);
  Advance(1);
  EXPECT_TRUE(link->closed);
  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(pool_->TryBorrow(User("alice")), nullptr);
  EXPECT_EQ(counters_.store_link_evictions.load(), 0u);  // not an eviction
}

TEST_F(LinkPoolTest, LinkClosedWhileIdleIsForgotten) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  pool_->Return(alice, true);
  FakeLink* link = Fake(alice);
  link->DropFromStore();  // FakeLink fails the test if Close() follows
  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(pool_->TryBorrow(User("alice")), nullptr);
  // Its slot is free: bob logs in without evicting anything.
  auto bob = Borrow(User("bob"));
  EXPECT_EQ(connector_.logins, 2);
  connector_.Succeed();
  Advance(0);
  EXPECT_NE(bob->link(), nullptr);
  EXPECT_EQ(counters_.store_link_evictions.load(), 0u);
  Advance(60000);  // no idle timer of the dead link fires
  ExpectGauges(1, 1, 0, 0);
}

TEST_F(LinkPoolTest, LinkClosedBeforeDeliveryIsReplacedForTheBorrower) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  pool_->Return(alice, true);
  FakeLink* link = Fake(alice);
  auto again = Borrow(User("alice"));
  ExpectGauges(1, 1, 0, 0);
  link->DropFromStore();  // between Borrow() and the delivery
  EXPECT_EQ(connector_.logins, 2);  // a fresh login for the same borrower
  ExpectGauges(0, 0, 0, 0);
  Advance(0);
  EXPECT_EQ(again->calls, 0);
  FakeLink* fresh = connector_.Succeed();
  Advance(0);
  ASSERT_EQ(again->calls, 1);
  ASSERT_NE(again->link(), nullptr);
  EXPECT_EQ(again->link()->link, fresh);
  ExpectGauges(1, 1, 0, 0);
}

TEST_F(LinkPoolTest, LostFreesTheSlotForAWaiter) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  auto bob = Borrow(User("bob"));
  ExpectGauges(1, 1, 0, 1);
  FakeLink* link = Fake(alice);
  link->gone = true;  // the borrower heard OnStoreClosed
  pool_->Lost(alice);
  EXPECT_FALSE(link->closed);  // the pool did not touch the dead link
  EXPECT_EQ(connector_.logins, 2);
  ASSERT_EQ(connector_.pending.size(), 1u);
  EXPECT_EQ(connector_.pending.front().credentials.user, "bob");
  ExpectGauges(0, 0, 0, 0);
  connector_.Succeed();
  Advance(0);
  EXPECT_NE(bob->link(), nullptr);
  ExpectGauges(1, 1, 0, 0);
  // A link the pool did not lend is ignored (logged).
  PooledLink stranger;
  pool_->Lost(&stranger);
  pool_->Return(&stranger, true);
  ExpectGauges(1, 1, 0, 0);
}

TEST_F(LinkPoolTest, LoginFailurePropagates) {
  MakePool(1);
  auto alice = Borrow(User("alice", "wrong"));
  auto bob = Borrow(User("bob"));  // waits for alice's slot
  ExpectGauges(0, 0, 0, 1);
  connector_.Refuse(absl::UnauthenticatedError("[AUTHENTICATIONFAILED] no"));
  EXPECT_EQ(alice->calls, 0) << "done ran inside the login callback";
  // The slot went to bob.
  ASSERT_EQ(connector_.pending.size(), 1u);
  EXPECT_EQ(connector_.pending.front().credentials.user, "bob");
  ExpectGauges(0, 0, 0, 0);
  Advance(0);
  ASSERT_EQ(alice->calls, 1);
  EXPECT_EQ(alice->value.status().code(), absl::StatusCode::kUnauthenticated);
  // Any other store error passes through as it is.
  connector_.Refuse(absl::UnavailableError("store said BYE"));
  Advance(0);
  ASSERT_EQ(bob->calls, 1);
  EXPECT_EQ(bob->value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(bob->value.status().message(), "store said BYE");
  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(pool_->opening_links(), 0u);
  EXPECT_EQ(counters_.store_link_opens.load(), 0u);
  EXPECT_EQ(counters_.store_link_borrows.load(), 0u);
}

TEST_F(LinkPoolTest, DoneNeverRunsInsideBorrowEvenWhenLoginAnswersAtOnce) {
  MakePool(1);
  connector_.sync_result = absl::OkStatus();
  auto alice = Borrow(User("alice"));  // Borrow() checks calls == 0
  ExpectGauges(1, 1, 0, 0);
  Advance(0);
  ASSERT_EQ(alice->calls, 1);
  ASSERT_NE(alice->link(), nullptr);
  pool_->Return(alice->link(), true);
  auto reuse = Borrow(User("alice"));  // an idle link: still deferred
  Advance(0);
  EXPECT_EQ(reuse->calls, 1);
  // A refusal inside Login() is deferred too, and frees the slot.
  pool_->Return(reuse->link(), false);
  connector_.sync_result = absl::UnauthenticatedError("no");
  auto refused = Borrow(User("bob"));
  ExpectGauges(0, 0, 0, 0);
  Advance(0);
  ASSERT_EQ(refused->calls, 1);
  EXPECT_EQ(refused->value.status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(LinkPoolTest, BorrowerMayCallThePoolFromDone) {
  MakePool(1);
  PooledLink* alice = LendNew(User("alice"));
  pool_->Return(alice, true);
  int calls = 0;
  pool_->Borrow(User("alice"), 1000, [&](absl::StatusOr<PooledLink*> link) {
    ++calls;
    ASSERT_TRUE(link.ok());
    pool_->Return(*link, true);  // straight back
    EXPECT_EQ(pool_->TryBorrow(User("alice")), *link);
  });
  EXPECT_EQ(calls, 0);
  Advance(0);
  EXPECT_EQ(calls, 1);
  ExpectGauges(1, 1, 0, 0);
}

TEST_F(LinkPoolTest, ReturnNotReusableClosesTheLink) {
  MakePool(4);
  PooledLink* alice = LendNew(User("alice"));
  FakeLink* link = Fake(alice);
  pool_->Return(alice, /*reusable=*/false);
  EXPECT_TRUE(link->closed);
  ExpectGauges(0, 0, 0, 0);
  EXPECT_EQ(pool_->TryBorrow(User("alice")), nullptr);
  auto again = Borrow(User("alice"));
  EXPECT_EQ(connector_.logins, 2);
  connector_.Succeed();
  Advance(0);
  ASSERT_NE(again->link(), nullptr);
  EXPECT_NE(again->link()->link, link);
}

TEST_F(LinkPoolTest, ShutdownClosesIdleLinksAndFailsWaiters) {
  MakePool(2);
  PooledLink* alice = LendNew(User("alice"));
  PooledLink* bob = LendNew(User("bob"));
  FakeLink* bob_link = Fake(bob);
  pool_->Return(bob, true);
  // At the cap: a second alice link evicts bob's; carol and dave then wait.
  auto alice_too = Borrow(User("alice"));
  auto carol = Borrow(User("carol"));
  auto dave = Borrow(User("dave"));
  EXPECT_TRUE(bob_link->closed);
  ExpectGauges(1, 1, 0, 2);
  pool_->Shutdown();
  ExpectGauges(1, 1, 0, 0);
  Advance(0);
  for (const auto& o : {alice_too, carol, dave}) {
    ASSERT_EQ(o->calls, 1);
    EXPECT_EQ(o->value.status(), absl::UnavailableError("shutting down"));
  }
  // alice_too's login finishes after the shutdown: its link is logged out.
  FakeLink* late = connector_.Succeed();
  EXPECT_TRUE(late->closed);
  auto after = Borrow(User("alice"));
  Advance(0);
  EXPECT_EQ(after->value.status(), absl::UnavailableError("shutting down"));
  EXPECT_EQ(pool_->TryBorrow(User("alice")), nullptr);
  // A lent link comes back: closed, not kept.
  FakeLink* alice_link = Fake(alice);
  pool_->Return(alice, true);
  EXPECT_TRUE(alice_link->closed);
  ExpectGauges(0, 0, 0, 0);
}

TEST_F(LinkPoolTest, DestructionClosesIdleLinksAndLateLogins) {
  MakePool(4);
  PooledLink* alice = LendNew(User("alice"));
  FakeLink* idle = Fake(alice);
  pool_->Return(alice, true);
  auto bob = Borrow(User("bob"));  // login still in progress
  pool_.reset();
  EXPECT_TRUE(idle->closed);
  Advance(0);
  ASSERT_EQ(bob->calls, 1);  // delivered although the pool is gone
  EXPECT_EQ(bob->value.status(), absl::UnavailableError("shutting down"));
  FakeLink* late = connector_.Succeed();
  EXPECT_TRUE(late->closed);
  EXPECT_EQ(counters_.store_links_open.load(), 0);
  EXPECT_EQ(counters_.store_links_idle.load(), 0);
  EXPECT_EQ(counters_.store_link_waiters.load(), 0);
}

TEST_F(LinkPoolTest, PasswordsAreNeverLogged) {
  const LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kDebug);
  testing::internal::CaptureStderr();
  MakePool(1);
  auto refused = Borrow(User("alice", "hunter2-secret"));
  connector_.Refuse(absl::UnauthenticatedError("login failed"));
  PooledLink* alice = LendNew(User("alice", "hunter2-secret"));
  pool_->Return(alice, true);
  Fake(alice)->DropFromStore();
  PooledLink stranger;
  pool_->Return(&stranger, true);  // not lent: logged and ignored
  Advance(0);
  const std::string log = testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  EXPECT_TRUE(absl::StrContains(log, "not lent")) << log;  // logging did run
  EXPECT_FALSE(absl::StrContains(log, "hunter2")) << log;
}


TEST_F(LinkPoolTest, AdoptedLoginLinkIsLentThenSharedAndEvictsAtTheCap) {
  MakePool(1);
  PooledLink* idle = LendNew(User("bob"));
  ASSERT_NE(idle, nullptr);
  pool_->Return(idle, true);
  ExpectGauges(1, 0, 1, 0);
  // A device's own login link joins the pool lent to it; at the cap the idle
  // link of another user makes room.
  connector_.links.push_back(std::make_unique<FakeLink>(User("alice")));
  FakeLink* login_link = connector_.links.back().get();
  PooledLink* adopted = pool_->Adopt(User("alice"), login_link);
  ASSERT_NE(adopted, nullptr);
  EXPECT_EQ(adopted->link, login_link);
  ExpectGauges(1, 1, 0, 0);
  EXPECT_EQ(counters_.store_link_evictions.load(), 1u);
  pool_->Return(adopted, true);
  // The next device of the user borrows it without a login.
  const int logins = connector_.logins;
  EXPECT_EQ(pool_->TryBorrow(User("alice", "other")), adopted);
  EXPECT_EQ(connector_.logins, logins);
  pool_->Return(adopted, true);
  pool_->Shutdown();
  EXPECT_EQ(pool_->Adopt(User("carol"), login_link), nullptr);
}

}  // namespace
}  // namespace pimap::store
