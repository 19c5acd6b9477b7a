// Which node of the cluster serves a user: rendezvous (highest random weight)
// hashing over the live members. Every node computes the same answer from the
// same member list, with no table to share; when a node joins or leaves, only
// the users whose highest score was (or becomes) that node's move: ~1/N of
// them, the "adding a node moves ~1/N".
//
// The score is a fixed function (FNV-1a 64 of user and node id, finished
// with splitmix64's mixer so that near-identical ids spread well), never a
// per-process seeded hash: every node and every version must agree.
//
// Hazard: as for ShardForUser, the caller canonicalises the user key first.
#ifndef PIMAP_CORE_CLUSTER_RENDEZVOUS_H_
#define PIMAP_CORE_CLUSTER_RENDEZVOUS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace pimap::cluster {

// The weight of `node_id` for `user`.
uint64_t RendezvousScore(absl::string_view user, absl::string_view node_id);

// The index in `node_ids` of the node with the highest score for `user`
// (ties, which need a 64-bit collision, go to the smaller id); SIZE_MAX when
// the list is empty.
size_t RendezvousOwner(absl::string_view user,
                       const std::vector<std::string>& node_ids);
// The same over `count` ids given by `id_at(i)`, without copying them (a
// view's members, at every login).
size_t RendezvousOwner(absl::string_view user, size_t count,
                       absl::FunctionRef<absl::string_view(size_t)> id_at);

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_RENDEZVOUS_H_
