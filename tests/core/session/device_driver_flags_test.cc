// What a device is told of flags (core/session/delivery.h Told, and
// RenderPending in device_driver_push.cc): never a change it already knows,
// and never a change missed because the gateway thought it knew it. Found by
// the chaos test (docs/chaos-test.md, defect 1): a resume's replay told the
// device flags without recording it, so a later change back to the flags it
// had before was taken for something it knew.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/filter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_pool_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverPoolTest;
using ::pimap::session::testing::Selected;
using ::testing::HasSubstr;

StoreEvent FlagsOf(uint32_t uid, std::vector<std::string> flags) {
  StoreEvent e;
  e.kind = EventKind::kFlags;
  e.folder = "INBOX";
  e.uidvalidity = 7;
  e.uid = uid;
  e.flags = std::move(flags);
  return e;
}

class DeviceDriverFlagsTest : public DeviceDriverPoolTest {
 protected:
  // A device in INBOX (UIDs 4, 9, 12; the watch covers it), in the
  // gateway's own IDLE.
  Device& IdleInInbox(Device& d) {
    Run(d, "c IDLE");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
    return d;
  }
  // A device of alice logged in with INBOX selected (UIDs 4, 9, 12, as the
  // watch knows it); every filter lets all through.
  Device& InboxOfAlice() {
    config_.default_notification = FilterSpec::All();
    Device& d = Connect();
    Login(d);
    watches_.watches[0]->uidvalidity_value = 7;
    EXPECT_EQ(SelectFolder(d, d.link), Selected());
    pool_.TakeCalls();
    return d;
  }
  // In IDLE the device is pushed "no flags" for UID 9, then leaves IDLE (which
  // acknowledges it).
  void ToldNoFlagsFor9(Device& d) {
    IdleInInbox(d);
    registry_.OnStoreEvents("alice", {FlagsOf(9, {})});
    EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS ())\r\n");
    EndIdle(d);
  }
  void EndIdle(Device& d) {
    EXPECT_TRUE(Done(d));
    FireTimers();
    EXPECT_THAT(d.out.Take(), HasSubstr("c OK"));
  }
};

TEST_F(DeviceDriverFlagsTest, AChangeBackAfterAReplayedChangeIsPushed) {
  Device& old = InboxOfAlice();
  ToldNoFlagsFor9(old);  // and acknowledged
  Drop(old);
  pool_.TakeCalls();
  // Away: 9 gets \Flagged. The resume replays it.
  registry_.OnStoreEvents("alice", {FlagsOf(9, {"\\Flagged"})});
  Device& d = Connect();
  d.driver->Start(nullptr, "a2", "pw");
  EXPECT_THAT(d.out.Take(),
              HasSubstr("* 2 FETCH (UID 9 FLAGS (\\Flagged))\r\n"));
  IdleInInbox(d);
  // Back to no flags: the device has \Flagged, so it must hear of it.
  registry_.OnStoreEvents("alice", {FlagsOf(9, {})});
  EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS ())\r\n");
}

TEST_F(DeviceDriverFlagsTest,
       AChangeBackAfterTheDevicesOwnSilentStoreIsPushed) {
  Device& d = InboxOfAlice();
  ToldNoFlagsFor9(d);
  // The device sets \Seen itself and is told nothing back (.SILENT).
  Run(d, "s STORE 2 +FLAGS.SILENT (\\Seen)");
  std::string sent = d.link.TakeSent();
  if (absl::EndsWith(sent, " NOOP\r\n")) {  // the link catches up first
    d.link.Complete(d.link.last_tag(), "OK NOOP completed");
    sent = d.link.TakeSent();
  }
  ASSERT_THAT(sent, HasSubstr("UID STORE 9 +FLAGS.SILENT (\\Seen)\r\n"));
  d.link.Complete(d.link.last_tag(), "OK Store completed");
  EXPECT_EQ(d.out.Take(), "s OK Store completed\r\n");
  pool_.TakeCalls();
  IdleInInbox(d);
  // Another client takes \Seen away again: the device has \Seen.
  registry_.OnStoreEvents("alice", {FlagsOf(9, {})});
  EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS ())\r\n");
}

// Defect 2: news of a message the device already has (the watch reports it
// as new to an older view after a restart, with the flags it has by then)
// must still tell the device flags it does not know.
TEST_F(DeviceDriverFlagsTest, NewsOfAMessageTheDeviceHasTellsItsNewerFlags) {
  Device& d = InboxOfAlice();
  Run(d, "f FETCH 2 (FLAGS)");
  ASSERT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (FLAGS)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS ())");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS ())\r\nf OK Fetch completed\r\n");
  pool_.TakeCalls();
  IdleInInbox(d);
  StoreEvent seen = testing::NewMail(9);
  seen.uidvalidity = 7;
  seen.flags = {"\\Seen"};
  seen.flags_known = true;
  registry_.OnStoreEvents("alice", {seen});
  EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n");
  // The same news again says nothing new; news whose source knows no flags
  // says nothing of them.
  StoreEvent unknown = testing::NewMail(9);
  unknown.uidvalidity = 7;
  registry_.OnStoreEvents("alice", {seen, unknown});
  EXPECT_EQ(d.out.Take(), "");
}

// A pushed change whose whole flag list must be fetched (`resolve`, push
// mode: Dovecot's notification names only the half that changed) and the
// store refuses that fetch: the flags are unknown, so the device must not be
// left with the old ones. It gets a RESYNC with its next command's answer.
TEST_F(DeviceDriverFlagsTest, ARefusedFetchOfAChangesFlagsEndsInAResync) {
  Device& d = InboxOfAlice();
  IdleInInbox(d);
  StoreEvent change = FlagsOf(9, {});
  change.resolve = true;  // e.g. FlagsSet ($X) on a message with \Seen
  registry_.OnStoreEvents("alice", {change});
  EXPECT_EQ(d.out.Take(), "");  // nothing before the store's flags
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 9 (FLAGS)\r\n");
  d.link.Complete("~p5", "NO [SERVERBUG] Internal error");
  EXPECT_EQ(d.out.Take(), "");  // the change was not told as "no flags"
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "");  // the RESYNC waits for the fresh view
  const std::string sent = d.link.TakeSent();
  ASSERT_THAT(sent, HasSubstr("UID SEARCH"));
  d.link.Reply(absl::StrCat("* ESEARCH (TAG \"", d.link.last_tag(),
                            "\") UID ALL 4,9,12"));
  d.link.Complete(d.link.last_tag(), "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* RESYNC\r\n* 3 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_EQ(counters_.resyncs.load(), 1u);
}

// Found by the push-mode chaos test: new mail and a pushed change of its
// flags (to resolve) in one batch. The fetch that resolves the change must
// name the new UID although the view gets it only when the batch is
// rendered; it was left out and the change counted as resolved, so the
// device kept the flags of the first notification for good.
TEST_F(DeviceDriverFlagsTest, AChangeToANewMessageNotYetInTheViewIsFetched) {
  Device& d = InboxOfAlice();
  IdleInInbox(d);
  StoreEvent mail = testing::NewMail(13);
  mail.uidvalidity = 7;
  StoreEvent change = FlagsOf(13, {});
  change.resolve = true;  // e.g. FlagsSet ($X) on a message with \Seen
  registry_.OnStoreEvents("alice", {mail, change});
  EXPECT_EQ(d.out.Take(), "");  // the EXISTS waits for the flags behind it
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS (\\Seen $X))");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 4 EXISTS\r\n* 4 FETCH (UID 13 FLAGS (\\Seen $X))\r\n");
}

}  // namespace
}  // namespace pimap::session
