// A kept password the store rejects (no master user; issue 14 item 7): the
// pool is not asked to log in with it again, the watch is not either, and the
// next login the store accepts replaces it for both.
#include <string>

#include "absl/status/status.h"
#include "core/session/device_driver.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_pool_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverPoolTest;
using ::pimap::session::testing::Selected;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class NoListener final : public ParkedListener {
 public:
  void OnParkedEvents(const std::vector<StoreEvent>&) override {}
};

class RejectedPasswordTest : public DeviceDriverPoolTest {
 protected:
  // alice logged in with "pw", INBOX selected; the next command needs a new
  // store login, which the store refuses.
  Device& LoggedInThenRejected() {
    Device& d = Connect();
    Login(d);
    EXPECT_EQ(SelectFolder(d, d.link), Selected());
    pool_.TakeCalls();
    pool_.try_borrow_hits = false;
    Run(d, "c FETCH 2 (FLAGS)");
    EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> none",
                                               "Borrow(alice, 2500ms)"));
    pool_.FailBorrow(absl::UnauthenticatedError("Authentication failed."));
    EXPECT_THAT(d.out.Take(), StartsWith("c NO [UNAVAILABLE]"));
    return d;
  }
};

TEST_F(RejectedPasswordTest, PoolIsNotAskedAgainWithARejectedPassword) {
  Device& d = LoggedInThenRejected();
  EXPECT_TRUE(registry_.StorePasswordRejected("alice"));
  EXPECT_EQ(registry_.LinkCredentials("alice").password, "");  // not kept
  for (const char* line : {"d FETCH 2 (FLAGS)", "e FETCH 3 (FLAGS)"}) {
    Run(d, line);
    // A warm link would do (it is logged in already); no new login.
    EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> none"));
    const std::string got = d.out.Take();
    EXPECT_THAT(got, HasSubstr(" NO [UNAVAILABLE]"));
    EXPECT_FALSE(d.out.command_running);
  }
  EXPECT_TRUE(d.out.end_session.empty());  // the session lives on
}

TEST_F(RejectedPasswordTest, ANewAcceptedLoginReplacesItForLinksAndWatch) {
  Device& d = LoggedInThenRejected();
  ASSERT_EQ(watches_.watches.size(), 1u);
  EXPECT_EQ(watches_.calls[0].credentials.password, "pw");
  // Another device logs in; the store accepted its (new) password.
  Device& tablet = Connect("alice", "tablet");
  tablet.driver->Start(&tablet.link, "a2", "new-pw");
  EXPECT_FALSE(registry_.StorePasswordRejected("alice"));
  EXPECT_EQ(registry_.LinkCredentials("alice").password, "new-pw");
  ASSERT_EQ(watches_.watches.size(), 1u);  // the same watch, new credentials
  ASSERT_FALSE(watches_.watches[0]->updates.empty());
  EXPECT_EQ(watches_.watches[0]->updates.back().password, "new-pw");
  EXPECT_EQ(watches_.watches[0]->updates.back().user, "alice");
  pool_.TakeCalls();
  Run(d, "d FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
}

TEST_F(RejectedPasswordTest, AWatchRejectionStopsThePoolToo) {
  Device& d = Connect();
  Login(d);
  // What the user's watch reports when its login is refused.
  registry_.OnStoreLoginRejected("alice", "pw");
  EXPECT_TRUE(registry_.StorePasswordRejected("alice"));
  // A parked stock client's own (older) password does not take its place.
  NoListener listener;
  registry_.AddParked("alice", StoreCredentials{"alice", "stale", ""},
                      &listener);
  EXPECT_EQ(registry_.LinkCredentials("alice").password, "");
  registry_.RemoveParked("alice", &listener);
  pool_.TakeCalls();
  pool_.try_borrow_hits = false;
  Run(d, "b SELECT INBOX");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> none"));
  EXPECT_THAT(d.out.Take(), HasSubstr("b NO [UNAVAILABLE]"));
}

TEST_F(RejectedPasswordTest, ARejectionOfAnOlderPasswordIsIgnored) {
  Device& d = Connect();
  Login(d);
  // A login with "old" was in flight when the user logged in with "pw".
  registry_.OnStoreLoginRejected("alice", "old");
  EXPECT_FALSE(registry_.StorePasswordRejected("alice"));
  EXPECT_EQ(registry_.LinkCredentials("alice").password, "pw");
  registry_.OnStoreLoginRejected("bob", "pw");  // no such user here
  EXPECT_FALSE(registry_.StorePasswordRejected("bob"));
  (void)d;
}

TEST_F(RejectedPasswordTest, WithAMasterUserNothingIsMarked) {
  config_.master_user = "gateway";
  config_.master_password = "gwpw";
  registry_.OnStoreLoginRejected("alice", "gwpw");
  EXPECT_FALSE(registry_.StorePasswordRejected("alice"));
  EXPECT_EQ(registry_.LinkCredentials("alice").user, "gateway");
  EXPECT_EQ(registry_.LinkCredentials("alice").authzid, "alice");
  EXPECT_THAT(watches_.calls, IsEmpty());
}

// A reload rotated the master password: the running watch gets it for its
// next login (and one the store rejected tries again with it at once).
TEST_F(RejectedPasswordTest, AReloadGivesTheWatchesTheNewMasterPassword) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(watches_.watches.size(), 1u);
  // (The fixture logs in without a master user; the watch's credentials are
  // what the configuration says at each reload.)
  config_.master_user = "gateway";
  config_.master_password = "gwpw";
  registry_.OnConfigReloaded();
  config_.master_password = "rotated";
  const size_t updates = watches_.watches[0]->updates.size();
  registry_.OnConfigReloaded();
  ASSERT_EQ(watches_.watches[0]->updates.size(), updates + 1);
  EXPECT_EQ(watches_.watches[0]->updates.back().user, "gateway");
  EXPECT_EQ(watches_.watches[0]->updates.back().password, "rotated");
  EXPECT_EQ(watches_.watches[0]->updates.back().authzid, "alice");
  EXPECT_EQ(registry_.LinkCredentials("alice").password, "rotated");
}

}  // namespace
}  // namespace pimap::session
