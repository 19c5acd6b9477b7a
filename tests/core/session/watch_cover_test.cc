// The watch's coverage of shared and public folders (SessionRegistry::
// RefreshCoveredFolders, DeviceDriver::covered_folder): the registry tells
// the watch which such folders connected devices have selected, and a device
// idling in one holds no store link once the watch has looked at it. On the
// pooled-mode fixture (device_driver_pool_fixture.h), with a fake watch.
#include <string>
#include <vector>

#include "core/session/store_namespaces.h"
#include "tests/core/session/device_driver_pool_fixture.h"

namespace pimap::session::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class WatchCoverTest : public DeviceDriverPoolTest {
 protected:
  void SetUp() override {
    absl::StatusOr<imap::Response> r = imap::testing::ParseResponseBytes(
        "* NAMESPACE ((\"\" \".\")) NIL ((\"Public.\" \".\"))\r\n");
    ASSERT_TRUE(r.ok()) << r.status();
    namespaces_.Learn(*imap::Namespaces::FromResponse(*r));
    registry_.set_store_namespaces(&namespaces_);
  }
  void TearDown() override {
    DeviceDriverPoolTest::TearDown();
    registry_.set_store_namespaces(nullptr);
  }
  FakeStoreWatch& watch() { return *watches_.watches.at(0); }
  // A relayed IDLE (tag ~p4 on the device's link) becomes the gateway's: our
  // DONE, the store's answer, the NOOP any interruption runs; the link goes
  // back to the pool and the device sees nothing of it.
  void ExpectIdleTakenOver(Device& d) {
    EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
    d.link.Complete("~p4", "OK Idle completed");
    EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
    d.link.Complete("~p5", "OK NOOP completed");
    EXPECT_EQ(d.out.Take(), "");
    EXPECT_EQ(d.link.TakeSent(), "");
    EXPECT_EQ(pool_.lent(), 0u);
  }

  StoreNamespaces namespaces_;
};

TEST_F(WatchCoverTest, SelectedPublicFoldersOfConnectedDevicesAreCovered) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(watches_.watches.size(), 1u);
  EXPECT_THAT(watch().cover_calls, IsEmpty());
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  EXPECT_THAT(watch().cover_calls,
              ElementsAre(std::vector<std::string>{"Public.News"}));
  // Personal folders are never named (NOTIFY `personal` has them).
  ASSERT_EQ(SelectFolder(d, d.link, "Work", "c"), Selected("c"));
  EXPECT_THAT(watch().covered, IsEmpty());
  ASSERT_EQ(SelectFolder(d, d.link, "Public.Blog", "e"), Selected("e"));
  EXPECT_EQ(watch().covered, std::vector<std::string>{"Public.Blog"});
  // The same set again is not told again.
  ASSERT_EQ(SelectFolder(d, d.link, "Public.Blog", "f"), Selected("f"));
  EXPECT_EQ(watch().cover_calls.size(), 3u);
  // Unselected, or the device gone: no longer covered.
  Run(d, "g UNSELECT");
  EXPECT_EQ(d.out.Take(), "g OK UNSELECT completed\r\n");
  EXPECT_THAT(watch().covered, IsEmpty());
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News", "h"), Selected("h"));
  EXPECT_EQ(watch().covered, std::vector<std::string>{"Public.News"});
  Drop(d);
  EXPECT_THAT(watch().covered, IsEmpty());
  EXPECT_EQ(watch().cover_calls.size(), 6u);
}

// Until the watch has looked at the folder the device's IDLE is the store's;
// from then on the gateway answers it and the link stays in the pool.
TEST_F(WatchCoverTest, IdleInACoveredPublicFolderHoldsNoLinkOnceLookedAt) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  pool_.TakeCalls();
  StartRelayedIdle(d);  // not looked at yet
  EndRelayedIdle(d);
  pool_.TakeCalls();

  watch().uidvalidity_value = 7;  // its first look: the device's UIDVALIDITY
  Run(d, "e IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(pool_.lent(), 0u);
  registry_.OnStoreEvents("alice", {NewMail(20, "Public.News")});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "e OK Idle completed\r\n");
}

// A device that began to idle before the watch's first look relays its IDLE
// on its own link; once the watch has looked, the store's IDLE is left (DONE,
// then the NOOP that any interruption runs) and the gateway holds the IDLE
// from there on, the link back in the pool. The device notices nothing.
TEST_F(WatchCoverTest, ARelayedIdleBecomesTheGatewaysOnceTheWatchHasLooked) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  StartRelayedIdle(d);  // not looked at yet
  pool_.TakeCalls();
  // Told before the look: nothing happens.
  registry_.OnFolderCovered("alice", "Public.News");
  EXPECT_EQ(d.link.TakeSent(), "");
  watch().uidvalidity_value = 7;  // the look, at the device's UIDVALIDITY
  registry_.OnFolderCovered("alice", "Public.Other");  // not its folder
  EXPECT_EQ(d.link.TakeSent(), "");
  registry_.OnFolderCovered("alice", "Public.News");
  ExpectIdleTakenOver(d);
  // The watch's news reach it, and its DONE is the gateway's to answer.
  registry_.OnStoreEvents("alice", {NewMail(20, "Public.News")});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "");
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

