// The engine's IDLE state machine (IdleMachine, core/session/idle_machine.h)
// as the driver carries it out (core/session/device_driver_idle.cc): the
// transitions the other driver tests do not reach. On the pooled-mode fixture:
// "Work" is a folder no event source covers (its IDLE is relayed to the store
// on a held link, its news come as the store's own EXISTS), INBOX is covered
// (the gateway's own IDLE).
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/session/device_driver.h"
#include "core/session/filter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_pool_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::AnswerLinkSelect;
using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverPoolTest;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::NewMail;
using ::pimap::session::testing::Selected;
using ::testing::ElementsAre;
using ::testing::StartsWith;

class DeviceDriverIdleTest : public DeviceDriverPoolTest {
 protected:
  // A device in the store's IDLE on Work (tagged "c", sent as ~p4, its "+"
  // passed on).
  Device& RelayedIdle() {
    config_.default_notification = FilterSpec::All();
    Device& d = Connect();
    Login(d);
    EXPECT_EQ(SelectFolder(d, d.link, "Work"), Selected());
    pool_.TakeCalls();
    Run(d, "c IDLE");
    EXPECT_EQ(d.link.TakeSent(), "~p4 IDLE\r\n");
    d.link.Reply("+ idling");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
    return d;
  }

  // RelayedIdle, then the store's EXISTS takes the gateway out of the store's
  // IDLE for the new UID (13, pushed) and back in: the second IDLE (~p7) is
  // sent, its "+" has not come yet.
  Device& ReenteringIdle() {
    Device& d = RelayedIdle();
    d.link.Reply("* 4 EXISTS");
    EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
    d.link.Complete("~p4", "OK Idle completed");
    EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
    d.link.Complete("~p5", "OK NOOP completed");
    EXPECT_EQ(d.link.TakeSent(), "~p6 UID SEARCH RETURN (ALL) UID 13:*\r\n");
    d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
    d.link.Complete("~p6", "OK Search completed");
    EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
    EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
    return d;
  }
};

// ---- Relayed to the store
// ------------------------------------------------------

