// DeviceDriver: XPSEARCH's virtual folders in a P-IMAP session (fixture:
// device_driver_fixture.h): created from the selected folder, listed,
// selected as their backing folder under their search with its UIDs, counted
// by STATUS, deleted and renamed by the session alone, kept across a restart.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/session/device_driver.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverTest;
using ::pimap::session::testing::NewMail;

class XpsearchTest : public DeviceDriverTest {
 protected:
  // Logged in, INBOX (4, 9, 12) selected, "Flagged" = INBOX FLAGGED created.
  Device& WithFlagged() {
    Device& d = Connect();
    Login(d);
    SelectInbox(d);
    Run(d, "x XPSEARCH Flagged FLAGGED");
    EXPECT_EQ(d.out.Take(), "x OK XPSEARCH completed\r\n");
    EXPECT_EQ(d.link.TakeSent(), "");
    return d;
  }
  // SELECT Flagged: the store selects INBOX, of which 9 and 12 are flagged.
  void SelectFlagged(Device& d) {
    Run(d, "s SELECT Flagged");
    const std::string tag = d.link.last_tag();
    EXPECT_EQ(d.link.TakeSent(), absl::StrCat(tag, " SELECT \"INBOX\"\r\n"));
    d.link.Reply("* FLAGS (\\Flagged \\Seen)");
    d.link.Reply("* 3 EXISTS");
    d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
    d.link.Reply("* OK [HIGHESTMODSEQ 10] Highest");
    d.link.Complete(tag, "OK [READ-WRITE] Select completed");
    const std::string search = d.link.last_tag();
    EXPECT_EQ(d.link.TakeSent(),
              absl::StrCat(search, " UID SEARCH RETURN (ALL) FLAGGED\r\n"));
    d.link.Reply(absl::StrCat("* ESEARCH (TAG \"", search, "\") UID ALL 9,12"));
    d.link.Complete(search, "OK Search completed");
    EXPECT_EQ(
        d.out.Take(),
        "* FLAGS (\\Flagged \\Seen)\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n"
        "* 2 EXISTS\r\n* 0 RECENT\r\n"
        "s OK [READ-WRITE] Select completed\r\n");
  }
};

TEST_F(XpsearchTest, ListShowsTheVirtualFolderAfterTheStoresOwn) {
  Device& d = WithFlagged();
  Run(d, "l LIST \"\" *");
  EXPECT_EQ(d.link.TakeSent(), "~p4 LIST \"\" *\r\n");
  d.link.Reply("* LIST (\\HasNoChildren) \"/\" INBOX");
  d.link.Complete("~p4", "OK List completed");
  EXPECT_EQ(d.out.Take(),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
            "* LIST () NIL \"Flagged\"\r\nl OK List completed\r\n");
  Run(d, "m LSUB \"\" \"X%\"");
  d.link.Complete("~p5", "OK Lsub completed");
  EXPECT_EQ(d.out.Take(), "m OK Lsub completed\r\n");
}

TEST_F(XpsearchTest, SelectShowsMatchingMessagesWithTheBackingUids) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "f FETCH 1:* (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 9,12 (FLAGS)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Flagged))");
  d.link.Reply("* 3 FETCH (UID 12 FLAGS (\\Flagged))");
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 1 FETCH (UID 9 FLAGS (\\Flagged))\r\n"
            "* 2 FETCH (UID 12 FLAGS (\\Flagged))\r\nf OK Fetch completed\r\n");
  Run(d, "g FETCH 3 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "g BAD Invalid message sequence number\r\n");
}

TEST_F(XpsearchTest, StoreAndExpungeActOnTheBackingMessages) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "t STORE 2 +FLAGS.SILENT (\\Deleted)");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID STORE 12 +FLAGS.SILENT (\\Deleted)\r\n");
  d.link.Complete("~p6", "OK Store completed");
  EXPECT_EQ(d.out.Take(), "t OK Store completed\r\n");
  // Only what the virtual folder shows may go (UIDPLUS UID EXPUNGE).
  Run(d, "e EXPUNGE");
  EXPECT_EQ(d.link.TakeSent(), "~p7 UID EXPUNGE 9,12\r\n");
  d.link.Reply("* VANISHED 12");
  d.link.Complete("~p7", "OK Expunge completed");
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\ne OK Expunge completed\r\n");
}

