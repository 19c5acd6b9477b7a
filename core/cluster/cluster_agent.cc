// The membership loop (cluster_agent.h).
#include "core/cluster/cluster_agent.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"

namespace pimap::cluster {
namespace {
// After a failed grant or registration: try again soon, but not in a loop
// against an etcd that refuses.
constexpr int64_t kRetryMs = 1000;
}  // namespace

ClusterAgent::ClusterAgent(TimerWheel* timers, Coordinator* coordinator,
                           const ClusterConfig* config, ClusterFence* fence,
                           Publish publish, Clock clock,
                           ShardCounters* counters)
    : timers_(timers),
      coordinator_(coordinator),
      config_(config),
      fence_(fence),
      publish_(std::move(publish)),
      clock_(std::move(clock)),
      counters_(counters) {}

ClusterAgent::~ClusterAgent() {
  *alive_ = false;
  if (tick_ != 0) timers_->Cancel(tick_);
}

void ClusterAgent::Start() {
  if (state_ != State::kIdle) return;
  Grant();
}

void ClusterAgent::ScheduleTick(int64_t delay_ms) {
  if (tick_ != 0) timers_->Cancel(tick_);
  tick_ = timers_->Schedule(delay_ms, [this] {
    tick_ = 0;
    switch (state_) {
      case State::kGranting:
        Grant();
        break;
      case State::kRegistering:
        Register();
        break;
      case State::kMember:
        Tick();
        break;
      case State::kIdle:
      case State::kStopped:
        break;
    }
  });
}

void ClusterAgent::Grant() {
  state_ = State::kGranting;
  lease_ = 0;
  coordinator_->Grant(
      config_->lease_ttl_s,
      [this, alive = std::weak_ptr<bool>(alive_)](absl::StatusOr<int64_t> id) {
        if (alive.expired() || state_ != State::kGranting) return;
        if (!id.ok()) {
          ++stats_.etcd_errors;
          PIMAP_LOG(WARNING).Event("cluster.grant.fail")
              << "cannot get a lease from etcd: " << id.status().message();
          ScheduleTick(kRetryMs);
          return;
        }
        lease_ = *id;
        ++stats_.leases_granted;
        if (counters_ != nullptr) {
          counters_->cluster_leases_granted.fetch_add(
              1, std::memory_order_relaxed);
        }
        // The lease is at least as young as now: the fence may start here.
        fence_->Extend(clock_() + config_->lease_ttl_s * 1000 -
                       config_->fence_margin_ms);
        Register();
      });
}

void ClusterAgent::Register() {
  state_ = State::kRegistering;
  const int64_t sent = clock_();
  coordinator_->Put(
      config_->MembersPrefix() + config_->self.id,
      FormatMemberValue(config_->self), lease_,
      [this, sent,
       alive = std::weak_ptr<bool>(alive_)](absl::StatusOr<bool> put) {
        if (alive.expired() || state_ != State::kRegistering) return;
        if (!put.ok()) {
          ++stats_.etcd_errors;
          PIMAP_LOG(WARNING).Event("cluster.register.fail")
              << "cannot register in etcd: " << put.status().message();
          if (absl::IsNotFound(put.status()) ||
              absl::IsFailedPrecondition(put.status())) {
            LoseLease("the lease is gone");
            return;
          }
          ScheduleTick(kRetryMs);
          return;
        }
        (void)sent;
        state_ = State::kMember;
        PIMAP_LOG(INFO).Event("cluster.joined").Field("node", config_->self.id)
            << "registered in the cluster " << config_->name;
        Tick();
      });
}

void ClusterAgent::Tick() {
  ScheduleTick(config_->tick_ms);
  const int64_t now = clock_();
  if (fence_->valid_until_ms() != 0 && !fence_->Valid(now)) {
    // No keep-alive confirmed in time (etcd unreachable, or this process was
    // stopped): the users may be someone else's by now.
    LoseLease("the lease could not be renewed in time");
    return;
  }
  if (in_flight_) return;  // a slow etcd: never two rounds at once
  in_flight_ = true;
  coordinator_->KeepAlive(
      lease_, [this, now, lease = lease_, alive = std::weak_ptr<bool>(alive_)](
                  absl::StatusOr<int64_t> ttl) {
        // An answer about an older lease (lost meanwhile) is ignored, and
        // must not clear the in-flight mark of the new lease's round.
        if (alive.expired() || lease != lease_) return;
        in_flight_ = false;
        if (state_ != State::kMember) return;
        OnKeepAlive(now, std::move(ttl));
      });
}

void ClusterAgent::OnKeepAlive(int64_t sent_ms, absl::StatusOr<int64_t> ttl) {
  if (!ttl.ok()) {
    if (absl::IsNotFound(ttl.status())) {
      LoseLease("etcd says the lease expired");
      return;
    }
    ++stats_.etcd_errors;
    PIMAP_LOG(WARNING).Event("cluster.keepalive.fail")
        << "lease keep-alive failed: " << ttl.status().message();
    return;  // the next tick tries again; the fence runs out meanwhile
  }
  // Only if the fence has not run out in the meantime: a late answer must
  // not revive a node whose shards already dropped their users.
  if (fence_->valid_until_ms() == 0) return;
  fence_->Extend(sent_ms + *ttl * 1000 - config_->fence_margin_ms);
  in_flight_ = true;
  coordinator_->List(
      config_->MembersPrefix(),
      [this, lease = lease_,
       alive = std::weak_ptr<bool>(alive_)](absl::StatusOr<KeyRange> range) {
        if (alive.expired() || lease != lease_) return;
        in_flight_ = false;
        if (state_ != State::kMember) return;
        OnMembers(std::move(range));
      });
}

void ClusterAgent::OnMembers(absl::StatusOr<KeyRange> range) {
  if (!range.ok()) {
    ++stats_.etcd_errors;
    PIMAP_LOG(WARNING).Event("cluster.members.fail")
        << "cannot read the member list: " << range.status().message();
    return;
  }
  const std::string prefix = config_->MembersPrefix();
  std::vector<Member> members;
  bool self_listed = false;
  for (const StoredKey& key : range->keys) {
    if (key.key.size() <= prefix.size()) continue;
    Member member;
    if (!ParseMemberValue(absl::string_view(key.key).substr(prefix.size()),
                          key.value, &member)) {
      continue;
    }
    if (member.id == config_->self.id) {
      // Another process with our id (a misconfiguration, or our own key from
      // before a restart under an old lease) is not us.
      if (key.lease != lease_) continue;
      self_listed = true;
    }
    members.push_back(std::move(member));
  }
  if (!self_listed) {
    // Our key is gone while the lease lives (deleted by hand?): put it back.
    Register();
    return;
  }
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  PublishIfChanged(std::move(members), range->revision);
}

void ClusterAgent::PublishIfChanged(std::vector<Member> members,
                                    int64_t revision) {
  if (view_ != nullptr && view_->lease == lease_ && view_->members == members) {
    return;
  }
  auto view = std::make_shared<ClusterView>();
  view->self = config_->self.id;
  view->lease = lease_;
  view->revision = revision;
  view->members = std::move(members);
  std::string ids;
  for (const Member& m : view->members) absl::StrAppend(&ids, " ", m.id);
  PIMAP_LOG(INFO)
          .Event("cluster.view")
          .Field("members", absl::StrCat(view->members.size()))
      << "members:" << ids;
  view_ = view;
  ++stats_.views_published;
  publish_(std::move(view));
}

void ClusterAgent::LoseLease(absl::string_view why) {
  ++stats_.leases_lost;
  if (counters_ != nullptr) {
    counters_->cluster_leases_lost.fetch_add(1, std::memory_order_relaxed);
  }
  PIMAP_LOG(WARNING).Event("cluster.fenced").Field("node", config_->self.id)
      << "no longer serving users: " << why;
  fence_->Lose();
  in_flight_ = false;
  // Shards drop their users on the generation change; the empty view tells
  // them there is nobody to forward to until the node is back.
  auto view = std::make_shared<ClusterView>();
  view->self = config_->self.id;
  view_ = view;
  publish_(std::move(view));
  Grant();
}

void ClusterAgent::Stop(absl::AnyInvocable<void()> done) {
  const State was = state_;
  state_ = State::kStopped;
  if (tick_ != 0) {
    timers_->Cancel(tick_);
    tick_ = 0;
  }
  // The fence is left as it is: the process is ending, and its shards say
  // goodbye to their devices (saving their sessions) rather than drop them.
  if (lease_ == 0 || was == State::kIdle) {
    done();
    return;
  }
  coordinator_->Revoke(lease_, [done = std::move(done)](
                                   absl::StatusOr<bool>) mutable { done(); });
}

}  // namespace pimap::cluster
