// DeviceDriver hibernation (core/session/hibernation.h) in pooled mode: which
// states may hibernate, and that a driver rebuilt from HibernatedIdle is the
// same IDLE: events pushed, DONE answered with the IDLE's tag, acknowledgement
// positions kept, a takeover while hibernated said goodbye to.
#include <string>

#include "absl/strings/string_view.h"
#include "core/session/device_driver.h"
#include "core/session/hibernation.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_pool_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverPoolTest;
using ::pimap::session::testing::NewMail;
using ::pimap::session::testing::Selected;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// What the binding keeps while the device hibernates: it takes the session's
// events (and counts them) instead of waking.
class Keeper final : public DeviceLink {
 public:
  void OnEventsPending() override { ++events; }
  void OnTakenOver(absl::string_view) override { ++taken_over; }
  void OnFolderEvent(const StoreEvent&) override { ++folder_events; }
  bool Selecting(absl::string_view) const override { return false; }
  int events = 0;
  int taken_over = 0;
  int folder_events = 0;
};

class DeviceDriverHibernateTest : public DeviceDriverPoolTest {
 protected:
  // A device logged in, INBOX selected (UIDs 4, 9, 12), in the gateway's own
  // IDLE tagged "c".
  Device& Idling() {
    config_.default_notification = FilterSpec::All();
    Device& d = Connect();
    Login(d);
    EXPECT_EQ(SelectFolder(d, d.link), Selected());
    pool_.TakeCalls();
    Run(d, "c IDLE");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
    return d;
  }

  // Hibernates `d` (its driver is released, as the binding does) and returns
  // the state kept.
  HibernatedIdle Hibernate(Device& d) {
    EXPECT_TRUE(d.driver->Hibernatable());
    HibernatedIdle state = d.driver->Hibernate(&keeper_);
    Drop(d);
    return state;
  }

  // The device's driver rebuilt from `state`, writing to `d.out` again.
  void Wake(Device& d, const HibernatedIdle& state) {
    d.driver = new DeviceDriver(services(), &d.out, "alice", state, &keeper_);
  }

  Keeper keeper_;
};

TEST_F(DeviceDriverHibernateTest, OnlyTheGatewaysIdleAtRestHibernates) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  EXPECT_FALSE(d.driver->Hibernatable());  // authenticated, no IDLE
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  EXPECT_FALSE(d.driver->Hibernatable());  // selected, no IDLE
  Run(d, "c IDLE");
  d.out.Take();
  EXPECT_TRUE(d.driver->Hibernatable());
  // DONE taken, its answer not yet written: not at rest.
  EXPECT_TRUE(Done(d));
  EXPECT_FALSE(d.driver->Hibernatable());
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_FALSE(d.driver->Hibernatable());
}

TEST_F(DeviceDriverHibernateTest,
       IdleInAnUncoveredFolderHoldsALinkAndStaysAwake) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  Run(d, "c IDLE");  // relayed to the store on a held link
  d.link.Reply("+ idling");
  d.out.Take();
  EXPECT_FALSE(d.driver->Hibernatable());
}

TEST_F(DeviceDriverHibernateTest,
       EventsWhileHibernatedGoToTheKeeperAndComeAtWake) {
  Device& d = Idling();
  HibernatedIdle state = Hibernate(d);
  EXPECT_EQ(state.idle_tag, "c");
  ASSERT_NE(state.session, nullptr);
  EXPECT_EQ(state.session->connection, &keeper_);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());

  // The store's news are journaled; the keeper hears of them (and would wake).
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(keeper_.events, 1);
  EXPECT_EQ(d.out.Take(), "");

  Wake(d, state);
  EXPECT_EQ(state.session->connection, d.driver->device_link());
  d.driver->device_link()->OnEventsPending();
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());  // still no link

  // DONE ends the same IDLE, with its tag.
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_EQ(pool_.lent(), 0u);
}

TEST_F(DeviceDriverHibernateTest,
       WhatWasWrittenBeforeHibernationIsAcknowledgedAfter) {
  Device& d = Idling();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  HibernatedIdle state = Hibernate(d);
  EXPECT_GT(state.delivered_seq, 0u);
  EXPECT_EQ(state.session->journal.size(), 1u);  // written, not acknowledged
  Wake(d, state);
  // DONE (input after the write) acknowledges the EXISTS: a later resume does
  // not replay it.
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_EQ(state.session->journal.size(), 0u);
}

