// DeviceDriver: events pushed in IDLE or with a command's answer, their
// acknowledgement, resume and replay, rebuilds (fixture:
// device_driver_fixture.h).
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/filter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverTest;
using ::pimap::session::testing::Expunged;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::NewMail;
using ::testing::ElementsAre;

// ---- Events: push in IDLE, delivery with a command's answer ----------------

TEST_F(DeviceDriverTest, NewMailIsPushedInIdleAndDoneEndsIt) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "c IDLE");
  EXPECT_EQ(d.link.TakeSent(), "~p4 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  // The device's own store connection sees the message too: that EXISTS is
  // not the device's news (the watch's event is).
  d.link.Reply("* 4 EXISTS");
  EXPECT_EQ(d.out.Take(), "");

  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");  // no need to leave the store's IDLE
  EXPECT_EQ(counters_.events_pushed.load(), 1u);

  // DONE: the engine takes the line; the store gets DONE.
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_FALSE(d.out.command_running);

  // The view has grown: MSN 4 is UID 13.
  Run(d, "d FETCH 4 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 4 FETCH (UID 13 FLAGS ())\r\nd OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, DefaultNotificationFilterNoneHoldsPushInIdle) {
  // SessionConfig's default notification filter is NONE: nothing is pushed in
  // IDLE; the mail comes with the answer to the next command.
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
}

TEST_F(DeviceDriverTest, EventsOutsideIdleComeWithTheNextAnswer) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "");  // not idling: nothing unsolicited
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nn OK NOOP completed\r\n");
}

TEST_F(DeviceDriverTest, ExpungeWaitsWhileAFetchByMsnRuns) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  registry_.OnStoreEvents("alice", {Expunged(9)});
  // RFC 3501 §7.4.1: no EXPUNGE while a FETCH by MSN runs.
  Run(d, "f FETCH 1 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 4 (FLAGS)\r\n");
  d.link.Reply("* 1 FETCH (UID 4 FLAGS ())");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 1 FETCH (UID 4 FLAGS ())\r\nf OK Fetch completed\r\n");
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\nn OK NOOP completed\r\n");
  // MSN 2 is now UID 12.
  Run(d, "g FETCH 2 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 12 (FLAGS)\r\n");
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "g OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, IdleKeepaliveSaysSomethingAtTheInterval) {
  config_.idle_keepalive_ms = 1000;
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  EnterIdle(d);
  EXPECT_EQ(d.out.transcript(), "");
  // The phase comes from the device id: the first keepalive is due within one
  // interval (a timer armed by a firing one waits for the next Advance).
  timers_.Advance(timers_.now_ms() + 1000);
  EXPECT_EQ(d.out.Take(), "* OK Still here\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  // The next is the next phase point, or the one after if the first is
  // within a tenth of the interval (KeepaliveDelayMs reads the real clock, the
  // wheel is advanced by hand): within 1.1 intervals.
  timers_.Advance(timers_.now_ms() + 1100);
  EXPECT_EQ(d.out.Take(), "* OK Still here\r\n");
  // Out of IDLE: no more keepalives.
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  timers_.Advance(timers_.now_ms() + 5000);
  EXPECT_EQ(d.out.Take(), "");
}

// ---- Acknowledgement and resume
// ----------------------------------------------

