// The cluster's settings (pimapd --cluster-*), read-only after start-up and
// shared by every shard.
#ifndef PIMAP_CORE_CLUSTER_CLUSTER_CONFIG_H_
#define PIMAP_CORE_CLUSTER_CLUSTER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/cluster/cluster_view.h"

namespace pimap::cluster {

struct ClusterConfig {
  std::string name = "pimap";  // the keys live under "/<name>/"
  Member self;                 // this node: id and addresses
  int64_t lease_ttl_s = 5;     // --cluster-lease-ttl
  // Keep-alive and member-list poll period; a third of the TTL by default,
  // so that two lost keep-alives still leave the lease alive.
  int64_t tick_ms = 1666;
  // The fence ends this long before the lease could expire in etcd (clock
  // rate differences, the keep-alive's own latency).
  int64_t fence_margin_ms = 1000;
  // How long a login waits for a claim held by a node that is gone (its lease
  // not yet expired) before it gets NO [UNAVAILABLE].
  int64_t claim_wait_ms = 8000;
  std::string secret;  // --cluster-secret-file's bytes (forward_record.h)

  std::string MembersPrefix() const {
    return absl::StrCat("/", name, "/members/");
  }
  std::string OwnersPrefix() const {
    return absl::StrCat("/", name, "/owners/");
  }
  // The node that last served each user (no lease: it outlives the node).
  std::string LastOwnerPrefix() const {
    return absl::StrCat("/", name, "/last/");
  }
};

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_CLUSTER_CONFIG_H_
