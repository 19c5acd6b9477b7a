// Tests for ShardForUser: fixed expected values (the mapping is a durable
// format and must never change silently), range, balance and the
// consistent-hash property.
#include "core/base/shard_for_user.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

TEST(ShardForUserTest, Fnv1a64KnownVectors) {
  // Reference values from the FNV specification test suite.
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(ShardForUserTest, StableAcrossProcesses) {
  // Computed independently (Python reimplementation). If this test fails,
  // users would be re-homed: do not "fix" the expectations.
  struct Case {
    const char* user;
    uint32_t shards;
    uint32_t want;
  };
  const Case cases[] = {
      {"alice@example.com", 8, 4},
      {"alice@example.com", 16, 11},
      {"alice@example.com", 256, 93},
      {"bob@example.com", 4, 3},
      {"bob@example.com", 256, 152},
      {"carol", 8, 7},
      {"carol", 256, 95},
      {"user42", 16, 13},
      {"user42", 256, 236},
      {"", 2, 1},
      {"", 16, 13},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ShardForUser(c.user, c.shards), c.want)
        << c.user << " / " << c.shards;
  }
}

TEST(ShardForUserTest, DegenerateShardCounts) {
  EXPECT_EQ(ShardForUser("alice", 0), 0u);
  EXPECT_EQ(ShardForUser("alice", 1), 0u);
}

TEST(ShardForUserTest, InRangeAndBalanced) {
  constexpr uint32_t kShards = 8;
  constexpr int kUsers = 80000;
  std::vector<int> counts(kShards, 0);
  for (int i = 0; i < kUsers; ++i) {
    const uint32_t s =
        ShardForUser(absl::StrCat("user", i, "@example.org"), kShards);
    ASSERT_LT(s, kShards);
    ++counts[s];
  }
  for (int c : counts) {
    EXPECT_GT(c, kUsers / kShards * 9 / 10);
    EXPECT_LT(c, kUsers / kShards * 11 / 10);
  }
}

TEST(ShardForUserTest, GrowingShardCountMovesFewUsers) {
  // Jump consistent hash: going from n to n+1 shards moves ~1/(n+1) of the
  // users, and only onto the new shard.
  constexpr int kUsers = 20000;
  int moved = 0;
  for (int i = 0; i < kUsers; ++i) {
    const std::string u = absl::StrCat("u", i);
    const uint32_t before = ShardForUser(u, 7);
    const uint32_t after = ShardForUser(u, 8);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 7u);
    }
  }
  EXPECT_LT(moved, kUsers / 8 * 12 / 10);
  EXPECT_GT(moved, kUsers / 8 * 8 / 10);
}

}  // namespace
}  // namespace pimap
