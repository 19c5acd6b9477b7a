// The cluster's wiring in pimapd (cluster_setup.h).
#include "tools/pimapd/cluster_setup.h"

#include <netdb.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bindings/tcp/imap_server.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "core/session/session_registry.h"
#include "store/events/event_intake.h"

namespace pimap {
namespace {

absl::StatusOr<outband_http::HttpsTarget> ResolveEtcd(absl::string_view url) {
  absl::ConsumePrefix(&url, "http://");
  absl::ConsumeSuffix(&url, "/");
  absl::StatusOr<HostPort> hp = ParseHostPort(url);
  if (!hp.ok()) return hp.status();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = absl::StrCat(hp->port);
  // At start-up, before any shard runs: a blocking lookup is fine here.
  if (int rc = getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd endpoint ", url, ": ", gai_strerror(rc)));
  }
  outband_http::HttpsTarget target;
  target.host = absl::StrCat(hp->host, ":", hp->port);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    engine::ResolvedAddress r;
    std::memcpy(&r.address, a->ai_addr, a->ai_addrlen);
    r.len = a->ai_addrlen;
    target.addresses.push_back(r);
  }
  freeaddrinfo(found);
  if (target.addresses.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd endpoint ", url, ": no address"));
  }
  return target;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterNode>> MakeClusterNode(
    const Options& options) {
  if (options.cluster_etcd.empty()) return nullptr;
  auto node = std::make_unique<ClusterNode>();
  cluster::ClusterConfig& c = node->config;
  c.name = options.cluster_name;
  c.self.id = options.cluster_node_id;
  if (c.self.id.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      return absl::InvalidArgumentError("no host name: give --cluster-node-id");
    }
    c.self.id = host;
  }
  c.self.forward = !options.cluster_advertise.empty()
                       ? options.cluster_advertise
                       : options.cluster_listen->ToString();
  if (options.store_events_listen.has_value()) {
    c.self.intake = options.store_events_listen->ToString();
  }
  c.lease_ttl_s = absl::ToInt64Seconds(options.cluster_lease_ttl);
  c.tick_ms = c.lease_ttl_s * 1000 / 3;
  // A second of margin, but never more than a third of the lease.
  c.fence_margin_ms = std::min<int64_t>(1000, c.lease_ttl_s * 1000 / 3);
  c.claim_wait_ms = c.lease_ttl_s * 1000 + 3000;
  absl::StatusOr<std::string> secret =
      store::ReadSecretFile(options.cluster_secret_file);
  if (!secret.ok()) return secret.status();
  if (secret->size() < 16) {
    return absl::InvalidArgumentError(
        "--cluster-secret-file: at least 16 bytes of secret");
  }
  c.secret = *std::move(secret);
  for (const std::string& url : options.cluster_etcd) {
    absl::StatusOr<outband_http::HttpsTarget> target = ResolveEtcd(url);
    if (!target.ok()) return target.status();
    node->etcd.push_back(*std::move(target));
  }
  // A keep-alive must come back well within the part of the lease the fence
  // leaves, or it could only ever arrive too late.
  node->etcd_timeout_ms = std::max<int64_t>(500, c.tick_ms);
  return node;
}

bool IntakeDivert(engine::Shard& shard, store::StoreNotification& n) {
  auto* forwarder = shard.services().Find<cluster_intake::IntakeForwarder>();
  return forwarder != nullptr && forwarder->Divert(n);
}

void StartClusterShard(engine::Shard& shard, ClusterNode& node,
                       session::SessionRegistry* sessions,
                       tcp::ImapServer* server,
                       const store::EventIntakeConfig* intake,
                       ClusterShard* out) {
  out->client = std::make_unique<etcd::EtcdClient>(&shard, node.etcd,
                                                   node.etcd_timeout_ms);
  out->coordinator = std::make_unique<etcd::EtcdCoordinator>(out->client.get());
  out->shard = std::make_unique<cluster::ShardCluster>(
      &shard.timers(), out->coordinator.get(), &node.config, &node.fence,
      [] { return MonotonicNowMs(); }, &shard.counters());
  cluster::ShardCluster* cluster = out->shard.get();
  shard.services().Register(cluster);
  cluster->AddFencedHook([sessions, server, &shard] {
    const size_t dropped = sessions->DropAll(session::kFencedText);
    shard.counters().cluster_fenced_sessions.fetch_add(
        dropped, std::memory_order_relaxed);
    // Stock clients' relayed sessions, logins in progress.
    if (server != nullptr) server->ShutdownServing(session::kFencedText);
  });
  cluster->SetReleaseHook([sessions](const std::string& user) {
    sessions->DropUser(user, session::kMovedText);
  });
  shard.ring().SetBeforeDispatch(
      [cluster] { cluster->CheckFence(MonotonicNowMs()); });
  if (intake != nullptr) {
    cluster_intake::IntakeForwarderConfig forward;
    forward.path = intake->path;
    forward.secret = intake->secret;
    out->intake_forwarder = std::make_unique<cluster_intake::IntakeForwarder>(
        &shard, cluster, std::move(forward));
    shard.services().Register(out->intake_forwarder.get());
  }
  if (shard.id() != 0) return;
  engine::ShardSet* set = &shard.set();
  // The agent's own client, with the lease's patience: a keep-alive answered
  // late still extends the fence from when it was sent, so it may take
  // until the fence would run out; the logins' client gives up sooner.
  out->agent_client = std::make_unique<etcd::EtcdClient>(
      &shard, node.etcd,
      node.config.lease_ttl_s * 1000 - node.config.fence_margin_ms);
  out->agent_coordinator =
      std::make_unique<etcd::EtcdCoordinator>(out->agent_client.get());
  out->agent = std::make_unique<cluster::ClusterAgent>(
      &shard.timers(), out->agent_coordinator.get(), &node.config, &node.fence,
      [set](std::shared_ptr<const cluster::ClusterView> view) {
        for (int i = 0; i < set->count(); ++i) {
          set->shard(i).Post([view](engine::Shard& s) {
            if (auto* c = s.services().Find<cluster::ShardCluster>()) {
              c->SetView(view);
            }
          });
        }
      },
      [] { return MonotonicNowMs(); }, &shard.counters());
  cluster::ClusterAgent* agent = out->agent.get();
  agent->Start();
  shard.RetainLive();  // until the lease is revoked at the stop
  // After the other stop hooks (the servers tell their devices BYE and save
  // their sessions): the lease goes on the next turn of the loop, so that no
  // other node claims a user while this one still writes its goodbye.
  shard.AddStopHook([out, &shard] { LeaveCluster(shard, *out); });
}

void LeaveCluster(engine::Shard& shard, ClusterShard& cluster) {
  if (cluster.agent == nullptr || cluster.leaving) return;
  cluster.leaving = true;
  cluster::ClusterAgent* agent = cluster.agent.get();
  shard.timers().Schedule(
      0, [agent, &shard] { agent->Stop([&shard] { shard.ReleaseLive(); }); });
}

}  // namespace pimap
