// The node's right to serve users, as a deadline: the time until which its
// etcd lease is surely alive (the moment the last successful keep-alive was
// *sent* plus the TTL it granted, minus a safety margin). Past it, the store of
// ownership may already have handed this node's users to another node, so the
// node must stop serving them before it touches any of their state.
//
// Hazard: a node that was stopped (SIGSTOP, a VM pause, a long GC-like stall)
// wakes with completions queued from before; they must not be dispatched
// against users it may no longer own. Each shard checks the fence after every
// wait and before dispatching what the wait returned
// (Shard::SetBeforeDispatch), and the monotonic clock keeps running while the
// process is stopped.
//
// Written by the cluster agent on one shard, read by all: one atomic, no lock.
#ifndef PIMAP_CORE_CLUSTER_FENCE_H_
#define PIMAP_CORE_CLUSTER_FENCE_H_

#include <atomic>
#include <cstdint>

namespace pimap::cluster {

class ClusterFence {
 public:
  // 0: not yet registered (no user may be served).
  int64_t valid_until_ms() const {
    return valid_until_ms_.load(std::memory_order_acquire);
  }
  bool Valid(int64_t now_ms) const { return now_ms < valid_until_ms(); }
  // The number of times the fence was lost: a shard that saw generation g
  // and finds g+1 drops its users even if the fence is valid again (the node
  // re-registered under a new lease while the shard was busy).
  uint64_t generation() const {
    return generation_.load(std::memory_order_acquire);
  }

  void Extend(int64_t valid_until_ms) {
    valid_until_ms_.store(valid_until_ms, std::memory_order_release);
  }
  void Lose() {
    valid_until_ms_.store(0, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

 private:
  std::atomic<int64_t> valid_until_ms_{0};
  std::atomic<uint64_t> generation_{0};
};

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_FENCE_H_
