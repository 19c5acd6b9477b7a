#include "core/cluster/cluster_agent.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/cluster/fake_coordinator.h"

namespace pimap::cluster {
namespace {

class ClusterAgentTest : public ClusterTestBase {
 protected:
  ClusterAgentTest() {
    config_.lease_ttl_s = 5;
    config_.tick_ms = 1000;
    config_.fence_margin_ms = 1000;
  }
  std::unique_ptr<ClusterAgent> MakeAgent() {
    return std::make_unique<ClusterAgent>(
        &timers_, &etcd_, &config_, &fence_,
        [this](std::shared_ptr<const ClusterView> v) { views_.push_back(v); },
        [this] { return now_; });
  }

  std::vector<std::shared_ptr<const ClusterView>> views_;
};

TEST_F(ClusterAgentTest, RegistersAndPublishesItself) {
  auto agent = MakeAgent();
  agent->Start();
  EXPECT_EQ(agent->state(), ClusterAgent::State::kMember);
  ASSERT_EQ(views_.size(), 1u);
  ASSERT_EQ(views_[0]->members.size(), 1u);
  EXPECT_EQ(views_[0]->members[0].id, "node-a");
  EXPECT_EQ(views_[0]->members[0].forward, "127.0.0.1:7001");
  EXPECT_NE(views_[0]->lease, 0);
  EXPECT_TRUE(etcd_.keys().contains("/c/members/node-a"));
  EXPECT_TRUE(fence_.Valid(now_));
  EXPECT_EQ(fence_.valid_until_ms(), now_ + 4000);
}

TEST_F(ClusterAgentTest, KeepAliveExtendsTheFenceAndOtherMembersAppear) {
  auto agent = MakeAgent();
  agent->Start();
  etcd_.PutRaw("/c/members/node-b", "forward=127.0.0.1:7002", 999);
  Advance(1000);
  EXPECT_EQ(fence_.valid_until_ms(), now_ + 4000);
  ASSERT_EQ(views_.size(), 2u);
  ASSERT_EQ(views_[1]->members.size(), 2u);
  EXPECT_EQ(views_[1]->members[1].id, "node-b");
  Advance(3000);  // nothing changed: no new view
  EXPECT_EQ(views_.size(), 2u);
}

TEST_F(ClusterAgentTest, ExpiredLeaseFencesAndRegistersAgain) {
  auto agent = MakeAgent();
  agent->Start();
  const int64_t first = views_[0]->lease;
  const uint64_t generation = fence_.generation();
  etcd_.ExpireLease(first);
  Advance(1000);
  EXPECT_EQ(fence_.generation(), generation + 1);
  EXPECT_EQ(agent->stats().leases_lost, 1u);
  // An empty view (nobody to forward to), then the new lease's.
  ASSERT_GE(views_.size(), 3u);
  EXPECT_EQ(views_[1]->lease, 0);
  EXPECT_TRUE(views_[1]->members.empty());
  EXPECT_NE(views_.back()->lease, first);
  EXPECT_NE(views_.back()->lease, 0);
  EXPECT_TRUE(fence_.Valid(now_));
}

TEST_F(ClusterAgentTest, UnreachableEtcdLetsTheFenceRunOut) {
  auto agent = MakeAgent();
  agent->Start();
  etcd_.unreachable = true;
  Advance(3000);
  EXPECT_TRUE(fence_.Valid(now_)) << "within TTL - margin";
  Advance(1500);
  EXPECT_FALSE(fence_.Valid(now_));
  EXPECT_EQ(agent->stats().leases_lost, 1u);
  etcd_.unreachable = false;
  Advance(2000);
  EXPECT_EQ(agent->state(), ClusterAgent::State::kMember);
  EXPECT_TRUE(fence_.Valid(now_));
}

TEST_F(ClusterAgentTest, AStoppedProcessWakesFenced) {
  auto agent = MakeAgent();
  agent->Start();
  // SIGSTOP for 10 s: no timer ran; the keep-alive that was due never left.
  now_ += 10000;
  EXPECT_FALSE(fence_.Valid(now_));
  timers_.Advance(now_);
  EXPECT_EQ(agent->stats().leases_lost, 1u);
}

TEST_F(ClusterAgentTest, LateKeepAliveAnswerDoesNotReviveAnOldLease) {
  auto agent = MakeAgent();
  agent->Start();
  etcd_.immediate = false;
  Advance(1000);  // keep-alive sent, not answered
  now_ += 10000;  // stopped
  timers_.Advance(now_);
  EXPECT_EQ(agent->stats().leases_lost, 1u);
  const int64_t lost_until = fence_.valid_until_ms();
  etcd_.Deliver();  // the old keep-alive's answer arrives, then the grant's
  EXPECT_NE(agent->view()->lease, views_[0]->lease);
  (void)lost_until;
}

TEST_F(ClusterAgentTest, StopRevokesTheLease) {
  auto agent = MakeAgent();
  agent->Start();
  bool stopped = false;
  agent->Stop([&] { stopped = true; });
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(etcd_.keys().contains("/c/members/node-a"));
  Advance(5000);
  EXPECT_EQ(etcd_.calls, 5) << "no keep-alive after the stop";
}

TEST_F(ClusterAgentTest, SameIdUnderAnotherLeaseIsNotUs) {
  etcd_.PutRaw("/c/members/node-a", "forward=10.0.0.9:7001", 4242);
  auto agent = MakeAgent();
  agent->Start();
  ASSERT_FALSE(views_.empty());
  ASSERT_EQ(views_.back()->members.size(), 1u);
  EXPECT_EQ(views_.back()->members[0].forward, "127.0.0.1:7001");
}

}  // namespace
}  // namespace pimap::cluster
