// DeviceDriver, the transport-free P-IMAP session engine, with a fake store
// link per device (fixture: device_driver_fixture.h): login, SELECT and MSN
// rendering, the P-IMAP extension commands. Events and resume are in
// device_driver_events_test.cc, filters in device_driver_filters_test.cc,
// the other commands in device_driver_commands_test.cc.
#include "core/session/device_driver.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/session/event.h"
#include "core/session/filter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverTest;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::NewMail;
using ::pimap::session::testing::SessionIdIn;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

// ---- Login
// -------------------------------------------------------------------

TEST_F(DeviceDriverTest, FirstLoginEnablesQresyncAndAnswersWithSessionId) {
  Device& d = Connect();
  d.driver->Start(&d.link, "a1", "pw");
  ASSERT_NE(d.link.client(), nullptr);
  EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  // Nothing for the device until the store has answered; input is held.
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(d.out.login_done.empty());
  EXPECT_TRUE(d.out.command_running);
  // The user's watch was opened with the login's credentials.
  ASSERT_EQ(watches_.calls.size(), 1u);
  EXPECT_EQ(watches_.calls[0].user, "alice");
  EXPECT_EQ(watches_.calls[0].credentials.user, "alice");
  EXPECT_EQ(watches_.calls[0].credentials.password, "pw");
  EXPECT_EQ(watches_.calls[0].sink, &registry_);
  EXPECT_EQ(watches_.calls[0].scope, WatchScope::kAll);  // INBOX and the rest

  d.link.Reply("* ENABLED QRESYNC");
  EXPECT_EQ(d.out.transcript(), "");  // the store's ENABLED is the gateway's
  d.link.Complete("~p1", "OK Enabled");
  const std::string got = d.out.Take();
  const uint64_t id = SessionIdIn(got);
  EXPECT_NE(id, 0u) << got;
  EXPECT_EQ(got, absl::StrCat("* SESSIONID ", id, "\r\n", LoginOk("a1")));
  EXPECT_THAT(d.out.login_done, ElementsAre(true));
  EXPECT_FALSE(d.out.command_running);
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(registry_.sessions(), 1u);
  EXPECT_EQ(counters_.session_resumes.load(), 0u);
  EXPECT_THAT(d.driver->store_capabilities(),
              ElementsAre("IMAP4REV1", "QRESYNC", "CONDSTORE", "UIDPLUS",
                          "LITERAL+", "ENABLE", "IDLE"));
}

