// A shard's side of the cluster (one per shard, in its service registry): the
// newest view the agent posted, the users this shard has claimed in etcd, and
// the fence check run before every dispatch of completions.
//
// Where a login goes (Place): nowhere while the node has no lease
// (kUnavailable); to the preferred member by rendezvous hashing when that is
// another node (kForward); else here, after Claim: the user's owner key
// (/<cluster>/owners/<user>) is created under this node's lease unless it
// exists. A key held by another live member wins over the hashing (that node
// still serves the user: the login is forwarded there); one held by a node
// that is gone is waited out (its lease expires within the TTL).
//
// Claims are kept while the node keeps its lease: the owner keys live under
// the lease, so they vanish with it, and a fenced shard forgets its claims.
#ifndef PIMAP_CORE_CLUSTER_SHARD_CLUSTER_H_
#define PIMAP_CORE_CLUSTER_SHARD_CLUSTER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/cluster/cluster_config.h"
#include "core/cluster/cluster_view.h"
#include "core/cluster/coordinator.h"
#include "core/cluster/fence.h"

namespace pimap::cluster {

struct Placement {
  enum class Kind { kHere, kForward, kUnavailable };
  Kind kind = Kind::kUnavailable;
  Member member;       // kForward: where
  std::string reason;  // kUnavailable: why (for the device's NO)
  // kHere after a claim: another node served the user since this one last
  // did; what this node's own durable state holds of the user is older than
  // what its devices have seen, and must be dropped, not resumed from.
  bool local_state_stale = false;
};

struct ShardClusterStats {
  uint64_t claims = 0;           // owner keys created
  uint64_t claim_conflicts = 0;  // held by another live member
  uint64_t claim_waits = 0;      // held by a node that is gone
  uint64_t fenced = 0;           // times this shard dropped its users
  uint64_t moved = 0;            // users let go to their preferred node
};

class ShardCluster {
 public:
  using Clock = absl::AnyInvocable<int64_t()>;

  // `counters` (may be null): the shard's, for the claims made.
  ShardCluster(TimerWheel* timers, Coordinator* coordinator,
               const ClusterConfig* config, const ClusterFence* fence,
               Clock clock, ShardCounters* counters = nullptr);
  ~ShardCluster();
  ShardCluster(const ShardCluster&) = delete;
  ShardCluster& operator=(const ShardCluster&) = delete;

  // From the agent (posted to this shard). Users claimed here that the
  // hashing now gives to another live member (a node joined, or this one
  // claimed them while its view was partial) move there: a few at a time
  // (kMovesPerTick every kMoveTickMs, so that their devices do not all
  // reconnect at once), each let go (the release hook: its devices told to
  // reconnect, its sessions dropped) before its owner key is deleted, so the
  // next owner never overlaps with this one.
  void SetView(std::shared_ptr<const ClusterView> view);
  static constexpr size_t kMovesPerTick = 100;
  static constexpr int64_t kMoveTickMs = 100;
  // What letting a user go means on this shard (cluster_setup.cc: the
  // session registry drops it).
  void SetReleaseHook(absl::AnyInvocable<void(const std::string&)> hook) {
    release_hook_ = std::move(hook);
  }
  const ClusterView* view() const { return view_.get(); }
  const ClusterConfig& config() const { return *config_; }
  Coordinator& coordinator() { return *coordinator_; }

  // Called when the shard must stop serving every user it holds (close the
  // devices, drop the sessions without writing their state). Several may be
  // registered (IMAP server, HTTP server, session registry).
  void AddFencedHook(absl::AnyInvocable<void()> hook);
  // Before dispatching completions: drops everything if the fence ran out or
  // was lost since the last check. Cheap (one atomic load, one compare).
  void CheckFence(int64_t now_ms);
  bool serving(int64_t now_ms) const;

  // Where a login for `user` should go, by the hashing alone.
  Placement Place(absl::string_view user, int64_t now_ms) const;
  // Claims `user` for this node; `done` runs once on this shard, with kHere,
  // kForward (another live member holds it) or kUnavailable.
  //
  // Hazard: a storm of logins (a node died, its devices all reconnect)
  // would fill the shard's connections to etcd with claims, and the node's
  // lease keep-alive, which shares them, would time out behind them: the
  // node would lose its lease and drop every user, and the storm grow. At
  // most kMaxClaimsInFlight claims talk to etcd at once per shard; the
  // others wait here, in order (kMaxWaitingClaims, then kUnavailable).
  void Claim(const std::string& user, absl::AnyInvocable<void(Placement)> done);
  static constexpr int kMaxClaimsInFlight = 4;
  static constexpr size_t kMaxWaitingClaims = 8192;
  bool claimed(absl::string_view user) const { return claimed_.contains(user); }
  size_t claimed_count() const { return claimed_.size(); }
  const ShardClusterStats& stats() const { return stats_; }

 private:
  void TryClaim(std::string user, int64_t deadline_ms,
                absl::AnyInvocable<void(Placement)> done);
  void Fence();
  void StartClaim(const std::string& user,
                  absl::AnyInvocable<void(Placement)> done);
  void PumpClaims();
  void MoveSome();
  // After the owner key: the user's last-owner record (/<cluster>/last/<user>)
  // read, and rewritten to name this node, before the user is served.
  void RecordLastOwner(std::string user, int64_t lease, uint64_t generation,
                       absl::AnyInvocable<void(Placement)> done);
  bool StillServing(int64_t lease, uint64_t generation) const;
  static Placement Unplaced(bool reached);
  void UpdateOwnedGauge();
  void Serve(std::string user, bool stale,
             absl::AnyInvocable<void(Placement)> done);

  TimerWheel* timers_;
  Coordinator* coordinator_;
  const ClusterConfig* config_;
  const ClusterFence* fence_;
  // mutable: AnyInvocable's call is non-const; reading the clock changes
  // nothing of ours.
  mutable Clock clock_;
  ShardCounters* counters_;
  std::shared_ptr<const ClusterView> view_;
  uint64_t generation_seen_ = 0;
  bool dropped_ = false;  // users dropped for the current fence outage
  absl::flat_hash_set<std::string> claimed_;
  // Let go, their owner keys' deletion in flight: not claimed again here
  // until it is done (our own key would look like a claim we hold).
  absl::flat_hash_set<std::string> releasing_;
  std::vector<absl::AnyInvocable<void()>> fenced_hooks_;
  absl::AnyInvocable<void(const std::string&)> release_hook_;
  TimerWheel::TimerId move_timer_ = 0;
  struct WaitingClaim {
    std::string user;
    absl::AnyInvocable<void(Placement)> done;
  };
  std::deque<WaitingClaim> waiting_claims_;
  int claims_in_flight_ = 0;
  TimerWheel::TimerId pump_timer_ = 0;
  ShardClusterStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_SHARD_CLUSTER_H_
