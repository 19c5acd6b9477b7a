// A shard's view of the cluster, its claims and its fence (shard_cluster.h).
#include "core/cluster/shard_cluster.h"

#include <utility>

#include "core/base/log.h"

namespace pimap::cluster {
namespace {
constexpr int64_t kClaimRetryMs = 500;
}  // namespace

ShardCluster::ShardCluster(TimerWheel* timers, Coordinator* coordinator,
                           const ClusterConfig* config,
                           const ClusterFence* fence, Clock clock,
                           ShardCounters* counters)
    : timers_(timers),
      coordinator_(coordinator),
      config_(config),
      fence_(fence),
      clock_(std::move(clock)),
      counters_(counters),
      generation_seen_(fence->generation()) {}

ShardCluster::~ShardCluster() {
  *alive_ = false;
  if (move_timer_ != 0) timers_->Cancel(move_timer_);
  if (pump_timer_ != 0) timers_->Cancel(pump_timer_);
}

void ShardCluster::SetView(std::shared_ptr<const ClusterView> view) {
  view_ = std::move(view);
  if (move_timer_ == 0 && !claimed_.empty() && view_->lease != 0) MoveSome();
}

void ShardCluster::MoveSome() {
  move_timer_ = 0;
  if (!serving(clock_())) return;  // a fence drops everything anyway
  std::vector<std::string> moving;
  for (const std::string& user : claimed_) {
    const Member* preferred = view_->Preferred(user);
    if (preferred != nullptr && preferred->id != view_->self) {
      moving.push_back(user);
      if (moving.size() == kMovesPerTick) break;
    }
  }
  for (const std::string& user : moving) {
    // Let go here first; only then may the next owner claim it.
    if (release_hook_) release_hook_(user);
    claimed_.erase(user);
    releasing_.insert(user);
    ++stats_.moved;
    if (counters_ != nullptr) {
      counters_->cluster_users_moved.fetch_add(1, std::memory_order_relaxed);
    }
    coordinator_->DeleteIfValue(
        config_->OwnersPrefix() + user, view_->self,
        [this, user,
         alive = std::weak_ptr<bool>(alive_)](absl::StatusOr<WriteOutcome>) {
          // Done or failed alike: a key left behind expires with our lease,
          // and a claim here finds it ours (the user comes back).
          if (!alive.expired()) releasing_.erase(user);
        });
  }
  UpdateOwnedGauge();
  if (moving.size() == kMovesPerTick) {
    move_timer_ = timers_->Schedule(kMoveTickMs, [this] { MoveSome(); });
  }
}

void ShardCluster::AddFencedHook(absl::AnyInvocable<void()> hook) {
  fenced_hooks_.push_back(std::move(hook));
}

bool ShardCluster::serving(int64_t now_ms) const {
  return view_ != nullptr && view_->lease != 0 && fence_->Valid(now_ms) &&
         fence_->generation() == generation_seen_;
}

void ShardCluster::CheckFence(int64_t now_ms) {
  const uint64_t generation = fence_->generation();
  if (generation != generation_seen_) {
    generation_seen_ = generation;
    if (!dropped_) Fence();
    dropped_ = false;  // a new lease may be valid already
    if (!fence_->Valid(now_ms)) dropped_ = true;
    return;
  }
  if (fence_->Valid(now_ms)) {
    dropped_ = false;
    return;
  }
  if (!dropped_ && fence_->valid_until_ms() != 0) {
    Fence();
    dropped_ = true;
  }
}

void ShardCluster::Fence() {
  ++stats_.fenced;
  if (!claimed_.empty()) {
    PIMAP_LOG(WARNING).Event("cluster.shard.fenced")
        << "lease lost: dropping " << claimed_.size()
        << " users without touching their state";
  }
  claimed_.clear();
  releasing_.clear();
  UpdateOwnedGauge();
  for (auto& hook : fenced_hooks_) hook();
}

Placement ShardCluster::Place(absl::string_view user, int64_t now_ms) const {
  Placement placement;
  if (!serving(now_ms)) {
    placement.reason = "this node is not in the cluster (no lease)";
    return placement;
  }
  if (claimed_.contains(user)) {
    placement.kind = Placement::Kind::kHere;
    return placement;
  }
  const Member* preferred = view_->Preferred(user);
  if (preferred == nullptr || preferred->id == view_->self) {
    placement.kind = Placement::Kind::kHere;
    return placement;
  }
  placement.kind = Placement::Kind::kForward;
  placement.member = *preferred;
  return placement;
}

void ShardCluster::Claim(const std::string& user,
                         absl::AnyInvocable<void(Placement)> done) {
  if (claimed_.contains(user) || !serving(clock_())) {
    // No etcd round trip: answered at once.
    TryClaim(user, clock_() + config_->claim_wait_ms, std::move(done));
    return;
  }
  if (claims_in_flight_ >= kMaxClaimsInFlight) {
    if (waiting_claims_.size() >= kMaxWaitingClaims) {
      Placement p;
      p.reason = "too many logins waiting for the cluster store";
      done(std::move(p));
      return;
    }
    waiting_claims_.push_back({user, std::move(done)});
    return;
  }
  StartClaim(user, std::move(done));
}

void ShardCluster::StartClaim(const std::string& user,
                              absl::AnyInvocable<void(Placement)> done) {
  ++claims_in_flight_;
  TryClaim(user, clock_() + config_->claim_wait_ms,
           [this, done = std::move(done),
            alive = std::weak_ptr<bool>(alive_)](Placement p) mutable {
             if (!alive.expired()) {
               --claims_in_flight_;
               // The next waiting login goes out on a later turn: `done`
               // below may start more work on this shard first.
               if (!waiting_claims_.empty() && pump_timer_ == 0) {
                 pump_timer_ = timers_->Schedule(0, [this] { PumpClaims(); });
               }
             }
             done(std::move(p));
           });
}

void ShardCluster::PumpClaims() {
  pump_timer_ = 0;
  while (claims_in_flight_ < kMaxClaimsInFlight && !waiting_claims_.empty()) {
    WaitingClaim next = std::move(waiting_claims_.front());
    waiting_claims_.pop_front();
    StartClaim(next.user, std::move(next.done));
  }
}

// A claim step that cannot go on: the lease went meanwhile (`reached`), or
// etcd did not answer.
Placement ShardCluster::Unplaced(bool reached) {
  Placement p;
  p.reason = reached ? "this node lost its lease"
                     : "the cluster store cannot be reached";
  return p;
}

void ShardCluster::RecordLastOwner(std::string user, int64_t lease,
                                   uint64_t generation,
                                   absl::AnyInvocable<void(Placement)> done) {
  std::string key = config_->LastOwnerPrefix() + user;
  coordinator_->Get(
      key, [this, key, user = std::move(user), lease, generation,
            done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
               absl::StatusOr<KeyRange> last) mutable {
        if (alive.expired()) return;
        if (!StillServing(lease, generation) || !last.ok()) {
          done(Unplaced(last.ok()));
          return;
        }
        // Another node served the user since this one did (or this one never
        // did): what this node kept of the user is older than what the
        // device holds, and must not be resumed from.
        const bool stale =
            last->keys.empty() ? false : last->keys[0].value != view_->self;
        if (!last->keys.empty() && last->keys[0].value == view_->self) {
          Serve(std::move(user), stale, std::move(done));
          return;
        }
        // Written before the user is served, so that a node that served it
        // is always on record (no lease: the record outlives the node).
        coordinator_->Put(
            key, view_->self, 0,
            [this, user = std::move(user), lease, generation, stale,
             done = std::move(done), alive](absl::StatusOr<bool> put) mutable {
              if (alive.expired()) return;
              if (!StillServing(lease, generation) || !put.ok()) {
                done(Unplaced(put.ok()));
                return;
              }
              Serve(std::move(user), stale, std::move(done));
            });
      });
}

bool ShardCluster::StillServing(int64_t lease, uint64_t generation) const {
  return serving(clock_()) && view_->lease == lease &&
         generation == generation_seen_;
}

void ShardCluster::UpdateOwnedGauge() {
  if (counters_ == nullptr) return;
  counters_->cluster_users_owned.store(static_cast<int64_t>(claimed_.size()),
                                       std::memory_order_relaxed);
}

void ShardCluster::Serve(std::string user, bool stale,
                         absl::AnyInvocable<void(Placement)> done) {
  claimed_.insert(user);
  UpdateOwnedGauge();
  Placement p;
  p.kind = Placement::Kind::kHere;
  p.local_state_stale = stale;
  done(std::move(p));
}

void ShardCluster::TryClaim(std::string user, int64_t deadline_ms,
                            absl::AnyInvocable<void(Placement)> done) {
  const int64_t now = clock_();
  if (!serving(now)) {
    Placement p;
    p.reason = "this node is not in the cluster (no lease)";
    done(std::move(p));
    return;
  }
  if (claimed_.contains(user)) {
    Placement p;
    p.kind = Placement::Kind::kHere;
    done(std::move(p));
    return;
  }
  if (releasing_.contains(user)) {
    // Moving away right now: to where it moves, or later.
    Placement p;
    const Member* preferred = view_->Preferred(user);
    if (preferred != nullptr && preferred->id != view_->self) {
      p.kind = Placement::Kind::kForward;
      p.member = *preferred;
    } else {
      p.reason = "the user is moving between nodes";
    }
    done(std::move(p));
    return;
  }
  const int64_t lease = view_->lease;
  const uint64_t generation = generation_seen_;
  std::string key = config_->OwnersPrefix() + user;
  coordinator_->PutIfAbsent(
      std::move(key), view_->self, lease,
      [this, user = std::move(user), deadline_ms, lease, generation,
       done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
          absl::StatusOr<WriteOutcome> outcome) mutable {
        if (alive.expired()) return;
        Placement p;
        const int64_t now = clock_();
        // The fence may have gone while etcd answered: a claim made under a
        // lease this shard no longer serves under is not ours to use.
        if (!serving(now) || view_->lease != lease ||
            generation != generation_seen_) {
          p.reason = "this node lost its lease";
          done(std::move(p));
          return;
        }
        if (!outcome.ok()) {
          p.reason = "the cluster store cannot be reached";
          PIMAP_LOG(WARNING).User(user).Event("cluster.claim.fail")
              << outcome.status().message();
          done(std::move(p));
          return;
        }
        const bool ours =
            outcome->written ||
            (outcome->holder_exists && outcome->holder.value == view_->self &&
             outcome->holder.lease == lease);
        if (ours) {
          if (outcome->written) {
            ++stats_.claims;
            if (counters_ != nullptr) {
              counters_->cluster_claims.fetch_add(1, std::memory_order_relaxed);
            }
          }
          RecordLastOwner(std::move(user), lease, generation, std::move(done));
          return;
        }
        const Member* holder = outcome->holder_exists
                                   ? view_->Find(outcome->holder.value)
                                   : nullptr;
        if (holder != nullptr && holder->id != view_->self) {
          ++stats_.claim_conflicts;
          p.kind = Placement::Kind::kForward;
          p.member = *holder;
          done(std::move(p));
          return;
        }
        // Held by a node that left (or by our own id under an old lease):
        // its lease expires within the TTL, then the key goes.
        ++stats_.claim_waits;
        if (now + kClaimRetryMs > deadline_ms) {
          p.reason = "the user is still held by a node that left";
          done(std::move(p));
          return;
        }
        timers_->Schedule(
            kClaimRetryMs, [this, user = std::move(user), deadline_ms,
                            done = std::move(done), alive]() mutable {
              if (alive.expired()) return;
              TryClaim(std::move(user), deadline_ms, std::move(done));
            });
      });
}

}  // namespace pimap::cluster
