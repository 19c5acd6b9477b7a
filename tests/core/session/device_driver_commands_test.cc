// DeviceDriver: the other commands (SEARCH, STATUS, EXPUNGE, STORE, APPEND,
// MOVE, CLOSE, ...), CONDSTORE without ENABLE, and the end of a session
// (fixture: device_driver_fixture.h).
#include <cstdint>
#include <string>

#include "absl/status/status.h"
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
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- Other commands
// ------------------------------------------------------------

TEST_F(DeviceDriverTest, SearchByMsnAnswersFromTheView) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "s SEARCH UNSEEN 2:3");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SEARCH UNSEEN UID 9,12\r\n");
  d.link.Reply("* SEARCH 12 9 100");
  d.link.Complete("~p4", "OK Search completed");
  // MSNs of the device's view, ascending; UID 100 is not in it.
  EXPECT_EQ(d.out.Take(), "* SEARCH 2 3\r\ns OK Search completed\r\n");
  Run(d, "u UID SEARCH ALL");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID SEARCH ALL\r\n");
  d.link.Reply("* SEARCH 4 9 12 100");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* SEARCH 4 9 12\r\nu OK Search completed\r\n");
  Run(d, "r SEARCH RETURN (ALL) ALL");
  EXPECT_THAT(d.out.Take(), StartsWith("r BAD "));
}

TEST_F(DeviceDriverTest, StatusOfTheSelectedFolderCountsTheView) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "s STATUS INBOX (MESSAGES UIDNEXT)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 STATUS INBOX (MESSAGES UIDNEXT)\r\n");
  d.link.Reply("* STATUS INBOX (MESSAGES 10 UIDNEXT 20)");
  d.link.Complete("~p4", "OK Status completed");
  EXPECT_EQ(
      d.out.Take(),
      "* STATUS INBOX (MESSAGES 3 UIDNEXT 20)\r\ns OK Status completed\r\n");
}

// A view filter makes the folder a subset: STATUS counts the view (MESSAGES
// from the view, UNSEEN by the store over the view's UIDs).
TEST_F(DeviceDriverTest, StatusOfAFilteredSelectedFolderCountsTheViewsUnseen) {
  Device& d = Connect();
  Login(d);
  Run(d, "f XFILTER INBOX V FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  Run(d, "b SELECT INBOX");
  EXPECT_EQ(d.link.TakeSent(), "~p2 SELECT INBOX\r\n");
  d.link.Reply("* 5 EXISTS");
  d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  d.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 9,12");
  d.link.Complete("~p3", "OK Search completed");
  EXPECT_THAT(d.out.Take(), HasSubstr("* 2 EXISTS\r\n"));
  Run(d, "s STATUS INBOX (MESSAGES UNSEEN UIDNEXT)");
  EXPECT_EQ(d.link.TakeSent(),
            "~p4 STATUS INBOX (MESSAGES UNSEEN UIDNEXT)\r\n");
  d.link.Reply("* STATUS INBOX (MESSAGES 5 UNSEEN 4 UIDNEXT 20)");
  d.link.Complete("~p4", "OK Status completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p5 UID SEARCH RETURN (COUNT) UNSEEN UID 9,12\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p5\") UID COUNT 1");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(),
            "* STATUS INBOX (MESSAGES 2 UNSEEN 1 UIDNEXT 20)\r\ns OK Status "
            "completed\r\n");
}

TEST_F(DeviceDriverTest, ExpungeRendersVanishedAsExpungeOfTheView) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "x EXPUNGE");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID EXPUNGE 4,9,12\r\n");
  d.link.Reply("* VANISHED 4,12");
  d.link.Complete("~p4", "OK Expunge completed");
  EXPECT_EQ(d.out.Take(),
            "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\nx OK Expunge completed\r\n");
  // The watch reports the same expunges later: nothing more for the device.
  registry_.OnStoreEvents("alice", {Expunged(4), Expunged(12)});
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "n OK NOOP completed\r\n");
  Run(d, "f FETCH 1 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 9 (FLAGS)\r\n");
}