TEST_F(DeviceDriverTest, StoreRefusingEnableRefusesTheSession) {
  Device& d = Connect();
  d.driver->Start(&d.link, "a1", "pw");
  EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  d.link.Complete("~p1", "BAD Unknown command");
  EXPECT_EQ(
      d.out.Take(),
      "a1 NO [CANNOT] The message store lacks QRESYNC, which P-IMAP sessions "
      "need\r\n");
  EXPECT_THAT(d.out.login_done, ElementsAre(false));
  EXPECT_TRUE(d.link.closed());
  EXPECT_FALSE(d.out.command_running);
  // The session ended: no session left, the user's watch closed with it.
  EXPECT_EQ(registry_.sessions(), 0u);
  ASSERT_EQ(watches_.watches.size(), 1u);
  EXPECT_TRUE(watches_.watches[0]->closed);
  // A command that still arrives is refused without reaching the store.
  Run(d, "b NOOP");
  EXPECT_EQ(d.out.Take(), "b NO [UNAVAILABLE] The session has ended\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
}

// ---- SELECT and MSN rendering
// ------------------------------------------------

TEST_F(DeviceDriverTest, SelectBuildsTheViewFromTheStoreSearch) {
  Device& d = Connect();
  Login(d);
  Run(d, "b SELECT INBOX");
  EXPECT_EQ(d.link.TakeSent(), "~p2 SELECT INBOX\r\n");
  EXPECT_TRUE(d.out.command_running);
  d.link.Reply("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
  d.link.Reply("* 3 EXISTS");
  d.link.Reply("* 0 RECENT");
  d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  d.link.Reply("* OK [HIGHESTMODSEQ 10] Highest");
  d.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  // Not answered yet: the device's view comes from a UID SEARCH first.
  EXPECT_EQ(d.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  EXPECT_THAT(d.out.transcript(), ::testing::Not(HasSubstr("b OK")));
  EXPECT_THAT(d.out.transcript(), ::testing::Not(HasSubstr("EXISTS")));
  d.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,9,12");
  d.link.Complete("~p3", "OK Search completed");
  EXPECT_EQ(d.out.Take(), SelectedInbox("b"));
  EXPECT_FALSE(d.out.command_running);
  ASSERT_FALSE(d.out.running_calls.empty());
  EXPECT_THAT(d.out.running_calls.back(), Pair(false, true));
  // The store's HIGHESTMODSEQ is not the device's business (no CONDSTORE).
  EXPECT_EQ(d.link.TakeSent(), "");
}

// An event of the folder being selected, arriving after the SELECT went out but
// not in the store's snapshot, is journaled (the folder is not the selected one
// yet) and reaches the device once the folder is.
TEST_F(DeviceDriverTest, EventOfTheFolderBeingSelectedIsKept) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(watches_.watches.size(), 1u);
  watches_.watches[0]->uidvalidity_value = 7;  // the watch covers Work
  Run(d, "b SELECT Work");
  EXPECT_EQ(d.link.TakeSent(), "~p2 SELECT Work\r\n");
  registry_.OnStoreEvents("alice", {NewMail(13, 7, "Work")});
  d.link.Reply("* 3 EXISTS");
  d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  d.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,9,12");
  d.link.Complete("~p3", "OK Search completed");
  const std::string selected = d.out.Take();
  EXPECT_THAT(selected, HasSubstr("* 3 EXISTS\r\n"));
  EXPECT_THAT(selected, HasSubstr("* 4 EXISTS\r\nb OK"));  // 13 comes with it
}

// The same while the view's UID SEARCH runs (the SELECT has completed, the
// folder is not the selected one until the search does).
TEST_F(DeviceDriverTest, EventDuringTheViewSearchOfASelectIsKept) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(watches_.watches.size(), 1u);
  watches_.watches[0]->uidvalidity_value = 7;
  Run(d, "b SELECT Work");
  EXPECT_EQ(d.link.TakeSent(), "~p2 SELECT Work\r\n");
  d.link.Reply("* 3 EXISTS");
  d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  d.link.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(d.link.TakeSent(), "~p3 UID SEARCH RETURN (ALL) ALL\r\n");
  registry_.OnStoreEvents("alice", {NewMail(13, 7, "Work")});
  d.link.Reply("* ESEARCH (TAG \"~p3\") UID ALL 4,9,12");
  d.link.Complete("~p3", "OK Search completed");
  EXPECT_THAT(d.out.Take(), HasSubstr("* 4 EXISTS\r\nb OK"));
}

TEST_F(DeviceDriverTest, SelectRefusedByTheStoreIsPassedOn) {
  Device& d = Connect();
  Login(d);
  Run(d, "b SELECT Nope");
  EXPECT_EQ(d.link.TakeSent(), "~p2 SELECT Nope\r\n");
  d.link.Complete("~p2", "NO [NONEXISTENT] Mailbox doesn't exist: Nope");
  EXPECT_EQ(d.out.Take(), "b NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  // Nothing is selected: a FETCH is refused.
  Run(d, "c FETCH 1 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "c BAD FETCH needs a selected mailbox\r\n");
}

TEST_F(DeviceDriverTest, FetchByMsnGoesToTheStoreByUidAndComesBackRenumbered) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectInbox(d), SelectedInbox());
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (FLAGS)\r\n");
  // The store's own MSN (5) means nothing to the device: its view says 2.
  d.link.Reply("* 5 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "c OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, FetchOfAllMessagesRenumbersEachResponse) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectInbox(d), SelectedInbox());
  Run(d, "c FETCH 1:* (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 4,9,12 (FLAGS)\r\n");
  d.link.Reply("* 10 FETCH (UID 4 FLAGS () MODSEQ (3))");
  d.link.Reply("* 11 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (4))");
  d.link.Reply("* 12 FETCH (UID 12 FLAGS (\\Flagged) MODSEQ (5))");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 1 FETCH (UID 4 FLAGS ())\r\n"
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "* 3 FETCH (UID 12 FLAGS (\\Flagged))\r\n"
            "c OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, DeviceThatEnabledCondstoreKeepsModseq) {
  Device& d = Connect();
  Login(d);
  Run(d, "e ENABLE CONDSTORE");
  EXPECT_EQ(d.out.Take(), "* ENABLED CONDSTORE\r\ne OK ENABLE completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");  // the store connection has it on already
  SelectInbox(d);
  Run(d, "c UID FETCH 9 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (FLAGS)\r\n");
  d.link.Reply("* 5 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))\r\n"
            "c OK Fetch completed\r\n");
}