TEST_F(DeviceDriverIdleTest, DoneBeforeTheStoresPlusStillPassesThePlusOn) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  Run(d, "c IDLE");
  EXPECT_EQ(d.link.TakeSent(), "~p4 IDLE\r\n");
  // A pipelining device: DONE right behind its IDLE.
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  EXPECT_TRUE(Done(d));  // a second line: DONE is on its way already
  EXPECT_EQ(d.link.TakeSent(), "");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverIdleTest, DoneWhileGoingBackIntoTheStoresIdleIsRelayed) {
  Device& d = ReenteringIdle();
  // The device's DONE before the second IDLE's "+": relayed at once.
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  // That "+" is still the gateway's: the device had its own long ago.
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverIdleTest, DoneWhileTheLinkCatchesUpBeforeGoingBackInEndsTheIdle) {
  Device& d = RelayedIdle();
  d.link.Reply("* 4 EXISTS");
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID SEARCH RETURN (ALL) UID 13:*\r\n");
  // The user's watch reports news meanwhile: the link is behind them now.
  registry_.OnStoreEvents("alice", {NewMail(20)});
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  // The IDLE waits for the link to catch up; the device may speak meanwhile.
  EXPECT_EQ(d.link.TakeSent(), "~p7 NOOP\r\n");
  // Its DONE ends the IDLE (it is no command of its own).
  EXPECT_TRUE(Done(d));
  d.link.Complete("~p7", "OK NOOP completed");
  // The IDLE goes out with the DONE behind it: the store's "+" is ours, its
  // answer is the device's.
  EXPECT_EQ(d.link.TakeSent(), "~p8 IDLE\r\nDONE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  d.link.Complete("~p8", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverIdleTest, NewsWhileGoingBackIntoTheStoresIdleArePushed) {
  Device& d = ReenteringIdle();
  // The device never left its IDLE: news go out before the store's "+".
  registry_.OnStoreEvents("alice", {NewMail(14, "Work")});
  EXPECT_EQ(d.out.Take(), "* 5 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverIdleTest, NewsWhileGoingBackInLeaveAgainAndItsPlusIsOurs) {
  Device& d = ReenteringIdle();
  // News needing the store's work before the second IDLE's "+": the gateway
  // leaves again at once.
  d.link.Reply("* 5 EXISTS");
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Reply("+ idling");  // late, and still not the device's
  EXPECT_EQ(d.out.Take(), "");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p8 NOOP\r\n");
  d.link.Complete("~p8", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p9 UID SEARCH RETURN (ALL) UID 14:*\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p9\") UID ALL 14");
  d.link.Complete("~p9", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 5 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p10 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p10", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

// The device's DONE while the gateway is out of the store's IDLE, and the
// store's late "+" of the IDLE the gateway left: no keepalive after DONE.
TEST_F(DeviceDriverIdleTest, NoKeepaliveAfterDoneWhenALatePlusComes) {
  config_.idle_keepalive_ms = 1000;
  Device& d = ReenteringIdle();
  d.link.Reply("* 5 EXISTS");
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "");  // the gateway's DONE went already
  d.link.Reply("+ idling");
  timers_.Advance(timers_.now_ms() + 1000);
  EXPECT_EQ(d.out.Take(), "");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p8 NOOP\r\n");
  d.link.Complete("~p8", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p9 UID SEARCH RETURN (ALL) UID 14:*\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p9\") UID ALL 14");
  d.link.Complete("~p9", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 5 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");  // no new IDLE
  timers_.Advance(timers_.now_ms() + 1000);
  EXPECT_EQ(d.out.Take(), "");
}

// The link is lost while going back into the store's IDLE: the IDLE ends
// with NO, and nothing of it is left for the next one (its "+" is the
// device's).
TEST_F(DeviceDriverIdleTest, LinkLostGoingBackInLeavesNothingForTheNextIdle) {
  Device& d = ReenteringIdle();
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_EQ(d.out.Take(),
            "c NO [UNAVAILABLE] Connection to the message store lost\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_TRUE(d.out.end_session.empty());
  pool_.TakeCalls();
  pool_.try_borrow_hits = false;
  Run(d, "e IDLE");
  PooledLink* l2 = pool_.CompleteBorrow();
  ASSERT_NE(l2, nullptr);
  FakeStoreLink& store = *pool_.fake(l2);
  EXPECT_EQ(store.TakeSent(), "~p8 ENABLE QRESYNC\r\n");
  store.Complete("~p8", "OK Enabled");
  EXPECT_THAT(store.TakeSent(), StartsWith("~p9 SELECT \"Work\""));
  // (No EXISTS: it would be news of Work's own, looked for before the IDLE.)
  store.Complete("~p9", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(store.TakeSent(), "~p10 IDLE\r\n");
  store.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(store.TakeSent(), "DONE\r\n");
  store.Complete("~p10", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "e OK Idle completed\r\n");
}

// ---- The gateway's own
// ---------------------------------------------------------

// Verdicts in the middle of the gateway's IDLE: not at rest (no hibernation,
// the link held) until they are in; at rest again after.
TEST_F(DeviceDriverIdleTest, GatewaysIdleIsAtRestOnlyOutsideItsVerdicts) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_TRUE(d.driver->Hibernatable());
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  EXPECT_FALSE(d.driver->Hibernatable());
  // More news meanwhile wait for the verdicts: no second interruption.
  registry_.OnStoreEvents("alice", {NewMail(14)});
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Complete("~p4", "OK NOOP completed");
  // The link syncs again (news came after its NOOP), then the verdicts.
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID SEARCH RETURN (ALL) UID 13:14 FROM \"boss\"\r\n");
  EXPECT_FALSE(d.driver->Hibernatable());
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 14");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n* 5 EXISTS\r\n");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Return(L1, reusable)"));
  EXPECT_TRUE(d.driver->Hibernatable());
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

// The device's DONE while a verdict runs, then the link is lost: the IDLE is
// answered once the verdict could be had on another link.
TEST_F(DeviceDriverIdleTest, LinkLostAfterDoneDuringVerdictsAnswersTheIdle) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  Run(d, "f XFILTER INBOX N FROM boss");
  d.out.Take();
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.transcript(), "");
  pool_.try_borrow_hits = false;
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Lost(L1)",
                          "TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  PooledLink* l2 = pool_.CompleteBorrow();
  ASSERT_NE(l2, nullptr);
  FakeStoreLink& store = *pool_.fake(l2);
  EXPECT_EQ(store.TakeSent(), "~p5 ENABLE QRESYNC\r\n");
  store.Complete("~p5", "OK Enabled");
  EXPECT_EQ(store.TakeSent(), "~p6 SELECT \"INBOX\"\r\n");
  AnswerLinkSelect(store, "~p6");
  EXPECT_EQ(store.TakeSent(), "~p7 NOOP\r\n");
  store.Complete("~p7", "OK NOOP completed");
  EXPECT_EQ(store.TakeSent(),
            "~p8 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  store.Reply("* ESEARCH (TAG \"~p8\") UID ALL 13");
  store.Complete("~p8", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_TRUE(d.out.end_session.empty());
}

// An idling device holds its whole DeviceDriver (the command state is freed at
// rest), so what the driver weighs is what each of them costs. The IDLE state
// machine is a member of its own (idle_machine.h); [[no_unique_address]] lets
// the driver's bools share its tail padding, so that it costs no more than
// its fields did inline (464 bytes on x86-64 with libstdc++ before it was
// split out). The bound is checked where the layout is known.
TEST(DeviceDriverSizeTest, AnIdlingDeviceDoesNotGrow) {
  const size_t size = sizeof(DeviceDriver);
  std::printf("sizeof(DeviceDriver) = %zu\n", size);
  ::testing::Test::RecordProperty("sizeof_DeviceDriver",
                                  static_cast<int>(size));
#if defined(__x86_64__) && defined(__GLIBCXX__)
  EXPECT_LE(size, 464u);
#endif
}

}  // namespace
}  // namespace pimap::session
