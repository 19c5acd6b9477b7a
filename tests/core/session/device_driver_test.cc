// DeviceDriver tests: the transport-free P-IMAP session engine driven through a
// fake store link and a fake device output. Each test plays the store's side of
// the conversation line by line and checks the exact bytes both sides get.
#include "core/session/device_driver.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/session/event.h"
#include "core/session/filter.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeDeviceOutput;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::SessionIdIn;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;


StoreEvent NewMail(uint32_t uid, uint32_t uidvalidity = 7,
                   absl::string_view folder = "INBOX") {
  StoreEvent e;
  e.kind = EventKind::kNew;
  e.folder = std::string(folder);
  e.uidvalidity = uidvalidity;
  e.uid = uid;
  return e;
}

StoreEvent Expunged(uint32_t uid, uint32_t uidvalidity = 7) {
  StoreEvent e;
  e.kind = EventKind::kExpunge;
  e.folder = "INBOX";
  e.uidvalidity = uidvalidity;
  e.uid = uid;
  return e;
}

// One device connection: its output, its store link and its driver.
struct Device {
  FakeDeviceOutput out;
  FakeStoreLink link;
  DeviceDriver* driver = nullptr;
};

class DeviceDriverTest : public ::testing::Test {
 protected:
  DeviceDriverTest()
      : timers_(MonotonicNowMs()),
        registry_(&timers_, &counters_, &config_, &watches_, &state_) {}

  ~DeviceDriverTest() override {
    for (auto& d : devices_) {
      if (d->driver != nullptr) d->driver->Release();
    }
  }

  DriverServices services() { return {&registry_, &counters_, &timers_}; }

  Device& Connect(const std::string& user = "alice",
                  const std::string& device = "phone") {
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    d.driver = new DeviceDriver(services(), &d.out, user, device);
    return d;
  }

  // The device goes away (the binding releases its driver).
  void Drop(Device& d) {
    d.driver->Release();
    d.driver = nullptr;
  }

  // A first login: ENABLE QRESYNC accepted. Returns the session id.
  uint64_t Login(Device& d, const std::string& tag = "a1") {
    d.driver->Start(&d.link, tag, "pw");
    EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    d.link.Reply("* ENABLED QRESYNC");
    d.link.Complete("~p1", "OK Enabled");
    const std::string got = d.out.Take();
    const uint64_t id = SessionIdIn(got);
    EXPECT_EQ(got, absl::StrCat("* SESSIONID ", id, "\r\n", LoginOk(tag)));
    EXPECT_THAT(d.out.login_done, ElementsAre(true));
    return id;
  }

  // One command line from the device, as the binding hands it over: first
  // OnCommandLine() (not the end of an IDLE here), then Execute().
  // A command line that arrived now (after everything written so far).
  void Run(Device& d, absl::string_view line) {
    d.driver->OnInputArrived();
    RunPipelined(d, line);
  }
  // A command line that arrived earlier, with the previous one (pipelining).
  void RunPipelined(Device& d, absl::string_view line) {
    absl::StatusOr<imap::Command> command =
        imap::testing::ParseCommandBytes(absl::StrCat(line, "\r\n"));
    ASSERT_TRUE(command.ok()) << command.status();
    ASSERT_FALSE(d.driver->OnCommandLine()) << line;
    d.driver->Execute(*command);
  }
  // The line that ends IDLE arrives now.
  static bool Done(Device& d) {
    d.driver->OnInputArrived();
    return d.driver->OnCommandLine();
  }

  // SELECT INBOX (or `folder`) with UIDVALIDITY 7, HIGHESTMODSEQ 10 and UIDs 4,
  // 9, 12 in the store; returns what the device got.
  std::string SelectInbox(Device& d, absl::string_view tag = "b",
                          absl::string_view folder = "INBOX") {
    Run(d, absl::StrCat(tag, " SELECT ", folder));
    testing::AnswerSelect(d.link, folder);
    return d.out.Take();
  }

  // What SelectInbox's device sees.
  static std::string SelectedInbox(absl::string_view tag = "b") {
    return absl::StrCat(
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        "* OK [UIDVALIDITY 7] UIDs valid\r\n"
        "* 3 EXISTS\r\n"
        "* 0 RECENT\r\n",
        tag, " OK [READ-WRITE] Select completed\r\n");
  }

  // "<tag> IDLE" accepted by the store: the device got the continuation.
  void EnterIdle(Device& d, absl::string_view tag = "c") {
    Run(d, absl::StrCat(tag, " IDLE"));
    const std::string idle_tag = d.link.last_tag();
    EXPECT_EQ(d.link.TakeSent(), absl::StrCat(idle_tag, " IDLE\r\n"));
    d.link.Reply("+ idling");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  SessionRegistry registry_;
  std::vector<std::unique_ptr<Device>> devices_;
};

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
TEST_F(DeviceDriverTest, PipelinedCommandDoesNotAcknowledgeWhatWasWrittenAfterIt) {
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
  EXPECT_EQ(second.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* 4 EXISTS\r\n"
                         "* SESSIONID ", id, "\r\n", LoginOk("a2")));
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
  const std::string resumed =
      absl::StrCat("* SESSION AUTHENTICATED\r\n* LIST () \"/\" Work\r\n* SESSIONID ", id,
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

// ---- Filters and preferences at work
// --------------------------------------------

TEST_F(DeviceDriverTest, InbandNewFormatFetchesNewMailBeforeTheAnswer) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "p XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (FLAGS)");
  EXPECT_EQ(d.out.Take(), "p OK XSETPIMAPPREF completed\r\n");
  registry_.OnStoreEvents("alice", {NewMail(13)});
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS () MODSEQ (14))");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 4 FETCH (UID 13 FLAGS ())\r\nn OK NOOP completed\r\n");
}

