#include "core/cluster/shard_cluster.h"

#include <memory>
#include <optional>

#include "absl/algorithm/container.h"
#include "gtest/gtest.h"
#include "tests/core/cluster/fake_coordinator.h"

namespace pimap::cluster {
namespace {

class ShardClusterTest : public ClusterTestBase {
 protected:
  ShardClusterTest() {
    config_.claim_wait_ms = 2000;
    etcd_.Grant(5, [this](absl::StatusOr<int64_t> id) { lease_ = *id; });
    fence_.Extend(now_ + 4000);
    shard_ = std::make_unique<ShardCluster>(&timers_, &etcd_, &config_, &fence_,
                                            [this] { return now_; });
    shard_->AddFencedHook([this] { ++fenced_; });
    SetMembers({"node-a", "node-b", "node-c"});
  }
  void SetMembers(std::vector<std::string> ids) {
    auto view = std::make_shared<ClusterView>();
    view->self = "node-a";
    view->lease = lease_;
    for (const std::string& id : ids) {
      view->members.push_back({id, id + ":7001", ""});
    }
    shard_->SetView(view);
  }
  // A user the hashing gives to `node`.
  std::string UserOf(const std::string& node) {
    for (int i = 0;; ++i) {
      std::string user = "user" + std::to_string(i);
      if (shard_->view()->Preferred(user)->id == node) return user;
    }
  }
  std::optional<Placement> ClaimNow(const std::string& user) {
    std::optional<Placement> out;
    shard_->Claim(user, [&](Placement p) { out = std::move(p); });
    return out;
  }

  int64_t lease_ = 0;
  int fenced_ = 0;
  std::unique_ptr<ShardCluster> shard_;
};

TEST_F(ShardClusterTest, PlacesByRendezvous) {
  EXPECT_EQ(shard_->Place(UserOf("node-a"), now_).kind, Placement::Kind::kHere);
  const Placement b = shard_->Place(UserOf("node-b"), now_);
  EXPECT_EQ(b.kind, Placement::Kind::kForward);
  EXPECT_EQ(b.member.forward, "node-b:7001");
}

TEST_F(ShardClusterTest, UnavailableWithoutALease) {
  shard_->SetView(std::make_shared<ClusterView>());
  EXPECT_EQ(shard_->Place("alice", now_).kind, Placement::Kind::kUnavailable);
  auto p = ClaimNow("alice");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kUnavailable);
}

TEST_F(ShardClusterTest, ClaimCreatesTheOwnerKeyUnderTheLease) {
  const std::string user = UserOf("node-a");
  auto p = ClaimNow(user);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kHere);
  const auto& keys = etcd_.keys();
  ASSERT_TRUE(keys.contains("/c/owners/" + user));
  EXPECT_EQ(keys.at("/c/owners/" + user).value, "node-a");
  EXPECT_EQ(keys.at("/c/owners/" + user).lease, lease_);
  EXPECT_TRUE(shard_->claimed(user));
  const int calls = etcd_.calls;
  EXPECT_EQ(ClaimNow(user)->kind, Placement::Kind::kHere);
  EXPECT_EQ(etcd_.calls, calls) << "a held claim needs no etcd round trip";
}

TEST_F(ShardClusterTest, RecordsItselfAsTheLastOwnerBeforeServing) {
  const std::string user = UserOf("node-a");
  auto p = ClaimNow(user);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->local_state_stale) << "nobody served the user before";
  ASSERT_TRUE(etcd_.keys().contains("/c/last/" + user));
  EXPECT_EQ(etcd_.keys().at("/c/last/" + user).value, "node-a");
  EXPECT_EQ(etcd_.keys().at("/c/last/" + user).lease, 0)
      << "the record outlives the node";
}

TEST_F(ShardClusterTest, AnotherNodeServedTheUserSinceThisOneDid) {
  const std::string user = UserOf("node-a");
  etcd_.PutRaw("/c/last/" + user, "node-b", 0);
  auto p = ClaimNow(user);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kHere);
  EXPECT_TRUE(p->local_state_stale);
  EXPECT_EQ(etcd_.keys().at("/c/last/" + user).value, "node-a");
}

