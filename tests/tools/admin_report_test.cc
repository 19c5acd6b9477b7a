// The admin commands' reports (tools/pimapd/admin_report.h): merging the
// shards' answers (sorted, bounded) and their JSON; and gathering them from
// every shard by message (admin_gather.h), with its deadline.
#include "tools/pimapd/admin_report.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tools/pimapd/admin_gather.h"

namespace pimap {
namespace {

AdminDevice Device(std::string user, std::string device, int shard) {
  AdminDevice d;
  d.user = std::move(user);
  d.device = std::move(device);
  d.shard = shard;
  return d;
}

TEST(AdminReportTest, MergeSortsByUserThenDevice) {
  std::vector<AdminShardReport> reports(2);
  reports[0].devices = {Device("bob", "b1", 0), Device("alice", "z", 0)};
  reports[1].devices = {Device("alice", "a", 1)};
  reports[1].users = {{"alice", 1, 2, true}};
  const AdminShardReport merged = MergeReports(std::move(reports));
  ASSERT_EQ(merged.devices.size(), 3u);
  EXPECT_EQ(merged.devices[0].device, "a");
  EXPECT_EQ(merged.devices[1].device, "z");
  EXPECT_EQ(merged.devices[2].user, "bob");
  EXPECT_FALSE(merged.truncated);
}

TEST(AdminReportTest, MergeIsBounded) {
  std::vector<AdminShardReport> reports(2);
  for (size_t i = 0; i < kAdminMaxRows; ++i) {
    reports[i % 2].devices.push_back(Device("u", std::to_string(i), 0));
  }
  reports[1].devices.push_back(Device("v", "last", 1));
  const AdminShardReport merged = MergeReports(std::move(reports));
  EXPECT_EQ(merged.devices.size(), kAdminMaxRows);
  EXPECT_TRUE(merged.truncated);
}

TEST(AdminReportTest, WhoJsonParsesAndEscapes) {
  AdminShardReport merged;
  AdminDevice d = Device("al\"ice", "dev\\1\n", 3);
  d.connected = true;
  d.binding = "imaps";
  d.idle_ms = 1500;
  d.store_link = true;
  d.journal = 7;
  merged.devices.push_back(d);
  merged.users.push_back({"al\"ice", 3, 1, true});
  const std::string json = RenderWhoJson(merged, {2});
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  const auto& dev = doc["devices"][0];
  EXPECT_STREQ(dev["user"].GetString(), "al\"ice");
  EXPECT_STREQ(dev["device"].GetString(), "dev\\1\n");
  EXPECT_EQ(dev["shard"].GetInt(), 3);
  EXPECT_TRUE(dev["connected"].GetBool());
  EXPECT_STREQ(dev["binding"].GetString(), "imaps");
  EXPECT_EQ(dev["idle_ms"].GetInt64(), 1500);
  EXPECT_TRUE(dev["store_link"].GetBool());
  EXPECT_EQ(dev["journal"].GetInt(), 7);
  EXPECT_EQ(doc["users"][0]["parked"].GetInt(), 1);
  EXPECT_TRUE(doc["users"][0]["watch"].GetBool());
  EXPECT_EQ(doc["missing_shards"][0].GetInt(), 2);
  EXPECT_FALSE(doc["truncated"].GetBool());
}

TEST(AdminReportTest, SessionsAndKickJson) {
  AdminShardReport merged;
  AdminSession s;
  s.device = Device("alice", "dev1", 0);
  s.session_id = 42;
  s.selected = "INBOX";
  s.filters = "f PIMAP-FILTERS 1\r\nf XFILTER ALL V ALL\r\n";
  s.prefs = "p PIMAP-PREFS 1\r\n";
  s.uidvalidity = 9;
  s.modseq = 100;
  s.view_messages = 3;
  s.checkpoint_dirty = true;
  merged.sessions.push_back(s);
  merged.kicked.push_back({"alice", "dev1", 0, true, true, false});
  rapidjson::Document doc;
  const std::string sessions = RenderSessionsJson(merged, {});
  doc.Parse(sessions.c_str());
  ASSERT_FALSE(doc.HasParseError()) << sessions;
  const auto& one = doc["sessions"][0];
  EXPECT_EQ(one["session_id"].GetInt(), 42);
  EXPECT_STREQ(one["filters"].GetString(), s.filters.c_str());
  EXPECT_EQ(one["checkpoint"]["modseq"].GetInt(), 100);
  EXPECT_EQ(one["checkpoint"]["messages"].GetInt(), 3);
  EXPECT_TRUE(one["checkpoint"]["dirty"].GetBool());
  EXPECT_EQ(doc["missing_shards"].Size(), 0u);
  const std::string kick = RenderKickJson(merged, {});
  doc.Parse(kick.c_str());
  ASSERT_FALSE(doc.HasParseError()) << kick;
  EXPECT_TRUE(doc["kicked"][0]["was_connected"].GetBool());
  EXPECT_TRUE(doc["kicked"][0]["closed"].GetBool());
  EXPECT_FALSE(doc["kicked"][0]["forgotten"].GetBool());
  const std::string error = RenderErrorJson("no \"such\"", {1, 2});
  doc.Parse(error.c_str());
  ASSERT_FALSE(doc.HasParseError()) << error;
  EXPECT_STREQ(doc["error"].GetString(), "no \"such\"");
  EXPECT_EQ(doc["missing_shards"].Size(), 2u);
}

// Each shard answers from its own thread; the answers come together on the
// asking shard's thread.
TEST(AdminGatherTest, EveryShardAnswersOnItsOwnThread) {
  engine::ShardSet set(3, engine::RingOptions{});
  ASSERT_TRUE(set.Start([](engine::Shard&) { return absl::OkStatus(); }).ok());
  absl::Notification done;
  std::vector<AdminShardReport> got;
  std::vector<int> missing;
  std::atomic<bool> on_home{false};
  set.shard(0).Post([&](engine::Shard& home) {
    const std::thread::id home_thread = std::this_thread::get_id();
    GatherFromShards(
        home,
        [](engine::Shard& shard) {
          AdminShardReport r;
          r.devices.push_back(Device("u", std::to_string(shard.id()), 0));
          return r;
        },
        2000,
        [&, home_thread](std::vector<AdminShardReport> reports,
                         std::vector<int> gone) {
          on_home = std::this_thread::get_id() == home_thread;
          got = std::move(reports);
          missing = std::move(gone);
          done.Notify();
        });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(on_home);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].shard, i);
    EXPECT_EQ(got[i].devices[0].device, std::to_string(i));
  }
  EXPECT_TRUE(missing.empty());
  set.StopAndJoin(1000);
}

// A shard that does not answer in time is named, and the others' answers
// are used; its late answer is dropped.
TEST(AdminGatherTest, DeadlineNamesTheShardThatDidNotAnswer) {
  engine::ShardSet set(2, engine::RingOptions{});
  ASSERT_TRUE(set.Start([](engine::Shard&) { return absl::OkStatus(); }).ok());
  absl::Notification done;
  std::vector<AdminShardReport> got;
  std::vector<int> missing;
  const auto start = std::chrono::steady_clock::now();
  set.shard(0).Post([&](engine::Shard& home) {
    GatherFromShards(
        home,
        [](engine::Shard& shard) {
          // Shard 1 is stuck for longer than the deadline.
          if (shard.id() == 1) {
            std::this_thread::sleep_for(std::chrono::milliseconds(600));
          }
          return AdminShardReport{};
        },
        200,
        [&](std::vector<AdminShardReport> reports, std::vector<int> gone) {
          got = std::move(reports);
          missing = std::move(gone);
          done.Notify();
        });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(550));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].shard, 0);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0], 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // late answer
  set.StopAndJoin(1000);
}

}  // namespace
}  // namespace pimap