TEST_F(DeviceDriverTest, InbandNewFormatInIdleLeavesAndReentersTheStoresIdle) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "p XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (FLAGS)");
  EXPECT_EQ(d.out.Take(), "p OK XSETPIMAPPREF completed\r\n");
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "* 4 FETCH (UID 13 FLAGS ())\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverTest, JournalOverflowUnderALiveDeviceResyncs) {
  config_.journal_limit = 1;
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  registry_.OnStoreEvents("alice", {NewMail(13), NewMail(14)});
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID SEARCH RETURN (ALL) ALL\r\n");
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Reply("* ESEARCH (TAG \"~p5\") UID ALL 4,9,12:14");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* RESYNC\r\n* 5 EXISTS\r\nn OK NOOP completed\r\n");
  EXPECT_EQ(counters_.resyncs.load(), 1u);
}

// Events of a folder the device has not selected are never rendered to it, so
// they are not journaled: they cost no memory, and a busy other folder cannot
// overflow the selected one's journal (the device gets its INBOX news as usual).
TEST_F(DeviceDriverTest, OtherFoldersEventsDoNotFillTheJournal) {
  config_.journal_limit = 3;
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  // As many as the journal holds: kept, they would leave no room for INBOX's.
  std::vector<StoreEvent> busy;
  for (uint32_t uid = 100; uid < 103; ++uid) {
    StoreEvent e = NewMail(uid);
    e.folder = "Lists";
    busy.push_back(e);
  }
  registry_.OnStoreEvents("alice", busy);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "");  // no rebuild of INBOX
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nn OK NOOP completed\r\n");
  EXPECT_EQ(counters_.resyncs.load(), 0u);
}

TEST_F(DeviceDriverTest, ViewFilterChangeResyncsTheSelectedFolder) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "f XFILTER INBOX V UNSEEN");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SEARCH RETURN (ALL) UNSEEN\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 9");
  d.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(d.out.Take(),
            "* RESYNC\r\n* 1 EXISTS\r\nf OK XFILTER completed\r\n");
  Run(d, "g FETCH 1 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 9 (FLAGS)\r\n");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "g OK Fetch completed\r\n");
  Run(d, "h FETCH 2 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "h BAD Invalid message sequence number\r\n");
}

TEST_F(DeviceDriverTest, ViewFilterKeepsNewMailOutsideItFromTheDevice) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "f XFILTER INBOX V FROM boss");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SEARCH RETURN (ALL) FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 4,9,12");
  d.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(d.out.Take(),
            "* RESYNC\r\n* 3 EXISTS\r\nf OK XFILTER completed\r\n");
  registry_.OnStoreEvents("alice", {NewMail(13)});
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  // The verdict comes from the store (after a NOOP so that it sees the mail).
  EXPECT_EQ(d.link.TakeSent(), "~p6 NOOP\r\n");
  d.link.Complete("~p6", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p7 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p7\") UID");
  d.link.Complete("~p7", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "n OK NOOP completed\r\n");
  Run(d, "g FETCH 4 (FLAGS)");
  EXPECT_EQ(d.out.Take(), "g BAD Invalid message sequence number\r\n");
}

TEST_F(DeviceDriverTest, NotificationFilterAdmitsPushByTheStoresVerdict) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID ALL 13");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverTest, NotificationFilterHoldsBackMailTheStoreRejects) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "");  // not pushed ...
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.link.TakeSent(), "");  // ... and no loop of leaving IDLE for it
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  // ... but still in the view: it comes with the next answer.
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
}

// architecture.md §4: an admitted event is pushed at once; held-back mail
// before it rides along in the EXISTS count and never holds it back.
TEST_F(DeviceDriverTest, HeldBackMailDoesNotHoldBackLaterMatchingMail) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p6\") UID");
  d.link.Complete("~p6", "OK Search completed");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");  // someone else's mail alone pushes nothing
  // Mail from the boss: pushed at once, the count covers both.
  registry_.OnStoreEvents("alice", {NewMail(14)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p8 NOOP\r\n");
  d.link.Complete("~p8", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p9 UID SEARCH RETURN (ALL) UID 14 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p9\") UID ALL 14");
  d.link.Complete("~p9", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n* 5 EXISTS\r\n");
}

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
  EXPECT_EQ(d.link.TakeSent(), "~p4 STATUS INBOX (MESSAGES UNSEEN UIDNEXT)\r\n");
  d.link.Reply("* STATUS INBOX (MESSAGES 5 UNSEEN 4 UIDNEXT 20)");
  d.link.Complete("~p4", "OK Status completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID SEARCH RETURN (COUNT) UNSEEN UID 9,12\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p5\") UID COUNT 1");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(),
            "* STATUS INBOX (MESSAGES 2 UNSEEN 1 UIDNEXT 20)\r\ns OK Status completed\r\n");
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
TEST_F(DeviceDriverTest,
       TakeOverWhileACommandRunsWithoutImmediateDetach) {
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