TEST_F(DeviceDriverTest, InvalidMsnIsBadWithoutAStoreCommand) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "c FETCH 4 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "c BAD Invalid message sequence number\r\n");
  Run(d, "d FETCH 2:5 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "d BAD Invalid message sequence number\r\n");
  Run(d, "e STORE 7 +FLAGS (\\Seen)");
  EXPECT_EQ(d.out.Take(), "e BAD Invalid message sequence number\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverTest, FetchWithoutASelectedMailboxIsBad) {
  Device& d = Connect();
  Login(d);
  Run(d, "c FETCH 1 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "c BAD FETCH needs a selected mailbox\r\n");
  Run(d, "d UID FETCH 1 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "d BAD UID needs a selected mailbox\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
}

// ---- P-IMAP extension commands ---------------------------------------------

TEST_F(DeviceDriverTest, PimapPrefsRoundTripWithoutTheStore) {
  Device& d = Connect();
  Login(d);
  Run(d, "g XSETPIMAPPREF PIMAP_EVENT_FILTER new");
  EXPECT_EQ(d.out.Take(), "g OK XSETPIMAPPREF completed\r\n");
  Run(d, "h XGETPIMAPPREF (PIMAP_EVENT_FILTER PIMAP_INBAND_NEW_FORMAT)");
  EXPECT_EQ(d.out.Take(),
            "* XGETPIMAPPREF (PIMAP_EVENT_FILTER NEW PIMAP_INBAND_NEW_FORMAT "
            "NONE)\r\n"
            "h OK XGETPIMAPPREF completed\r\n");
  Run(d, "i XSETPIMAPPREF PIMAP_NO_SUCH_PREF 1");
  EXPECT_THAT(d.out.Take(), StartsWith("i BAD "));
  Run(d, "j XGETPIMAPPREF (PIMAP_NO_SUCH_PREF)");
  EXPECT_THAT(d.out.Take(), StartsWith("j BAD "));
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverTest, XFilterBadSyntaxIsBadAndGoodOneIsKept) {
  Device& d = Connect();
  Login(d);
  Run(d, "f XFILTER INBOX Q ALL");
  const std::string bad = d.out.Take();
  EXPECT_THAT(bad, StartsWith("f BAD "));
  EXPECT_THAT(bad, ::testing::EndsWith("\r\n"));
  Run(d, "g XFILTER INBOX V FROM");  // FROM needs its string
  EXPECT_THAT(d.out.Take(), StartsWith("g BAD "));
  Run(d, "h XFILTER");
  EXPECT_THAT(d.out.Take(), StartsWith("h BAD "));
  // A notification filter with nothing selected: kept, no store work.
  Run(d, "i XFILTER INBOX N SEEN");
  EXPECT_EQ(d.out.Take(), "i OK XFILTER completed\r\n");
  Run(d, "j XFILTER INBOX N GET");
  EXPECT_EQ(d.out.Take(),
            "* XFILTER INBOX N SEEN\r\nj OK XFILTER completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
}

}  // namespace
}  // namespace pimap::session
