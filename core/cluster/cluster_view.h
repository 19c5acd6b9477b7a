// A node's picture of the cluster at one moment: who it is, under which lease
// it serves, and the live members with the addresses others reach them at.
// The cluster agent (cluster_agent.h) makes a new immutable view whenever the
// member list or the lease changes and posts it to every shard; a shard keeps
// a shared_ptr to the newest one, so the view is read without a lock.
#ifndef PIMAP_CORE_CLUSTER_CLUSTER_VIEW_H_
#define PIMAP_CORE_CLUSTER_CLUSTER_VIEW_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::cluster {

// What a node registers under its lease (the member key's value, one
// "name=value" per space-separated word; unknown words are ignored, so that a
// newer node may say more).
struct Member {
  std::string id;
  std::string forward;  // HOST:PORT of its internal (forwarding) listener
  std::string intake;   // HOST:PORT of its store-events intake; may be empty
  friend bool operator==(const Member&, const Member&) = default;
};

std::string FormatMemberValue(const Member& member);
// False when the value has no forward address.
bool ParseMemberValue(absl::string_view id, absl::string_view value,
                      Member* member);

struct ClusterView {
  std::string self;             // this node's id
  int64_t lease = 0;            // the lease this node's keys live under
  int64_t revision = 0;         // the etcd revision the member list was read at
  std::vector<Member> members;  // sorted by id; includes self once registered

  // The member that should serve `user` (rendezvous over `members`); null
  // when there is none.
  const Member* Preferred(absl::string_view user) const;
  const Member* Find(absl::string_view id) const;
};

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_CLUSTER_VIEW_H_
