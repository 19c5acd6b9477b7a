// The node's membership, run on one shard: a lease of --cluster-lease-ttl, the
// node's member key under it, a keep-alive and a read of the member list every
// tick; a new ClusterView is published (to every shard) when either changes.
//
// States: kGranting (no lease) -> kRegistering (lease, member key being put)
// -> kMember (ticking) -> back to kGranting when etcd says the lease is gone,
// and kStopped at shutdown (the lease revoked, so that the node's users are
// free at once rather than after the TTL).
//
// The fence (fence.h) is extended after each successful keep-alive to the
// moment it was sent plus the TTL, minus the margin. If etcd cannot be reached
// the fence simply runs out: the node stops serving before the lease can have
// expired anywhere, and serves again only under a lease etcd confirmed.
#ifndef PIMAP_CORE_CLUSTER_CLUSTER_AGENT_H_
#define PIMAP_CORE_CLUSTER_CLUSTER_AGENT_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/cluster/cluster_config.h"
#include "core/cluster/cluster_view.h"
#include "core/cluster/coordinator.h"
#include "core/cluster/fence.h"

namespace pimap::cluster {

struct AgentStats {
  uint64_t leases_granted = 0;
  uint64_t leases_lost = 0;
  uint64_t views_published = 0;
  uint64_t etcd_errors = 0;
};

class ClusterAgent {
 public:
  using Publish = absl::AnyInvocable<void(std::shared_ptr<const ClusterView>)>;
  using Clock = absl::AnyInvocable<int64_t()>;

  // `clock`: monotonic ms (MonotonicNowMs in pimapd; a fake in tests).
  // `counters` (may be null): the shard's, for the lease counters.
  ClusterAgent(TimerWheel* timers, Coordinator* coordinator,
               const ClusterConfig* config, ClusterFence* fence,
               Publish publish, Clock clock, ShardCounters* counters = nullptr);
  ~ClusterAgent();
  ClusterAgent(const ClusterAgent&) = delete;
  ClusterAgent& operator=(const ClusterAgent&) = delete;

  void Start();
  // Revokes the lease (bounded by the coordinator's timeout), so that the
  // node's users are free at once; `done` runs once, whatever the outcome.
  // The fence is not lost: the shards are stopping anyway.
  void Stop(absl::AnyInvocable<void()> done);

  enum class State { kIdle, kGranting, kRegistering, kMember, kStopped };
  State state() const { return state_; }
  const AgentStats& stats() const { return stats_; }
  const std::shared_ptr<const ClusterView>& view() const { return view_; }

 private:
  void Grant();
  void Register();
  void Tick();
  void OnKeepAlive(int64_t sent_ms, absl::StatusOr<int64_t> ttl);
  void OnMembers(absl::StatusOr<KeyRange> range);
  // The lease is gone (or unusable): fence lost, users dropped, start over.
  void LoseLease(absl::string_view why);
  void ScheduleTick(int64_t delay_ms);
  void PublishIfChanged(std::vector<Member> members, int64_t revision);

  TimerWheel* timers_;
  Coordinator* coordinator_;
  const ClusterConfig* config_;
  ClusterFence* fence_;
  Publish publish_;
  Clock clock_;
  ShardCounters* counters_;
  State state_ = State::kIdle;
  int64_t lease_ = 0;
  TimerWheel::TimerId tick_ = 0;
  bool in_flight_ = false;  // a keep-alive or member read is out
  std::shared_ptr<const ClusterView> view_;
  AgentStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_CLUSTER_AGENT_H_