// RFC 7162 §3.2: with CONDSTORE on (the store link always has it), STORE
// .SILENT still answers "* n FETCH (UID u MODSEQ (m))". A device that did not
// enable CONDSTORE gets what a plain store sends: nothing.
TEST_F(DeviceDriverTest, SilentStoreSendsNoCondstoreEchoes) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "s STORE 1:3 +FLAGS.SILENT (\\Seen)");
  EXPECT_EQ(d.link.TakeSent(),
            "~p4 UID STORE 4,9,12 +FLAGS.SILENT (\\Seen)\r\n");
  d.link.Reply("* 1 FETCH (UID 4 MODSEQ (12))");
  d.link.Reply("* 5 FETCH (MODSEQ (13) UID 9)");
  d.link.Reply("* 6 FETCH (UID 12 FLAGS (\\Seen \\Flagged) MODSEQ (14))");
  d.link.Complete("~p4", "OK Store completed");
  // The last one changed another client's flags too: told, as a store would.
  EXPECT_EQ(d.out.Take(),
            "* 3 FETCH (UID 12 FLAGS (\\Seen \\Flagged))\r\n"
            "s OK Store completed\r\n");
  Run(d, "e ENABLE CONDSTORE");
  d.out.Take();
  Run(d, "t UID STORE 4 +FLAGS.SILENT (\\Draft)");
  d.link.TakeSent();
  d.link.Reply("* 1 FETCH (UID 4 MODSEQ (15))");
  d.link.Complete(d.link.last_tag(), "OK Store completed");
  EXPECT_EQ(d.out.Take(),
            "* 1 FETCH (UID 4 MODSEQ (15))\r\nt OK Store completed\r\n");
}

TEST_F(DeviceDriverTest, EchoOfTheDevicesOwnStoreIsNotPushedAgain) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "s STORE 2 +FLAGS (\\Seen)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID STORE 9 +FLAGS (\\Seen)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (12))");
  d.link.Complete("~p4", "OK Store completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\ns OK Store completed\r\n");
  StoreEvent seen;
  seen.kind = EventKind::kFlags;
  seen.folder = "INBOX";
  seen.uidvalidity = 7;
  seen.uid = 9;
  seen.flags = {"\\Seen"};
  StoreEvent flagged = seen;
  flagged.uid = 12;
  flagged.flags = {"\\Flagged"};
  registry_.OnStoreEvents("alice", {seen, flagged});
  Run(d, "n NOOP");
  d.link.Complete(d.link.last_tag(), "OK NOOP completed");
  // Only the change the device did not make itself.
  EXPECT_EQ(d.out.Take(),
            "* 3 FETCH (UID 12 FLAGS (\\Flagged))\r\nn OK NOOP completed\r\n");
}

TEST_F(DeviceDriverTest, FlagsThatAreNotFlagsNeverReachTheDevice) {
  // Issue 14: an event whose "flags" close the list and start a response of
  // their own (as a store push could carry them). In IDLE the device gets one
  // well-formed FETCH with the valid flags only, and no second line.
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  EnterIdle(d);
  StoreEvent e;
  e.kind = EventKind::kFlags;
  e.folder = "INBOX";
  e.uidvalidity = 7;
  e.uid = 4;
  e.flags = {
      "\\Seen", "\\Flagged))\r\n* 1 EXPUNGE", "x)", "a b", "\r\n", "$Work",
      "\\Bogus"};
  registry_.OnStoreEvents("alice", {e});
  const std::string out = d.out.Take();
  EXPECT_EQ(out, "* 1 FETCH (UID 4 FLAGS (\\Seen $Work))\r\n");
  EXPECT_EQ(out.find('\r'), out.size() - 2) << "one line only";
}

TEST_F(DeviceDriverTest, AppendIsRelayedVerbatim) {
  Device& d = Connect();
  Login(d);
  d.driver->BeginRelayed("x");
  d.driver->RelayBytes("x APPEND Sent {3+}\r\nabc\r\n");
  EXPECT_EQ(d.link.TakeSent(), "x APPEND Sent {3+}\r\nabc\r\n");
  EXPECT_EQ(d.driver->RelayPending(), 0u);
  d.link.client()->OnStoreDrained();
  EXPECT_EQ(d.out.relay_drained, 1);
  d.link.Complete("x", "OK [APPENDUID 7 20] Append completed");
  EXPECT_EQ(d.out.Take(), "x OK [APPENDUID 7 20] Append completed\r\n");
  EXPECT_THAT(d.out.relayed_done, ElementsAre("x"));
}