// A DONE from the device while the store's IDLE is being left: the store's
// answer to that work ends the IDLE as usual.
TEST_F(WatchCoverTest, ADoneWhileTheRelayedIdleIsLeftIsAnswered) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  StartRelayedIdle(d);
  watch().uidvalidity_value = 7;
  registry_.OnFolderCovered("alice", "Public.News");
  EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.link.TakeSent(), "");  // the store's IDLE is being left already
  d.link.Complete("~p4", "OK Idle completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

// With the store's pushes alone there is no watch for the user's own
// folders; one starts when a device selects a shared or public folder, to
// cover it (one store connection for the user, not one per device there), and
// closes the linger time after no device has one selected any more.
TEST_F(WatchCoverTest,
       WithPushesAloneACoverWatchRunsWhileSuchAFolderIsSelected) {
  config_.watch = false;
  config_.pushes = true;
  config_.parked_watch_linger_ms = 5000;
  Device& d = Connect();
  Login(d);
  EXPECT_THAT(watches_.watches, IsEmpty());
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  EXPECT_THAT(watches_.watches, IsEmpty());
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News", "c"), Selected("c"));
  ASSERT_EQ(watches_.watches.size(), 1u);
  EXPECT_EQ(watch().covered, std::vector<std::string>{"Public.News"});
  EXPECT_NE(watches_.calls.at(0).sink, &registry_);  // the cover-only sink
  // ...and a watch of the covered folders alone: the pushes tell the rest.
  EXPECT_EQ(watches_.calls.at(0).scope, WatchScope::kCoveredOnly);
  EXPECT_EQ(registry_.watches(), 1u);
  // Back in a personal folder: the watch lingers, then closes.
  ASSERT_EQ(SelectFolder(d, d.link, "INBOX", "e"), Selected("e"));
  EXPECT_FALSE(watch().closed);
  timers_.Advance(timers_.now_ms() + 4000);
  EXPECT_FALSE(watch().closed);
  // Selected again within the linger time: the same watch covers it.
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News", "f"), Selected("f"));
  timers_.Advance(timers_.now_ms() + 10000);
  EXPECT_FALSE(watch().closed);
  ASSERT_EQ(watches_.watches.size(), 1u);
  Drop(d);
  EXPECT_FALSE(watch().closed);
  timers_.Advance(timers_.now_ms() + 5000);
  EXPECT_TRUE(watch().closed);
  EXPECT_EQ(registry_.watches(), 0u);
}

// What a cover watch says of the user's own folders is the pushes' business:
// dropped (it would come twice, and its INBOX baseline would send the views
// to a rebuild). A covered folder's news reach the device idling there, with
// no link; the author's own change there, pushed too, is told once.
TEST_F(WatchCoverTest, ACoverWatchTellsOnlyOfTheFoldersItCovers) {
  config_.watch = false;
  config_.pushes = true;
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  ASSERT_EQ(watches_.watches.size(), 1u);
  StoreEventSink* cover = watches_.calls.at(0).sink;
  const uint64_t events_before = registry_.EventsReceived("alice");
  cover->OnStoreEvents("alice", {NewMail(30, "INBOX"), NewMail(31, "Work")});
  EXPECT_EQ(registry_.EventsReceived("alice"), events_before);
  cover->OnWatchBaseline("alice", "INBOX", 7, 100);
  EXPECT_EQ(registry_.WatchModseq("alice", "INBOX"), 0u);
  watch().modseq = 50;
  watch().uidvalidity_value = 7;  // its first look at Public.News
  EXPECT_EQ(registry_.WatchUidvalidity("alice", "INBOX"), 0u);
  EXPECT_EQ(registry_.WatchUidvalidity("alice", "Public.News"), 7u);
  EXPECT_EQ(registry_.WatchModseq("alice", "Public.News"), 50u);
  pool_.TakeCalls();
  Run(d, "e IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(pool_.lent(), 0u);
  // Alice's own append there: pushed, and seen by the watch a moment later.
  registry_.OnStoreEvents("alice", {NewMail(20, "Public.News")});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  cover->OnStoreEvents("alice", {NewMail(20, "Public.News")});
  EXPECT_EQ(d.out.Take(), "");
  // Bob's, seen by the watch only.
  cover->OnStoreEvents("alice", {NewMail(21, "Public.News")});
  EXPECT_EQ(d.out.Take(), "* 5 EXISTS\r\n");
  // Alice flags message 9 there: told once, not once per source.
  StoreEvent seen;
  seen.kind = EventKind::kFlags;
  seen.folder = "Public.News";
  seen.uidvalidity = 7;
  seen.uid = 9;
  seen.flags = {"\\Seen"};
  registry_.OnStoreEvents("alice", {seen});
  EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n");
  cover->OnStoreEvents("alice", {seen});
  EXPECT_EQ(d.out.Take(), "");
  // Both second copies were recognised as such (not merely found harmless).
  EXPECT_EQ(counters_.events_deduplicated.load(), 2);
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "e OK Idle completed\r\n");
}

// The watch's look lands between the relayed IDLE being sent and the
// store's "+": the IDLE should still become the gateway's.
TEST_F(WatchCoverTest,
       ARelayedIdleCoveredBeforeTheStoresPlusBecomesTheGateways) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  pool_.TakeCalls();
  Run(d, "c IDLE");
  EXPECT_EQ(d.link.TakeSent(), "~p4 IDLE\r\n");
  watch().uidvalidity_value = 7;
  registry_.OnFolderCovered("alice", "Public.News");
  EXPECT_EQ(d.link.TakeSent(), "") << "told in kStoreStarting";
  d.link.Reply("+ idling");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  // Left at its "+" (the look was told while it started).
  ExpectIdleTakenOver(d);
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

}  // namespace
}  // namespace pimap::session::testing