TEST_F(DeviceDriverTest, UnacknowledgedPushIsReplayedOnResume) {
  config_.default_notification = FilterSpec::All();
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);
  EnterIdle(first);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  ASSERT_EQ(first.out.Take(), "* 4 EXISTS\r\n");
  // The device is gone before it said anything after the push.
  Drop(first);
  EXPECT_TRUE(first.link.closed());
  EXPECT_EQ(registry_.sessions(), 1u);

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  EXPECT_EQ(second.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  second.link.Complete("~p1", "OK Enabled");
  // The saved folder is selected again before the login is answered.
  EXPECT_EQ(second.link.TakeSent(), "~p2 SELECT \"INBOX\"\r\n");
  EXPECT_EQ(second.out.transcript(), "");
  second.link.Reply("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
  second.link.Reply("* 4 EXISTS");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Reply("* OK [HIGHESTMODSEQ 12] Highest");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  // Watched INBOX, journal intact: no rebuild, the journal replays.
  EXPECT_EQ(second.link.TakeSent(), "");
  EXPECT_EQ(second.out.Take(), absl::StrCat("* SESSION SELECTED\r\n"
                                            "* FOLDER INBOX\r\n"
                                            "* 4 EXISTS\r\n"
                                            "* SESSIONID ",
                                            id, "\r\n", LoginOk("a2")));
  EXPECT_THAT(second.out.login_done, ElementsAre(true));
  EXPECT_EQ(counters_.session_resumes.load(), 1u);
  // Only one watch for the user all along.
  EXPECT_EQ(watches_.calls.size(), 1u);

  // The resumed view: MSN 4 is UID 13.
  Run(second, "c FETCH 4 (FLAGS)");
  EXPECT_EQ(second.link.TakeSent(), "~p3 UID FETCH 13 (FLAGS)\r\n");
  second.link.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(second.out.Take(), "c OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, EventWhileAwayIsDeliveredOnResume) {
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);
  Drop(first);
  registry_.OnStoreEvents("alice", {NewMail(13)});

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  EXPECT_EQ(second.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(), "~p2 SELECT \"INBOX\"\r\n");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(
      second.out.Take(),
      absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* 4 EXISTS\r\n"
                   "* SESSIONID ",
                   id, "\r\n", LoginOk("a2")));
}

TEST_F(DeviceDriverTest, AcknowledgedPushIsNotReplayed) {
  config_.default_notification = FilterSpec::All();
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);
  EnterIdle(first);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  ASSERT_EQ(first.out.Take(), "* 4 EXISTS\r\n");
  // DONE is a command line: it acknowledges the EXISTS written before it.
  EXPECT_TRUE(Done(first));
  EXPECT_EQ(first.link.TakeSent(), "DONE\r\n");
  first.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(first.out.Take(), "c OK Idle completed\r\n");
  Drop(first);

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
}

// architecture.md §4: only a command read after the events were written
// acknowledges them; one already on its way (pipelined) does not.
TEST_F(DeviceDriverTest,
       PipelinedCommandDoesNotAcknowledgeWhatWasWrittenAfterIt) {
  config_.default_notification = FilterSpec::All();
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);
  first.out.Take();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  Run(first, "n NOOP");
  EXPECT_EQ(first.link.TakeSent(), "~p4 NOOP\r\n");
  first.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(first.out.Take(), "* 4 EXISTS\r\nn OK NOOP completed\r\n");
  RunPipelined(first, "m NOOP");  // arrived together with "n NOOP"
  EXPECT_EQ(first.link.TakeSent(), "~p5 NOOP\r\n");
  first.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(first.out.Take(), "m OK NOOP completed\r\n");
  Drop(first);  // the EXISTS may never have arrived: it is replayed

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(
      second.out.Take(),
      absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* 4 EXISTS\r\n"
                   "* SESSIONID ",
                   id, "\r\n", LoginOk("a2")));
}

TEST_F(DeviceDriverTest, ResumeWithoutASelectedFolderIsAuthenticated) {
  Device& first = Connect();
  const uint64_t id = Login(first);
  Drop(first);
  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  EXPECT_EQ(second.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(), "");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION AUTHENTICATED\r\n* SESSIONID ", id, "\r\n",
                         LoginOk("a2")));
}

TEST_F(DeviceDriverTest, FolderEventsWhileAwayAreReplayedUntilAcknowledged) {
  Device& first = Connect();
  const uint64_t id = Login(first);
  Drop(first);
  StoreEvent created;
  created.kind = EventKind::kFolderCreated;
  created.folder = "Work";
  created.raw = "* LIST () \"/\" Work";
  registry_.OnStoreEvents("alice", {created});
  const std::string resumed = absl::StrCat(
      "* SESSION AUTHENTICATED\r\n* LIST () \"/\" Work\r\n* SESSIONID ", id,
      "\r\n", LoginOk("a2"));
  // Written at resume, but not acknowledged (no command followed): again.
  for (int round = 0; round < 2; ++round) {
    Device& d = Connect();
    d.driver->Start(&d.link, "a2", "pw");
    d.link.Complete("~p1", "OK Enabled");
    EXPECT_EQ(d.out.Take(), resumed) << round;
    Drop(d);
  }
  Device& last = Connect();
  last.driver->Start(&last.link, "a2", "pw");
  last.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(last.out.Take(), resumed);
  Run(last, "x XGETPIMAPPREFS");  // any command acknowledges it
  last.out.Take();
  Drop(last);
  Device& after = Connect();
  after.driver->Start(&after.link, "a3", "pw");
  after.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(after.out.Take(),
            absl::StrCat("* SESSION AUTHENTICATED\r\n* SESSIONID ", id, "\r\n",
                         LoginOk("a3")));
}