TEST_F(XpsearchTest, NewMailIsShownOnlyWhenItMatches) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  registry_.OnStoreEvents("alice", {NewMail(13), NewMail(14)});
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p6 NOOP\r\n");
  d.link.Complete("~p6", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p7 NOOP\r\n");
  d.link.Complete("~p7", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p8 UID SEARCH RETURN (ALL) UID 13:14 FLAGGED\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p8\") UID ALL 14");
  d.link.Complete("~p8", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 3 EXISTS\r\nn OK NOOP completed\r\n");
  Run(d, "u UID FETCH 14 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p9 UID FETCH 14 (FLAGS)\r\n");
  d.link.Complete("~p9", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "u OK Fetch completed\r\n");
}

TEST_F(XpsearchTest, AVirtualFolderOfNothingShowsNoNewMail) {
  Device& d = WithFlagged();
  Run(d, "x XPSEARCH Nothing NONE");
  EXPECT_EQ(d.out.Take(), "x OK XPSEARCH completed\r\n");
  Run(d, "s SELECT Nothing");
  EXPECT_EQ(d.link.TakeSent(), "~p4 SELECT \"INBOX\"\r\n");
  d.link.Complete("~p4", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID SEARCH RETURN (ALL) NOT ALL\r\n");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(
      d.out.Take(),
      "* 0 EXISTS\r\n* 0 RECENT\r\ns OK [READ-WRITE] Select completed\r\n");
  registry_.OnStoreEvents("alice", {NewMail(13)});
  Run(d, "n NOOP");
  d.link.Complete("~p6", "OK NOOP completed");
  d.link.Complete("~p7", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 NOOP\r\n~p7 NOOP\r\n"
            "~p8 UID SEARCH RETURN (ALL) UID 13 NOT ALL\r\n");
  d.link.Complete("~p8", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "n OK NOOP completed\r\n");
}

TEST_F(XpsearchTest, StatusCountsTheSelectedVirtualFolder) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "st STATUS Flagged (MESSAGES UIDNEXT)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 STATUS \"INBOX\" (MESSAGES UIDNEXT)\r\n");
  d.link.Reply("* STATUS INBOX (MESSAGES 3 UIDNEXT 13)");
  d.link.Complete("~p6", "OK Status completed");
  EXPECT_EQ(d.out.Take(),
            "* STATUS \"Flagged\" (MESSAGES 2 UIDNEXT 13)\r\n"
            "st OK Status completed\r\n");
  // The backing folder itself is the store's whole folder.
  Run(d, "su STATUS INBOX (MESSAGES)");
  EXPECT_EQ(d.link.TakeSent(), "~p7 STATUS INBOX (MESSAGES)\r\n");
  d.link.Reply("* STATUS INBOX (MESSAGES 3)");
  d.link.Complete("~p7", "OK Status completed");
  EXPECT_EQ(d.out.Take(),
            "* STATUS INBOX (MESSAGES 3)\r\nsu OK Status completed\r\n");
}

TEST_F(XpsearchTest, StatusOfAVirtualFolderNotSelectedNeedsAPool) {
  Device& d = WithFlagged();
  Run(d, "st STATUS Flagged (MESSAGES)");
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(d.out.Take(),
            "st NO [UNAVAILABLE] STATUS of a virtual folder needs it selected "
            "here\r\n");
}

TEST_F(XpsearchTest, DeleteAndRenameAreTheSessionsAlone) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "d DELETE Flagged");
  EXPECT_EQ(d.out.Take(), "d NO [INUSE] The virtual folder is selected\r\n");
  Run(d, "r RENAME Flagged Starred");
  EXPECT_EQ(d.out.Take(), "r OK RENAME completed\r\n");
  Run(d, "c CREATE Starred");
  EXPECT_EQ(d.out.Take(),
            "c NO [ALREADYEXISTS] A virtual folder has that name "
            "(XPSEARCH)\r\n");
  Run(d, "u UNSELECT");
  d.link.Complete("~p6", "OK Unselect completed");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UNSELECT\r\n");
  d.out.Take();
  Run(d, "d DELETE Starred");
  EXPECT_EQ(d.out.Take(), "d OK DELETE completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  // Gone: the name is the store's again.
  Run(d, "d2 DELETE Starred");
  EXPECT_EQ(d.link.TakeSent(), "~p7 DELETE Starred\r\n");
}