// Issue 14 (low): a device tag that looks like the gateway's own ("~p7") was
// not recognised as the device's: its APPEND never completed for it.
TEST_F(DeviceDriverTest, AppendWithATagLikeTheGatewaysCompletes) {
  Device& d = Connect();
  Login(d);
  d.driver->BeginRelayed("~p7");
  d.driver->RelayBytes("~p7 APPEND Sent {3+}\r\nabc\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p7 APPEND Sent {3+}\r\nabc\r\n");
  d.link.Complete("~p7", "OK [APPENDUID 7 20] Append completed");
  EXPECT_EQ(d.out.Take(), "~p7 OK [APPENDUID 7 20] Append completed\r\n");
  EXPECT_THAT(d.out.relayed_done, ElementsAre("~p7"));
  // The link is free again: the next command runs.
  Run(d, "n NOOP");
  EXPECT_TRUE(absl::EndsWith(d.link.TakeSent(), " NOOP\r\n"));
}

TEST_F(DeviceDriverTest, SlowDevicePausesReadingTheStore) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "c FETCH 1:* (FLAGS)");
  d.out.above_high_water = true;
  d.link.Reply("* 1 FETCH (UID 4 FLAGS ())");
  EXPECT_FALSE(d.link.reading());
  d.out.above_high_water = false;
  d.driver->OnOutputDrained();
  EXPECT_TRUE(d.link.reading());
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 1 FETCH (UID 4 FLAGS ())\r\nc OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, FetchWithALiteralStreamsThroughRenumbered) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "c FETCH 2 (BODY.PEEK[])");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (BODY.PEEK[])\r\n");
  // As store/upstream_link.cc delivers it: line, CRLF, literal, rest, CRLF.
  d.link.ReplyPieces(
      {"* 5 FETCH (UID 9 BODY[] {5}", "\r\n", "hello", ")", "\r\n"});
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(
      d.out.Take(),
      "* 2 FETCH (UID 9 BODY[] {5}\r\nhello)\r\nc OK Fetch completed\r\n");
  EXPECT_GE(d.out.pass_through_ends, 1);
}

TEST_F(DeviceDriverTest, SortAnswersInTheStoresOrder) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "s SORT (DATE) UTF-8 ALL");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SORT (DATE) UTF-8 ALL\r\n");
  d.link.Reply("* SORT 12 4 9");
  d.link.Complete("~p4", "OK Sort completed");
  EXPECT_EQ(d.out.Take(), "* SORT 3 1 2\r\ns OK Sort completed\r\n");
}

TEST_F(DeviceDriverTest, MoveExpungesTheMovedMessageFromTheView) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "m MOVE 2 Trash");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID MOVE 9 Trash\r\n");
  d.link.Reply("* OK [COPYUID 3 9 1] Moved UIDs.");
  d.link.Reply("* VANISHED 9");
  d.link.Complete("~p4", "OK Move completed");
  EXPECT_EQ(d.out.Take(),
            "* OK [COPYUID 3 9 1] Moved UIDs.\r\n* 2 EXPUNGE\r\nm OK Move "
            "completed\r\n");
  Run(d, "f FETCH 2 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 12 (FLAGS)\r\n");
}

TEST_F(DeviceDriverTest, CloseUnderAViewFilterExpungesOnlyTheView) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "f XFILTER INBOX V UNSEEN");
  d.link.TakeSent();
  d.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 9,12");
  d.link.Complete("~p4", "OK Search completed");
  ASSERT_EQ(d.out.Take(),
            "* RESYNC\r\n* 2 EXISTS\r\nf OK XFILTER completed\r\n");
  Run(d, "x CLOSE");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID EXPUNGE 9,12\r\n");
  d.link.Reply("* VANISHED 12");  // CLOSE reports no expunge
  d.link.Complete("~p5", "OK Expunge completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UNSELECT\r\n");
  d.link.Complete("~p6", "OK Unselect completed");
  EXPECT_EQ(d.out.Take(), "x OK Unselect completed\r\n");
  Run(d, "y FETCH 1 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "y BAD FETCH needs a selected mailbox\r\n");
}

