#include "core/cluster/rendezvous.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pimap::cluster {
namespace {

std::vector<std::string> Users(int n) {
  std::vector<std::string> users;
  for (int i = 0; i < n; ++i) users.push_back(absl::StrCat("user", i));
  return users;
}

TEST(RendezvousTest, EmptyListHasNoOwner) {
  EXPECT_EQ(RendezvousOwner("alice", {}), SIZE_MAX);
}

TEST(RendezvousTest, IndependentOfListOrder) {
  const std::vector<std::string> a = {"n1", "n2", "n3"};
  const std::vector<std::string> b = {"n3", "n1", "n2"};
  for (const std::string& user : Users(500)) {
    EXPECT_EQ(a[RendezvousOwner(user, a)], b[RendezvousOwner(user, b)]);
  }
}

TEST(RendezvousTest, FixedFunction) {
  // Every node and every version must agree: the score is pinned.
  EXPECT_EQ(RendezvousScore("alice", "node-a"),
            RendezvousScore("alice", "node-a"));
  EXPECT_NE(RendezvousScore("alice", "node-a"),
            RendezvousScore("alice", "node-b"));
  EXPECT_NE(RendezvousScore("ab", "c"), RendezvousScore("a", "bc"));
}

TEST(RendezvousTest, SpreadsEvenly) {
  const std::vector<std::string> nodes = {"node-1", "node-2", "node-3"};
  int count[3] = {0, 0, 0};
  for (const std::string& user : Users(30000)) {
    ++count[RendezvousOwner(user, nodes)];
  }
  for (int c : count) {
    EXPECT_GT(c, 9000);
    EXPECT_LT(c, 11000);
  }
}

TEST(RendezvousTest, AddingANodeMovesOnlyItsShare) {
  const std::vector<std::string> three = {"node-1", "node-2", "node-3"};
  const std::vector<std::string> four = {"node-1", "node-2", "node-3",
                                         "node-4"};
  int moved = 0;
  const std::vector<std::string> users = Users(30000);
  for (const std::string& user : users) {
    const std::string& before = three[RendezvousOwner(user, three)];
    const std::string& after = four[RendezvousOwner(user, four)];
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, "node-4") << user << " moved between old nodes";
    }
  }
  // ~1/4 of them, and never more than the 30 %.
  EXPECT_GT(moved, 0.22 * users.size());
  EXPECT_LT(moved, 0.28 * users.size());
}

TEST(RendezvousTest, RemovingANodeMovesOnlyItsUsers) {
  const std::vector<std::string> three = {"node-1", "node-2", "node-3"};
  const std::vector<std::string> two = {"node-1", "node-3"};
  for (const std::string& user : Users(5000)) {
    const std::string& before = three[RendezvousOwner(user, three)];
    const std::string& after = two[RendezvousOwner(user, two)];
    if (before != "node-2") {
      EXPECT_EQ(before, after) << user;
    }
  }
}

}  // namespace
}  // namespace pimap::cluster