TEST_F(DeviceDriverTest, NewerConnectionOfTheDeviceTakesTheSessionOver) {
  Device& first = Connect();
  const uint64_t id = Login(first);
  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  EXPECT_EQ(second.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  EXPECT_THAT(
      first.out.end_session,
      ElementsAre("Session taken over by a newer connection of this device"));
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION AUTHENTICATED\r\n* SESSIONID ", id, "\r\n",
                         LoginOk("a2")));
  // The old connection's driver no longer reaches the session.
  Run(first, "z NOOP");
  EXPECT_EQ(first.out.Take(), "z NO [UNAVAILABLE] The session has ended\r\n");
  EXPECT_EQ(first.link.TakeSent(), "");
  // Freeing the old driver leaves the new connection's session alone.
  Drop(first);
  EXPECT_EQ(registry_.sessions(), 1u);
  registry_.OnStoreEvents("alice",
                          {NewMail(13)});  // no crash, nothing selected
  Run(second, "n NOOP");
  EXPECT_EQ(second.link.TakeSent(), "~p2 NOOP\r\n");
}

TEST_F(DeviceDriverTest, OtherDevicesOfTheUserHaveTheirOwnSessions) {
  Device& phone = Connect("alice", "phone");
  const uint64_t phone_id = Login(phone);
  Device& tablet = Connect("alice", "tablet");
  const uint64_t tablet_id = Login(tablet);
  EXPECT_NE(phone_id, tablet_id);
  EXPECT_TRUE(phone.out.end_session.empty());
  EXPECT_EQ(registry_.sessions(), 2u);
  EXPECT_EQ(watches_.calls.size(), 1u);  // one watch per user
}