TEST_F(DeviceDriverTest, ExamineIsResumedReadOnly) {
  Device& first = Connect();
  const uint64_t id = Login(first);
  Run(first, "b EXAMINE INBOX");
  EXPECT_EQ(first.link.TakeSent(), "~p2 EXAMINE INBOX\r\n");
  first.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  first.link.Complete("~p2", "OK [READ-ONLY] Examine completed");
  EXPECT_EQ(first.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  first.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,9,12");
  first.link.Complete("~p3", "OK Search completed");
  EXPECT_EQ(first.out.Take(),
            "* OK [UIDVALIDITY 7] UIDs valid\r\n* 3 EXISTS\r\n* 0 RECENT\r\n"
            "b OK [READ-ONLY] Examine completed\r\n");
  Drop(first);
  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(second.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 EXAMINE \"INBOX\"\r\n");
  second.link.Complete("~p2", "OK [READ-ONLY] Examine completed");
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
}

TEST_F(DeviceDriverTest, TakeOverWhileACommandRunsIsSafeWhenTheBindingCloses) {
  Device& first = Connect();
  Login(first);
  // Like bindings/tcp: EndSession says BYE and closes, detaching the driver.
  first.out.on_end_session = [&first] { first.driver->Detach(); };
  Run(first, "b SELECT INBOX");
  EXPECT_EQ(first.link.TakeSent(), "~p2 SELECT INBOX\r\n");
  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  EXPECT_THAT(first.out.end_session, ElementsAre(HasSubstr("taken over")));
  EXPECT_TRUE(first.link.closed());
  first.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  first.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(first.link.undelivered(), 2);
  second.link.Complete("~p1", "OK Enabled");
  EXPECT_THAT(second.out.Take(), StartsWith("* SESSION AUTHENTICATED\r\n"));
}

// ---- CONDSTORE without ENABLE
// -------------------------------------------------------

// RFC 7162 §3.1: a FETCH that asks for MODSEQ is a CONDSTORE-enabling
// command; the device gets the MODSEQ it asked for (it once lost it unless it
// had sent ENABLE CONDSTORE).
TEST_F(DeviceDriverTest, FetchModseqEnablesCondstore) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "c FETCH 2 (FLAGS MODSEQ)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (FLAGS MODSEQ)\r\n");
  d.link.Reply("* 5 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))\r\nc OK Fetch "
            "completed\r\n");
}

// RFC 7162 §3.1.8: SELECT with the CONDSTORE parameter enables CONDSTORE and
// the answer carries HIGHESTMODSEQ.
TEST_F(DeviceDriverTest, SelectCondstoreEnablesCondstore) {
  Device& d = Connect();
  Login(d);
  Run(d, "b SELECT INBOX (CONDSTORE)");
  EXPECT_EQ(d.link.TakeSent(), "~p2 SELECT INBOX (CONDSTORE)\r\n");
  d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  d.link.Reply("* OK [HIGHESTMODSEQ 10] Highest");
  d.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,9,12");
  d.link.Complete("~p3", "OK Search completed");
  EXPECT_EQ(
      d.out.Take(),
      "* OK [UIDVALIDITY 7] UIDs valid\r\n* OK [HIGHESTMODSEQ 10] Highest\r\n"
      "* 3 EXISTS\r\n* 0 RECENT\r\nb OK [READ-WRITE] Select completed\r\n");
}

// RFC 7162 §3.1.5: a SEARCH with the MODSEQ key answers with "(MODSEQ n)"
// after the numbers.
TEST_F(DeviceDriverTest, SearchModseqKeepsTheHighestModseq) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "s SEARCH MODSEQ 5");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SEARCH MODSEQ 5\r\n");
  d.link.Reply("* SEARCH 9 12 (MODSEQ 13)");
  d.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(d.out.Take(),
            "* SEARCH 2 3 (MODSEQ 13)\r\ns OK Search completed\r\n");
}

