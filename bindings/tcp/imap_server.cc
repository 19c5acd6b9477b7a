// Per-shard IMAP binding: listeners, connection registry, users, shutdown.
#include "bindings/tcp/imap_server.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "bindings/tcp/forward_arrival.h"
#include "bindings/tcp/imap_connection.h"
#include "core/base/log.h"
#include "core/cluster/shard_cluster.h"
#include "core/engine/listener.h"
#include "core/engine/shard.h"

namespace pimap::tcp {

ImapServer::ImapServer(engine::Shard* shard, const ImapServerConfig* config,
                       session::StoreConnector* connector,
                       session::SessionRegistry* sessions,
                       session::StoreLinkPool* pool,
                       session::AuthCache* auth_cache)
    : shard_(shard),
      config_(config),
      tls_(config->tls),
      connector_(connector),
      sessions_(sessions),
      pool_(pool),
      auth_cache_(auth_cache) {}

ImapServer::~ImapServer() {
  if (shard_->services().Find<ImapServer>() == this) {
    shard_->services().Register<ImapServer>(nullptr);
  }
}

absl::Status ImapServer::Start() {
  shard_->services().Register(this);
  struct Spec {
    const std::optional<ListenAddress>* address;
    bool implicit_tls;
  };
  for (const Spec& spec : {Spec{&config_->imap_listen, false},
                           Spec{&config_->imaps_listen, true}}) {
    if (!spec.address->has_value()) continue;
    const ListenAddress& address = **spec.address;
    const bool tls = spec.implicit_tls;
    absl::StatusOr<engine::Listener*> listener = engine::Listener::Start(
        shard_, address.host, address.port,
        [this, tls](int slot, const ClientAddress& accepted) {
          engine::AcceptWithProxyPolicy(
              shard_, &config_->proxy_protocol, &proxy_gate_, slot, accepted,
              [this, tls](int slot, const ClientAddress& client) {
                ImapConnection::Accept(this, slot, tls, client);
              });
        });
    if (!listener.ok()) return listener.status();
    listeners_.push_back(*listener);
    if (shard_->id() == 0) {
      PIMAP_LOG(INFO) << "listening on " << address.host << ":" << address.port
                      << (tls ? " (implicit TLS)" : "");
    }
  }
  auto* cluster = shard_->services().Find<cluster::ShardCluster>();
  if (config_->cluster_listen.has_value() && cluster != nullptr) {
    const ListenAddress& address = *config_->cluster_listen;
    absl::StatusOr<engine::Listener*> listener = engine::Listener::Start(
        shard_, address.host, address.port,
        [this, secret = &cluster->config().secret](
            int slot, const ClientAddress& accepted) {
          ForwardArrival::Start(this, slot, accepted, secret);
        });
    if (!listener.ok()) return listener.status();
    listeners_.push_back(*listener);
    if (shard_->id() == 0) {
      PIMAP_LOG(INFO) << "cluster forwarding listener on " << address.host
                      << ":" << address.port;
    }
  }
  shard_->AddStopHook([this] { Stop(); });
  return absl::OkStatus();
}

void ImapServer::Stop() { Drain("Server shutting down"); }

size_t ImapServer::Drain(absl::string_view reason) {
  stopping_ = true;
  for (engine::Listener* listener : listeners_) listener->Stop();
  listeners_.clear();
  proxy_gate_.AbortAll();  // not served: nothing is accepted any more
  // Shutdown() unregisters: iterate over a copy.
  std::vector<ServedConnection*> connections(connections_.begin(),
                                             connections_.end());
  size_t told = 0;
  for (ServedConnection* connection : connections) {
    if (!connections_.contains(connection)) continue;
    connection->Shutdown(reason);
    ++told;
  }
  return told;
}

size_t ImapServer::DrainOver(absl::string_view reason, int64_t spread_ms) {
  if (spread_ms <= 0) return Drain(reason);
  stopping_ = true;
  for (engine::Listener* listener : listeners_) listener->Stop();
  listeners_.clear();
  proxy_gate_.AbortAll();  // not served: nothing is accepted any more
  std::vector<ServedConnection*> connections(connections_.begin(),
                                             connections_.end());
  const size_t count = connections.size();
  for (size_t i = 0; i < count; ++i) {
    const int64_t at =
        spread_ms * static_cast<int64_t>(i) / static_cast<int64_t>(count);
    // Still registered when its turn comes: not gone meanwhile (no new
    // connection can take its address, as nothing is accepted or handed
    // over any more).
    shard_->timers().Schedule(
        at, [this, connection = connections[i], why = std::string(reason)] {
          if (connections_.contains(connection)) connection->Shutdown(why);
        });
  }
  return count;
}

size_t ImapServer::ShutdownServing(absl::string_view reason) {
  std::vector<ServedConnection*> connections(connections_.begin(),
                                             connections_.end());
  size_t told = 0;
  for (ServedConnection* connection : connections) {
    if (!connections_.contains(connection) || !connection->ServesUser()) {
      continue;
    }
    connection->Shutdown(reason);
    ++told;
  }
  return told;
}

void ImapServer::Register(ServedConnection* connection) {
  connections_.insert(connection);
}

void ImapServer::Unregister(ServedConnection* connection) {
  connections_.erase(connection);
}

void ImapServer::UserLoggedIn(const std::string& user) {
  if (++users_[user] == 1) {
    shard_->counters().users_logged_in.fetch_add(1, std::memory_order_relaxed);
  }
}

void ImapServer::UserLoggedOut(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  if (--it->second == 0) {
    users_.erase(it);
    shard_->counters().users_logged_in.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace pimap::tcp
