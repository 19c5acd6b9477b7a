// pimapd's wiring of the cluster (issue 16): the node's settings made from
// the options once, and on every shard its etcd client, its ShardCluster
// service (view, claims, fence check before each dispatch) and, on shard 0,
// the membership agent that posts each new view to every shard.
#ifndef PIMAP_TOOLS_PIMAPD_CLUSTER_SETUP_H_
#define PIMAP_TOOLS_PIMAPD_CLUSTER_SETUP_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "bindings/cluster/intake_forwarder.h"
#include "bindings/etcd/etcd_client.h"
#include "bindings/etcd/etcd_coordinator.h"
#include "core/cluster/cluster_agent.h"
#include "core/cluster/cluster_config.h"
#include "core/cluster/fence.h"
#include "core/cluster/shard_cluster.h"
#include "store/events/event_intake.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace engine {
class Shard;
}
namespace session {
class SessionRegistry;
}
namespace tcp {
class ImapServer;
}

// Process-wide, read-only after start-up except the fence (atomics).
struct ClusterNode {
  cluster::ClusterConfig config;
  cluster::ClusterFence fence;
  std::vector<outband_http::HttpsTarget> etcd;
  int64_t etcd_timeout_ms = 3000;
};

// Null when the options name no etcd (a single node). Reads the secret file,
// resolves the etcd endpoints.
absl::StatusOr<std::unique_ptr<ClusterNode>> MakeClusterNode(
    const Options& options);

// One shard's part; destroyed on the shard's thread.
struct ClusterShard {
  std::unique_ptr<etcd::EtcdClient> client;
  std::unique_ptr<etcd::EtcdCoordinator> coordinator;
  std::unique_ptr<cluster::ShardCluster> shard;
  // Shard 0 only: the membership agent and its own etcd client.
  std::unique_ptr<etcd::EtcdClient> agent_client;
  std::unique_ptr<etcd::EtcdCoordinator> agent_coordinator;
  std::unique_ptr<cluster::ClusterAgent> agent;
  bool leaving = false;  // LeaveCluster ran
  // With a store-event intake: notifications of other nodes' users go there.
  std::unique_ptr<cluster_intake::IntakeForwarder> intake_forwarder;
};

// Registers the shard's ShardCluster (before the servers start, which look
// it up) and its fence check; the fence's goodbyes go to `sessions` first,
// then to `server`'s remaining connections. Starts the agent on shard 0.
// `intake` (may be null): the store-event intake's settings, for passing
// notifications on (registered on the shard; see IntakeDivert).
void StartClusterShard(engine::Shard& shard, ClusterNode& node,
                       session::SessionRegistry* sessions,
                       tcp::ImapServer* server,
                       const store::EventIntakeConfig* intake,
                       ClusterShard* out);

// On shard 0 (the agent's; elsewhere nothing): the node leaves the cluster
// on the next turn of the loop, after the goodbyes of this turn: its lease
// is revoked, so its users are free at once. A drain, and the stop. Once.
void LeaveCluster(engine::Shard& shard, ClusterShard& cluster);

// The intake's divert hook in a cluster: the shard's IntakeForwarder.
bool IntakeDivert(engine::Shard& shard, store::StoreNotification& n);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_CLUSTER_SETUP_H_
