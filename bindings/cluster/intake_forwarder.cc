// Passing store notifications on to the node that serves their user
// (intake_forwarder.h).
#include "bindings/cluster/intake_forwarder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "bindings/outband_http/https_request.h"
#include "core/base/log.h"
#include "core/cluster/shard_cluster.h"
#include "core/engine/resolver.h"
#include "core/engine/shard.h"

namespace pimap::cluster_intake {

IntakeForwarder::IntakeForwarder(engine::Shard* shard,
                                 cluster::ShardCluster* cluster,
                                 IntakeForwarderConfig config)
    : shard_(shard), cluster_(cluster), config_(std::move(config)) {}

IntakeForwarder::~IntakeForwarder() { *alive_ = false; }

bool IntakeForwarder::Divert(store::StoreNotification& n) {
  if (cluster_->claimed(n.user)) return false;  // served here
  ShardCounters& c = shard_->counters();
  UserQueue& q = queues_[n.user];
  if (q.bodies.size() >= kMaxQueuedPerUser || queued_ >= kMaxQueued) {
    c.cluster_intake_dropped.fetch_add(1, std::memory_order_relaxed);
    if (q.bodies.empty() && !q.busy) queues_.erase(n.user);
    return true;
  }
  q.bodies.push_back(std::move(n.raw_body));
  ++queued_;
  if (!q.busy) Lookup(n.user);
  return true;
}

void IntakeForwarder::Lookup(const std::string& user) {
  queues_[user].busy = true;
  cluster_->coordinator().Get(
      cluster_->config().OwnersPrefix() + user,
      [this, user, alive = std::weak_ptr<bool>(alive_)](
          absl::StatusOr<cluster::KeyRange> owner) {
        if (alive.expired()) return;
        if (!owner.ok()) {
          DropQueue(user, "etcd cannot be reached");
          return;
        }
        const cluster::ClusterView* view = cluster_->view();
        if (owner->keys.empty() || view == nullptr) {
          DropQueue(user, "");  // nobody serves the user: nothing to tell
          return;
        }
        const std::string& holder = owner->keys[0].value;
        const cluster::Member* member = view->Find(holder);
        if (holder == view->self || member == nullptr ||
            member->intake.empty()) {
          // Our own id under another lease (a restart: it expires), or a node
          // with no intake, or one that left.
          DropQueue(user, "the user's node has no reachable intake");
          return;
        }
        SendNext(user, member->intake);
      });
}

void IntakeForwarder::SendNext(const std::string& user, std::string intake) {
  auto it = queues_.find(user);
  if (it == queues_.end()) return;
  UserQueue& q = it->second;
  if (q.bodies.empty()) {
    queues_.erase(it);
    return;
  }
  absl::StatusOr<engine::ResolvedAddress> address = engine::ParseIpPort(intake);
  if (!address.ok()) {
    DropQueue(user, "the user's node's intake is not IP:PORT");
    return;
  }
  const std::string& body = q.bodies.front();
  std::string request = absl::StrCat(
      "POST ", config_.path, " HTTP/1.1\r\nHost: ", intake,
      "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
      "\r\nX-Pimap-Forwarded: 1\r\n");
  if (!config_.secret.empty()) {
    absl::StrAppend(&request, "X-Pimap-Secret: ", config_.secret, "\r\n");
  }
  absl::StrAppend(&request, "\r\n", body);
  outband_http::HttpsTarget target;
  target.addresses.push_back(*address);
  target.host = intake;
  outband_http::StartHttpsRequest(
      shard_, /*tls=*/nullptr, target, std::move(request), config_.timeout_ms,
      [this, user, intake, alive = std::weak_ptr<bool>(alive_)](
          absl::StatusOr<http::HttpRequest> answer) mutable {
        if (alive.expired()) return;
        const bool ok =
            answer.ok() && answer->status >= 200 && answer->status < 300;
        if (!ok) {
          DropQueue(user, answer.ok() ? absl::StrCat("its intake answered ",
                                                     answer->status)
                                      : std::string(answer.status().message()));
          return;
        }
        shard_->counters().cluster_intake_forwards.fetch_add(
            1, std::memory_order_relaxed);
        auto it = queues_.find(user);
        if (it == queues_.end()) return;
        it->second.bodies.pop_front();
        --queued_;
        SendNext(user, std::move(intake));
      });
}

void IntakeForwarder::DropQueue(const std::string& user,
                                absl::string_view why) {
  auto it = queues_.find(user);
  if (it == queues_.end()) return;
  const size_t n = it->second.bodies.size();
  queued_ -= n;
  queues_.erase(it);
  ShardCounters& c = shard_->counters();
  if (why.empty()) {
    c.cluster_intake_unowned.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  c.cluster_intake_dropped.fetch_add(n, std::memory_order_relaxed);
  PIMAP_LOG(WARNING)
          .User(user)
          .Event("cluster.intake.drop")
          .Field("notifications", absl::StrCat(n))
      << "store notifications not passed on: " << why;
}

}  // namespace pimap::cluster_intake