TEST_F(DeviceDriverHibernateTest,
       TakeoverWhileHibernatedIsSaidGoodbyeByTheRebuiltDriver) {
  Device& d = Idling();
  HibernatedIdle state = Hibernate(d);
  // A newer connection of the device logs in: the keeper is told.
  Device& newer = Connect();
  newer.driver->Start(&newer.link, "a2", "pw");
  EXPECT_EQ(keeper_.taken_over, 1);
  EXPECT_NE(state.session->connection, &keeper_);
  // The rebuilt driver does not take the session back and says goodbye.
  Wake(d, state);
  EXPECT_NE(state.session->connection, d.driver->device_link());
  d.driver->device_link()->OnTakenOver(kTakenOverText);
  EXPECT_THAT(
      d.out.end_session,
      ElementsAre("Session taken over by a newer connection of this device"));
}

TEST_F(DeviceDriverHibernateTest, KeepaliveOfTheRebuiltDriverKeepsItsPhase) {
  config_.idle_keepalive_ms = 60000;
  Device& d = Idling();
  HibernatedIdle state = Hibernate(d);
  Wake(d, state);
  // The driver phases by the monotonic clock (the wheel here is advanced by
  // hand): the keepalive comes within a few ms of the phase's next tick.
  const int64_t delay =
      KeepaliveDelayMs(state.session->device, 60000, MonotonicNowMs());
  const int64_t start = timers_.now_ms();
  if (delay > 200) {
    timers_.Advance(start + delay - 150);
    EXPECT_EQ(d.out.Take(), "");
  }
  timers_.Advance(start + delay + 150);
  EXPECT_EQ(d.out.Take(), "* OK Still here\r\n");
}

TEST_F(DeviceDriverHibernateTest, NewFormatFetchAfterAWakeBorrowsALink) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "p XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (UID FLAGS)");
  EXPECT_EQ(d.out.Take(), "p OK XSETPIMAPPREF completed\r\n");
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  HibernatedIdle state = Hibernate(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(keeper_.events, 1);
  Wake(d, state);
  d.driver->device_link()->OnEventsPending();
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* 4 EXISTS");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "");  // the EXISTS goes with its FETCH
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 13 (UID FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n* 4 FETCH (UID 13 FLAGS ())\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_TRUE(d.driver->Hibernatable());  // at rest again
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

// The borrowed link is lost during the new mail's FETCH: the gateway's IDLE
// goes on, and the EXISTS held for that FETCH is pushed all the same (nothing
// is left held: the session can hibernate again).
TEST_F(DeviceDriverHibernateTest, NewFormatLinkLostMidFetchPushesTheExists) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "p XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (UID FLAGS)");
  EXPECT_EQ(d.out.Take(), "p OK XSETPIMAPPREF completed\r\n");
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  HibernatedIdle state = Hibernate(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  Wake(d, state);
  d.driver->device_link()->OnEventsPending();
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* 4 EXISTS");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 13 (UID FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  EXPECT_EQ(d.out.Take(), "");
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(d.out.end_session.empty());
  EXPECT_TRUE(d.driver->Hibernatable());
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST(KeepaliveDelayTest, SpreadsDevicesAndStaysWithinTheInterval) {
  for (int64_t now : {0, 1, 59999, 60000, 123456789}) {
    const int64_t a = KeepaliveDelayMs("phone", 60000, now);
    EXPECT_GT(a, 0);
    EXPECT_LE(a, 60000);
    // The same device at the same moment: the same delay (its connections
    // wake its radio together).
    EXPECT_EQ(a, KeepaliveDelayMs("phone", 60000, now));
  }
  EXPECT_NE(KeepaliveDelayMs("phone", 60000, 0),
            KeepaliveDelayMs("tablet", 60000, 0));
}

// Issue 14 (low): a keepalive timer that fired 2 ms early re-armed for the same
// phase point and a second keepalive followed 2 ms later.
TEST(KeepaliveDelayTest, RightAfterOneWentOutTheNextIsAWholePeriodAway) {
  const int64_t due = KeepaliveDelayMs("phone", 60000, 0);
  const int64_t early = due - 2;  // the wheel fired a little early
  EXPECT_EQ(KeepaliveDelayMs("phone", 60000, early), 2);
  EXPECT_EQ(KeepaliveDelayMs("phone", 60000, early, /*just_sent=*/true), 60002);
  // A little late: the next point is a period away anyway.
  EXPECT_EQ(KeepaliveDelayMs("phone", 60000, due + 3, /*just_sent=*/true),
            59997);
}

}  // namespace
}  // namespace pimap::session