// store_link.h promises "verbatim bytes ..., CRLFs included", not how they are
// cut: a link that delivers "* 4 EXISTS\r\n" in one call must be read the same
// as one that sends the CRLF apart (UpstreamLink does).
TEST_F(DeviceDriverTest, WholeLineDeliveryStillSeesTheStoresExists) {
  Device& d = Connect();
  d.link.whole_lines = true;
  Login(d);
  SelectInbox(d, "b", "Work");
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* 4 EXISTS");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID SEARCH RETURN (ALL) UID 13:*\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nn OK NOOP completed\r\n");
}

// A binding that closes asynchronously (flushing its BYE first) keeps the
// driver a while after a take-over: the command still running must not touch
// the session, which now belongs to the newer connection (it once dereferenced
// a null session here). The driver drops its link at the take-over.
TEST_F(DeviceDriverTest, TakeOverWhileACommandRunsWithoutImmediateDetach) {
  Device& first = Connect();
  Login(first);
  Run(first, "b SELECT INBOX");
  EXPECT_EQ(first.link.TakeSent(), "~p2 SELECT INBOX\r\n");
  Device& second = Connect();
  second.driver->Start(&second.link, "a2", "pw");
  EXPECT_THAT(first.out.end_session, ElementsAre(HasSubstr("taken over")));
  EXPECT_TRUE(first.link.closed());
  first.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  first.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(first.link.TakeSent(), "");
}

// ---- End of a session
// ----------------------------------------------------------

TEST_F(DeviceDriverTest, StoreLinkLostEndsTheDeviceSession) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "c FETCH 1 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 4 (FLAGS)\r\n");
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_THAT(d.out.end_session,
              ElementsAre("Connection to the message store lost"));
  EXPECT_EQ(d.out.closes, 0);
  // The link is gone: the driver must not close it again on release.
  Drop(d);
  EXPECT_EQ(d.link.close_calls(), 0);
  // The session lives on for the device's next connection.
  EXPECT_EQ(registry_.sessions(), 1u);
}

TEST_F(DeviceDriverTest, StoreLinkLostWhileIdleEndsTheSession) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  EnterIdle(d);
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_THAT(d.out.end_session,
              ElementsAre("Connection to the message store lost"));
  // An event afterwards reaches no store link.
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverTest, LogoutPassesTheGoodbyeThroughAndEndsTheSession) {
  Device& d = Connect();
  const uint64_t id = Login(d);
  SelectInbox(d);
  Run(d, "z LOGOUT");
  EXPECT_EQ(d.link.TakeSent(), "z LOGOUT\r\n");
  EXPECT_EQ(registry_.sessions(), 0u);
  ASSERT_EQ(watches_.watches.size(), 1u);
  EXPECT_TRUE(watches_.watches[0]->closed);  // the user's last session went
  d.link.Reply("* BYE Logging out");
  EXPECT_EQ(d.out.closes, 0);
  d.link.Complete("z", "OK Logout completed.");
  EXPECT_EQ(d.out.Take(), "* BYE Logging out\r\nz OK Logout completed.\r\n");
  EXPECT_EQ(d.out.closes, 1);
  EXPECT_TRUE(d.out.end_session.empty());
  Drop(d);
  EXPECT_TRUE(d.link.closed());

  // The next login of the device is a first login: nothing is resumed.
  Device& again = Connect();
  const uint64_t new_id = Login(again, "a2");
  EXPECT_NE(new_id, id);
  EXPECT_EQ(counters_.session_resumes.load(), 0u);
  EXPECT_EQ(watches_.calls.size(), 2u);
}

TEST_F(DeviceDriverTest, LogoutKeepsTheDevicesSettings) {
  Device& d = Connect();
  Login(d);
  Run(d, "g XSETPIMAPPREF PIMAP_EVENT_FILTER NEW");
  EXPECT_EQ(d.out.Take(), "g OK XSETPIMAPPREF completed\r\n");
  Run(d, "z LOGOUT");
  d.link.Complete("z", "OK Logout completed.");
  Drop(d);
  Device& again = Connect();
  Login(again, "a2");
  Run(again, "h XGETPIMAPPREF PIMAP_EVENT_FILTER");
  EXPECT_EQ(again.out.Take(),
            "* XGETPIMAPPREF (PIMAP_EVENT_FILTER NEW)\r\nh OK XGETPIMAPPREF "
            "completed\r\n");
}

}  // namespace
}  // namespace pimap::session