TEST_F(XpsearchTest, BadInput) {
  Device& d = Connect();
  Login(d);
  Run(d, "a XPSEARCH Flagged FLAGGED");
  EXPECT_EQ(d.out.Take(), "a BAD XPSEARCH needs a selected mailbox\r\n");
  SelectInbox(d);
  Run(d, "b XPSEARCH Flagged NOSUCHKEY");
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("b BAD "));
  Run(d, "c XPSEARCH Flagged CHARSET KOI8-R FLAGGED");
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("c NO [BADCHARSET] "));
  Run(d, "d XPSEARCH inbox FLAGGED");
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("d NO [ALREADYEXISTS] "));
  Run(d, "e XPSEARCH Flagged FLAGGED");
  EXPECT_EQ(d.out.Take(), "e OK XPSEARCH completed\r\n");
  Run(d, "f XPSEARCH Flagged SEEN");
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("f NO [ALREADYEXISTS] "));
  Run(d, "g RENAME Work Flagged");
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("g NO [ALREADYEXISTS] "));
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(XpsearchTest, CountAndSizeAreBounded) {
  config_.max_filters_per_device = 1;
  config_.max_filter_bytes = 32;
  Device& d = WithFlagged();
  Run(d, "y XPSEARCH Seen SEEN");
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("y NO [LIMIT] "));
  Run(d, "d DELETE Flagged");
  EXPECT_EQ(d.out.Take(), "d OK DELETE completed\r\n");
  Run(d, absl::StrCat("z XPSEARCH Long SUBJECT ", std::string(40, 'x')));
  EXPECT_THAT(d.out.Take(), ::testing::StartsWith("z NO [LIMIT] "));
}

TEST_F(XpsearchTest, StackedSearchAndsWithTheSelectedVirtualFolder) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "x XPSEARCH Both UNSEEN");
  EXPECT_EQ(d.out.Take(), "x OK XPSEARCH completed\r\n");
  Run(d, "s SELECT Both");
  EXPECT_EQ(d.link.TakeSent(), "~p6 SELECT \"INBOX\"\r\n");
  d.link.Complete("~p6", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p7 UID SEARCH RETURN (ALL) FLAGGED UNSEEN\r\n");
}

TEST_F(XpsearchTest, AViewFilterOfTheBackingFolderStillApplies) {
  Device& d = WithFlagged();
  Run(d, "v XFILTER INBOX V FROM boss");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SEARCH RETURN (ALL) FROM \"boss\"\r\n");
  d.link.Complete("~p4", "OK Search completed");
  d.out.Take();
  Run(d, "s SELECT Flagged");
  EXPECT_EQ(d.link.TakeSent(), "~p5 SELECT \"INBOX\"\r\n");
  d.link.Complete("~p5", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID SEARCH RETURN (ALL) FROM \"boss\" FLAGGED\r\n");
}