TEST_F(DeviceDriverTest, ExpungedJournalEventAfterReconnectMeansResync) {
  config_.default_notification = FilterSpec::All();
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);
  EnterIdle(first);
  registry_.OnStoreEvents("alice", {Expunged(9)});
  ASSERT_EQ(first.out.Take(), "* 2 EXPUNGE\r\n");
  // Gone before acknowledging it: the device may or may not have applied the
  // EXPUNGE, so a replay could remove the wrong message.
  Drop(first);

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(second.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  EXPECT_EQ(second.out.transcript(), "");
  second.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,12");
  second.link.Complete("~p3", "OK Search completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* RESYNC\r\n"
                         "* 2 EXISTS\r\n* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
  EXPECT_EQ(counters_.resyncs.load(), 1u);
  Run(second, "c FETCH 2 (FLAGS)");
  EXPECT_EQ(second.link.TakeSent(), "~p4 UID FETCH 12 (FLAGS)\r\n");
}

// Chaos defect 4: the store expunges a message after it ran the resume's
// snapshot (UID SEARCH) but before its answer reaches us. The view has the UID;
// the EXPUNGE must still reach the device.
TEST_F(DeviceDriverTest, ExpungeWhileTheResyncSnapshotIsOnItsWayIsRendered) {
  config_.default_notification = FilterSpec::All();
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);
  EnterIdle(first);
  registry_.OnStoreEvents("alice", {Expunged(9)});
  ASSERT_EQ(first.out.Take(), "* 2 EXPUNGE\r\n");
  Drop(first);  // uncertain: the resume resyncs

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n"
            "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  // The store answers with 4 and 12, then expunges 12 and pushes that before
  // its answer is read; and a new 13, which the snapshot already has.
  registry_.OnStoreEvents("alice", {Expunged(12), NewMail(13)});
  second.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,12:13");
  second.link.Complete("~p3", "OK Search completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* RESYNC\r\n"
                         "* 3 EXISTS\r\n* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
  Run(second, "d NOOP");
  EXPECT_EQ(second.link.TakeSent(), "~p4 NOOP\r\n");
  second.link.Complete("~p4", "OK NOOP completed");
  // 12 goes once; 13 is not announced again.
  EXPECT_EQ(second.out.Take(), "* 2 EXPUNGE\r\nd OK NOOP completed\r\n");
}

TEST_F(DeviceDriverTest, OverflowedJournalIsRebuiltExactlyFromModseq) {
  config_.journal_limit = 1;
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);  // HIGHESTMODSEQ 10: the view's checkpoint
  Drop(first);
  registry_.OnStoreEvents("alice", {NewMail(13), NewMail(14)});  // overflows

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n");
  second.link.Reply("* 4 EXISTS");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Reply("* OK [HIGHESTMODSEQ 15] Highest");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  // What changed since MODSEQ 10 in the device's view ...
  EXPECT_EQ(second.link.TakeSent(),
            "~p3 UID FETCH 4,9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  second.link.Reply("* VANISHED (EARLIER) 4");
  second.link.Reply("* 2 FETCH (UID 12 FLAGS (\\Seen) MODSEQ (13))");
  second.link.Complete("~p3", "OK Fetch completed");
  // ... and what is new above it.
  EXPECT_EQ(second.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 13:* ALL\r\n");
  second.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 13:14");
  second.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n"
                         "* 1 EXPUNGE\r\n"
                         "* 2 FETCH (UID 12 FLAGS (\\Seen))\r\n"
                         "* 4 EXISTS\r\n"
                         "* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
  EXPECT_EQ(counters_.rebuilds.load(), 1u);
  EXPECT_EQ(counters_.resyncs.load(), 0u);
  // The view is now 9, 12, 13, 14.
  Run(second, "c FETCH 4 (FLAGS)");
  EXPECT_EQ(second.link.TakeSent(), "~p5 UID FETCH 14 (FLAGS)\r\n");
}

// Chaos defect 3: a pushed flag change whose whole list the store's
// notification did not give (`resolve`) is never rendered as it came: the
// idling device gets the store's own flag list, fetched by UID.
TEST_F(DeviceDriverTest, PushedFlagChangeOfUnknownResultIsFetchedInIdle) {
  config_.default_notification = FilterSpec::All();
  config_.pushes = true;
  config_.watch = false;
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  EnterIdle(d);
  const std::string idle_tag = d.link.last_tag();
  StoreEvent change;
  change.kind = EventKind::kFlags;
  change.folder = "INBOX";
  change.uidvalidity = 7;
  change.uid = 9;
  change.resolve = true;  // e.g. FlagsSet ($X) on a message with \Seen
  registry_.OnStoreEvents("alice", {change, Expunged(12)});
  EXPECT_EQ(d.out.Take(), "");  // nothing before the store's flags
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete(idle_tag, "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 9 (FLAGS)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen $X))");
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 3 EXPUNGE\r\n* 2 FETCH (UID 9 FLAGS (\\Seen $X))\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
}

TEST_F(DeviceDriverTest, FlagChangeToResolveOfAnotherUidvalidityHoldsNothing) {
  config_.default_notification = FilterSpec::All();
  config_.pushes = true;
  config_.watch = false;
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  EnterIdle(d);
  StoreEvent change;
  change.kind = EventKind::kFlags;
  change.folder = "INBOX";
  change.uidvalidity = 8;  // not the view's messages
  change.uid = 9;
  change.resolve = true;
  registry_.OnStoreEvents("alice", {change, Expunged(12)});
  EXPECT_EQ(d.out.Take(), "* 3 EXPUNGE\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
}

// Found by the push-mode chaos test at full scale: new mail pushed just before
// the device went away, never acknowledged, then an exact rebuild at resume.
// The device may lack that EXISTS: it comes again, before the rebuild's lines.
TEST_F(DeviceDriverTest, UnacknowledgedNewMailIsCountedAgainBeforeARebuild) {
  config_.default_notification = FilterSpec::All();
  config_.pushes = true;
  config_.watch = false;
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);  // 4, 9, 12 at HIGHESTMODSEQ 10
  EnterIdle(first);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  ASSERT_EQ(first.out.Take(), "* 4 EXISTS\r\n");
  Drop(first);  // perhaps before the device read it

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Reply("* OK [HIGHESTMODSEQ 15] Highest");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n"
            "~p3 UID FETCH 4,9,12:13 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  second.link.Reply("* VANISHED (EARLIER) 12");
  second.link.Reply("* 3 FETCH (UID 13 FLAGS (\\Seen) MODSEQ (14))");
  second.link.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(second.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 14:* ALL\r\n");
  second.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 13");
  second.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n"
                         "* 4 EXISTS\r\n* 3 EXPUNGE\r\n"
                         "* 3 FETCH (UID 13 FLAGS (\\Seen))\r\n"
                         "* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
}

// Found by the push-mode chaos test at full scale: a rebuild told the device
// \\Seen; the store's change back to no flags must still be pushed.
TEST_F(DeviceDriverTest, FlagsToldByARebuildAreRemembered) {
  config_.default_notification = FilterSpec::All();
  config_.pushes = true;
  config_.watch = false;
  Device& first = Connect();
  const uint64_t id = Login(first);
  SelectInbox(first);  // 4, 9, 12 at HIGHESTMODSEQ 10
  Run(first, "f FETCH 3 (FLAGS)");
  EXPECT_EQ(first.link.TakeSent(), "~p4 UID FETCH 12 (FLAGS)\r\n");
  first.link.Reply("* 3 FETCH (UID 12 FLAGS ())");
  first.link.Complete("~p4", "OK Fetch completed");
  first.out.Take();
  Drop(first);

  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  second.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  second.link.Reply("* OK [HIGHESTMODSEQ 15] Highest");
  second.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  second.link.TakeSent();
  second.link.Reply("* 3 FETCH (UID 12 FLAGS (\\Seen) MODSEQ (14))");
  second.link.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(second.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 13:* ALL\r\n");
  second.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 12");
  second.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n"
                         "* 3 FETCH (UID 12 FLAGS (\\Seen))\r\n"
                         "* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
  EnterIdle(second);
  StoreEvent back;
  back.kind = EventKind::kFlags;
  back.folder = "INBOX";
  back.uidvalidity = 7;
  back.uid = 12;  // the store's flags again: none
  registry_.OnStoreEvents("alice", {back});
  EXPECT_EQ(second.out.Take(), "* 3 FETCH (UID 12 FLAGS ())\r\n");
}

TEST_F(DeviceDriverTest, UnwatchedFolderLearnsNewMailFromItsOwnConnection) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(
      SelectInbox(d, "b", "Work"),
      absl::StrCat("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                   "* OK [UIDVALIDITY 7] UIDs valid\r\n"
                   "* 3 EXISTS\r\n* 0 RECENT\r\n"
                   "b OK [READ-WRITE] Select completed\r\n"));
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* 4 EXISTS");
  d.link.Complete("~p4", "OK NOOP completed");
  // The store's EXISTS counts the store's messages: the gateway asks which UIDs
  // are new before it tells the device.
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID SEARCH RETURN (ALL) UID 13:*\r\n");
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nn OK NOOP completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverTest, UnwatchedFolderPushesItsOwnNewMailInIdle) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d, "b", "Work");
  EnterIdle(d);
  d.link.Reply("* 4 EXISTS");
  // Leave the store's IDLE (the device stays in its own) to find the new UID.
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID SEARCH RETURN (ALL) UID 13:*\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");  // the device never left IDLE: no second "+"
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverTest, DoneWhileTheGatewayLeftIdleEndsItAfterTheVerdicts) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d, "b", "Work");
  EnterIdle(d);
  d.link.Reply("* 4 EXISTS");
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  // The device's DONE crosses the gateway's: it is taken, not sent twice.
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID SEARCH RETURN (ALL) UID 13:*\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");  // no new IDLE
  EXPECT_FALSE(d.out.command_running);
}

}  // namespace
}  // namespace pimap::session