TEST_F(ShardClusterTest, ThisNodeServedTheUserLast) {
  const std::string user = UserOf("node-a");
  etcd_.PutRaw("/c/last/" + user, "node-a", 0);
  auto p = ClaimNow(user);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kHere);
  EXPECT_FALSE(p->local_state_stale) << "a restart resumes from its own state";
}

TEST_F(ShardClusterTest, NoServingWithoutTheLastOwnerRecord) {
  const std::string user = UserOf("node-a");
  etcd_.fail_puts = true;  // the owner key is made, the record is not
  auto p = ClaimNow(user);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kUnavailable);
  EXPECT_FALSE(shard_->claimed(user));
  etcd_.fail_puts = false;
  // The owner key is ours already; the record is written this time.
  EXPECT_EQ(ClaimNow(user)->kind, Placement::Kind::kHere);
  EXPECT_EQ(etcd_.keys().at("/c/last/" + user).value, "node-a");
}

TEST_F(ShardClusterTest, UsersMoveToANodeThatJoinsAndPrefersThem) {
  std::vector<std::string> released;
  shard_->SetReleaseHook([&](const std::string& u) { released.push_back(u); });
  // Every user node-a prefers among three; some of them prefer node-d once
  // it joins.
  std::vector<std::string> mine;
  for (int i = 0; mine.size() < 40; ++i) {
    std::string user = "user" + std::to_string(i);
    if (shard_->view()->Preferred(user)->id == "node-a") mine.push_back(user);
  }
  for (const std::string& user : mine) {
    ASSERT_EQ(ClaimNow(user)->kind, Placement::Kind::kHere);
  }
  SetMembers({"node-a", "node-b", "node-c", "node-d"});
  ASSERT_FALSE(released.empty()) << "nobody prefers the new node?";
  for (const std::string& user : mine) {
    const bool moves = shard_->view()->Preferred(user)->id == "node-d";
    EXPECT_EQ(absl::c_linear_search(released, user), moves) << user;
    EXPECT_EQ(shard_->claimed(user), !moves) << user;
    EXPECT_EQ(etcd_.keys().contains("/c/owners/" + user), !moves) << user;
  }
  EXPECT_LT(released.size(), mine.size() / 2);
}

TEST_F(ShardClusterTest, AUserBeingLetGoIsNotClaimedAgainHere) {
  const std::string user = UserOf("node-a");
  ASSERT_EQ(ClaimNow(user)->kind, Placement::Kind::kHere);
  etcd_.immediate = false;  // the owner key's deletion stays in flight
  std::vector<std::string> members = {"node-a", "node-b", "node-c"};
  for (int i = 0; shard_->view()->Preferred(user)->id == "node-a"; ++i) {
    members.push_back("node-x" + std::to_string(i));
    SetMembers(members);
  }
  EXPECT_FALSE(shard_->claimed(user));
  auto p = ClaimNow(user);  // e.g. forwarded here by a node with an old view
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kForward);
  EXPECT_EQ(p->member.id, shard_->view()->Preferred(user)->id);
  etcd_.Deliver();
  EXPECT_FALSE(etcd_.keys().contains("/c/owners/" + user));
}