TEST_F(XpsearchTest, KeptAcrossARestartWithTheVirtualFolderSelected) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  // A restart: a new registry over the same durable state.
  SessionRegistry restarted(&timers_, &counters_, &config_, &watches_, &state_);
  Device again;
  again.driver = new DeviceDriver({&restarted, &counters_, &timers_},
                                  &again.out, "alice", "phone");
  again.driver->Start(&again.link, "a2", "pw");
  EXPECT_EQ(again.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  again.link.Complete("~p1", "OK Enabled");
  EXPECT_EQ(again.link.TakeSent(), "~p2 SELECT \"INBOX\"\r\n");
  again.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  again.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(again.link.TakeSent(),
            "~p3 UID FETCH 9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  again.link.Complete("~p3", "OK Fetch completed");
  // What came since is checked against the virtual folder's search.
  EXPECT_EQ(again.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 13:* FLAGGED\r\n");
  again.link.Complete("~p4", "OK Search completed");
  EXPECT_THAT(again.out.Take(), ::testing::HasSubstr("* FOLDER Flagged"));
  Run(again, "l LIST \"\" Fl*");
  again.link.Complete("~p5", "OK List completed");
  EXPECT_EQ(again.out.Take(),
            "* LIST () NIL \"Flagged\"\r\nl OK List completed\r\n");
  again.driver->Release();
  again.driver = nullptr;
}

// The store-checked resume follows the search as live flag changes do: a
// message unflagged while the device was away leaves the view.
TEST_F(XpsearchTest, ResumeDropsWhatStoppedMatchingWhileAway) {
  Device& d = WithFlagged();
  SelectFlagged(d);  // view 9, 12
  SessionRegistry restarted(&timers_, &counters_, &config_, &watches_, &state_);
  Device again;
  again.driver = new DeviceDriver({&restarted, &counters_, &timers_},
                                  &again.out, "alice", "phone");
  again.driver->Start(&again.link, "a2", "pw");
  again.link.Complete("~p1", "OK Enabled");
  again.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  again.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(again.link.TakeSent(),
            "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n"
            "~p3 UID FETCH 9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  again.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))");
  again.link.Reply("* 3 FETCH (UID 12 FLAGS (\\Flagged \\Seen) MODSEQ (12))");
  again.link.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(again.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 13:* FLAGGED\r\n");
  again.link.Complete("~p4", "OK Search completed");
  const std::string out = again.out.Take();
  EXPECT_THAT(out, ::testing::HasSubstr(
                       "* FOLDER Flagged\r\n* 1 EXPUNGE\r\n"
                       "* 1 FETCH (UID 12 FLAGS (\\Flagged \\Seen))\r\n"));
  again.driver->Release();
  again.driver = nullptr;
}

// Operations act on the backing messages: APPEND, COPY and MOVE to a virtual
// folder go to its backing folder (the store's APPENDUID/COPYUID are its).
TEST_F(XpsearchTest, AppendCopyAndMoveToAVirtualFolderGoToItsBackingFolder) {
  Device& d = WithFlagged();
  EXPECT_EQ(d.driver->RelayedFirstLine("a APPEND Flagged (\\Seen) {5}"),
            "a APPEND \"INBOX\" (\\Seen) {5}");
  EXPECT_EQ(d.driver->RelayedFirstLine("a append \"Flagged\" {5+}"),
            "a append \"INBOX\" {5+}");
  EXPECT_EQ(d.driver->RelayedFirstLine("a APPEND Work {5}"),
            "a APPEND Work {5}");
  EXPECT_EQ(d.driver->RelayedFirstLine("a APPEND {7}"), "a APPEND {7}");
  Run(d, "c COPY 1 Flagged");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID COPY 4 \"INBOX\"\r\n");
  d.link.Complete("~p4", "OK [COPYUID 7 4 20] Copy completed");
  EXPECT_THAT(d.out.Take(),
              ::testing::EndsWith("c OK [COPYUID 7 4 20] Copy completed\r\n"));
  Run(d, "m UID MOVE 9 \"Flagged\"");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID MOVE 9 \"INBOX\"\r\n");
  d.link.Complete("~p5", "OK Move completed");
  d.out.Take();
  Run(d, "w COPY 1 Work");  // not a virtual folder: as it is
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID COPY 4 Work\r\n");
  d.link.Complete("~p6", "OK Copy completed");
}

// docs/xpsearch.md "Events and resume": the view follows the search when a
// flag change decides it.
TEST_F(XpsearchTest, OwnUidStoreThatUnflagsLeavesTheView) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "t UID STORE 9 -FLAGS (\\Flagged)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID STORE 9 -FLAGS (\\Flagged)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  d.link.Complete("~p6", "OK Store completed");
  // Told its flags, then out of the view (nothing expunged on the store).
  EXPECT_EQ(d.out.Take(),
            "* 1 FETCH (UID 9 FLAGS (\\Seen))\r\n* 1 EXPUNGE\r\n"
            "t OK Store completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  Run(d, "f FETCH 1:* (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p7 UID FETCH 12 (FLAGS)\r\n");
}

TEST_F(XpsearchTest, StoreByMsnLeavesTheViewAtTheNextCommand) {
  Device& d = WithFlagged();
  SelectFlagged(d);
  Run(d, "t STORE 2 -FLAGS (\\Flagged)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID STORE 12 -FLAGS (\\Flagged)\r\n");
  d.link.Reply("* 3 FETCH (UID 12 FLAGS ())");
  d.link.Complete("~p6", "OK Store completed");
  // No EXPUNGE while a STORE by MSN runs (RFC 3501 §7.4.1).
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 12 FLAGS ())\r\nt OK Store completed\r\n");
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p7 NOOP\r\n");
  d.link.Complete("~p7", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\nn OK NOOP completed\r\n");
}

TEST_F(XpsearchTest, FlagChangesFromTheStoreMoveMessagesInAndOut) {
  config_.default_notification = FilterSpec::All();  // pushed in IDLE
  Device& d = WithFlagged();
  SelectFlagged(d);
  EnterIdle(d);
  StoreEvent off;
  off.kind = EventKind::kFlags;
  off.folder = "INBOX";
  off.uidvalidity = 7;
  off.uid = 9;
  off.flags = {"\\Seen"};
  registry_.OnStoreEvents("alice", {off});
  EXPECT_EQ(d.out.Take(), "* 1 EXPUNGE\r\n");
  // A message above the view now flagged enters it as new mail.
  StoreEvent on = off;
  on.uid = 14;
  on.flags = {"\\Flagged"};
  registry_.OnStoreEvents("alice", {on});
  EXPECT_EQ(d.out.Take(), "* 2 EXISTS\r\n");
  // One below the view's highest UID cannot (MSNs keep the UIDs' order).
  on.uid = 4;
  registry_.OnStoreEvents("alice", {on});
  EXPECT_EQ(d.out.Take(), "");
}

}  // namespace
}  // namespace pimap::session
