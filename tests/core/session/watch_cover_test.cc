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

// The user's pushes do not report other users' changes: with them the
// watch is never asked to cover such a folder.
TEST_F(WatchCoverTest, NotWithStorePushes) {
  config_.pushes = true;
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  ASSERT_EQ(watches_.watches.size(), 1u);
  EXPECT_THAT(watch().cover_calls, IsEmpty());
}

}  // namespace
}  // namespace pimap::session::testing