TEST_F(ShardClusterTest, ALoginStormLeavesEtcdRoomForTheKeepAlive) {
  etcd_.immediate = false;
  std::vector<std::string> users;
  for (int i = 0; users.size() < 20; ++i) {
    std::string user = "user" + std::to_string(i);
    if (shard_->view()->Preferred(user)->id == "node-a") users.push_back(user);
  }
  int answered = 0;
  const int calls_before = etcd_.calls;
  for (const std::string& user : users) {
    shard_->Claim(user, [&](Placement p) {
      EXPECT_EQ(p.kind, Placement::Kind::kHere);
      ++answered;
    });
  }
  EXPECT_EQ(etcd_.calls - calls_before, ShardCluster::kMaxClaimsInFlight)
      << "only a few claims talk to etcd at once";
  // Each claim is three steps (owner key, last-owner read and write); the
  // waiting ones go out as the first finish.
  for (int round = 0; round < 100 && answered < 20; ++round) {
    etcd_.Deliver();
    Advance(100);
  }
  EXPECT_EQ(answered, 20);
  for (const std::string& user : users) EXPECT_TRUE(shard_->claimed(user));
}

TEST_F(ShardClusterTest, AUserHeldByAnotherLiveMemberIsForwardedThere) {
  const std::string user = UserOf("node-a");
  etcd_.PutRaw("/c/owners/" + user, "node-c", 777);
  auto p = ClaimNow(user);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kForward);
  EXPECT_EQ(p->member.id, "node-c");
  EXPECT_FALSE(shard_->claimed(user));
}

TEST_F(ShardClusterTest, AUserHeldByANodeThatLeftIsWaitedOut) {
  const std::string user = UserOf("node-a");
  int64_t dead_lease = 0;
  etcd_.Grant(1, [&](absl::StatusOr<int64_t> id) { dead_lease = *id; });
  etcd_.PutRaw("/c/owners/" + user, "node-gone", dead_lease);
  std::optional<Placement> p;
  shard_->Claim(user, [&](Placement got) { p = std::move(got); });
  EXPECT_FALSE(p.has_value());
  fence_.Extend(now_ + 100000);
  Advance(1500);  // the dead node's lease (1 s) expires; the retry wins
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kHere);
  EXPECT_EQ(etcd_.keys().at("/c/owners/" + user).value, "node-a");
}

TEST_F(ShardClusterTest, WaitingEndsUnavailableAtTheDeadline) {
  const std::string user = UserOf("node-a");
  etcd_.PutRaw("/c/owners/" + user, "node-gone", 0);  // never expires
  fence_.Extend(now_ + 100000);
  std::optional<Placement> p;
  shard_->Claim(user, [&](Placement got) { p = std::move(got); });
  Advance(3000);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kUnavailable);
}

TEST_F(ShardClusterTest, FenceRunningOutDropsClaimsOnce) {
  const std::string user = UserOf("node-a");
  ASSERT_EQ(ClaimNow(user)->kind, Placement::Kind::kHere);
  shard_->CheckFence(now_);
  EXPECT_EQ(fenced_, 0);
  now_ += 10000;  // stopped past the lease
  shard_->CheckFence(now_);
  EXPECT_EQ(fenced_, 1);
  EXPECT_FALSE(shard_->claimed(user));
  shard_->CheckFence(now_);
  EXPECT_EQ(fenced_, 1);
  EXPECT_EQ(shard_->Place(user, now_).kind, Placement::Kind::kUnavailable);
}

TEST_F(ShardClusterTest, LostGenerationDropsClaimsEvenIfValidAgain) {
  const std::string user = UserOf("node-a");
  ASSERT_EQ(ClaimNow(user)->kind, Placement::Kind::kHere);
  fence_.Lose();
  fence_.Extend(now_ + 4000);  // re-registered before this shard looked
  shard_->CheckFence(now_);
  EXPECT_EQ(fenced_, 1);
  EXPECT_FALSE(shard_->claimed(user));
}

TEST_F(ShardClusterTest, AClaimAnsweredAfterTheFenceIsNotUsed) {
  etcd_.immediate = false;
  const std::string user = UserOf("node-a");
  std::optional<Placement> p;
  shard_->Claim(user, [&](Placement got) { p = std::move(got); });
  fence_.Lose();
  shard_->CheckFence(now_);
  etcd_.Deliver();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, Placement::Kind::kUnavailable);
  EXPECT_FALSE(shard_->claimed(user));
}

}  // namespace
}  // namespace pimap::cluster
