// DeviceDriver: view and notification filters and preferences at work
// (fixture: device_driver_fixture.h).
#include <cstdint>
#include <string>
#include <vector>

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
using ::pimap::session::testing::NewMail;

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
  // The EXISTS waits for its FETCH: both go as one pushed burst.
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  EXPECT_EQ(d.out.Take(), "");
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n* 4 FETCH (UID 13 FLAGS ())\r\n");
  EXPECT_THAT(
      d.out.event_bursts,
      ::testing::ElementsAre("* 4 EXISTS\r\n* 4 FETCH (UID 13 FLAGS ())\r\n"));
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverTest, InbandNewFormatLinkLostMidFetchStillSendsTheExists) {
  // The held EXISTS is the device's (its journal position counts as
  // delivered): it goes before the session ends (its own link lost); the
  // FETCH never completed. (Pooled links: device_driver_pool_test.)
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "p XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (FLAGS)");
  EXPECT_EQ(d.out.Take(), "p OK XSETPIMAPPREF completed\r\n");
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n~p6 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  EXPECT_EQ(d.out.Take(), "");
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_THAT(d.out.event_bursts, ::testing::ElementsAre("* 4 EXISTS\r\n"));
  EXPECT_THAT(d.out.end_session,
              ::testing::ElementsAre("Connection to the message store lost"));
}

TEST_F(DeviceDriverTest, InbandNewFormatTooLargeToHoldStreamsThrough) {
  // A format with the body: past 64 KiB the FETCH is not held for one burst,
  // it passes through after its EXISTS, in order.
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "p XSETPIMAPPREF PIMAP_INBAND_NEW_FORMAT (UID FLAGS BODY[TEXT])");
  EXPECT_EQ(d.out.Take(), "p OK XSETPIMAPPREF completed\r\n");
  EnterIdle(d);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 13 (UID FLAGS BODY[TEXT])\r\n");
  const std::string body(70000, 'x');
  d.link.Reply(
      absl::StrCat("* 4 FETCH (UID 13 FLAGS () BODY[TEXT] \"", body, "\")"));
  EXPECT_EQ(
      d.out.Take(),
      absl::StrCat("* 4 EXISTS\r\n* 4 FETCH (UID 13 FLAGS () BODY[TEXT] \"",
                   body, "\")\r\n"));
  EXPECT_THAT(d.out.event_bursts, ::testing::ElementsAre("* 4 EXISTS\r\n"));
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
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
// overflow the selected one's journal (the device gets its INBOX news as
// usual).
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

// A device in IDLE under "XFILTER INBOX N FROM boss" gets new mail 13: the
// gateway leaves IDLE, syncs and asks the store, whose verdict is `matched`
// (the ESEARCH's UID ALL part: "13", or "" when 13 is not from boss).
class DeviceDriverBossFilterTest : public DeviceDriverTest {
 protected:
  Device& IdleThenMail13(absl::string_view matched = "") {
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
    d.link.Reply(
        matched.empty()
            ? std::string("* ESEARCH (TAG \"~p6\") UID")
            : absl::StrCat("* ESEARCH (TAG \"~p6\") UID ALL ", matched));
    d.link.Complete("~p6", "OK Search completed");
    return d;
  }
};

TEST_F(DeviceDriverBossFilterTest,
       NotificationFilterAdmitsPushByTheStoresVerdict) {
  Device& d = IdleThenMail13("13");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p7 IDLE\r\n");
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  d.link.Complete("~p7", "OK Idle completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

TEST_F(DeviceDriverBossFilterTest,
       NotificationFilterHoldsBackMailTheStoreRejects) {
  Device& d = IdleThenMail13();
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
TEST_F(DeviceDriverBossFilterTest,
       HeldBackMailDoesNotHoldBackLaterMatchingMail) {
  Device& d = IdleThenMail13();
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

}  // namespace
}  // namespace pimap::session
