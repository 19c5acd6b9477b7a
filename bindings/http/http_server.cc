// Per-shard HTTP binding: listeners, connections, the cookie table, shutdown.
#include "bindings/http/http_server.h"

#include <openssl/rand.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bindings/http/http_connection.h"
#include "core/base/log.h"
#include "core/engine/listener.h"
#include "core/engine/shard.h"

namespace pimap::http_binding {

HttpServer::HttpServer(engine::Shard* shard, const HttpServerConfig* config,
                       session::StoreConnector* connector,
                       session::SessionRegistry* sessions,
                       session::StoreLinkPool* pool,
                       session::AuthCache* auth_cache)
    : shard_(shard),
      config_(config),
      connector_(connector),
      sessions_(sessions),
      pool_(pool),
      auth_cache_(auth_cache) {}

HttpServer::~HttpServer() {
  if (shard_->services().Find<HttpServer>() == this) {
    shard_->services().Register<HttpServer>(nullptr);
  }
}

absl::Status HttpServer::Start() {
  shard_->services().Register(this);
  struct Spec {
    const std::optional<HttpListenAddress>* address;
    bool tls;
  };
  for (const Spec& spec : {Spec{&config_->http_listen, false},
                           Spec{&config_->https_listen, true}}) {
    if (!spec.address->has_value()) continue;
    const HttpListenAddress& address = **spec.address;
    const bool tls = spec.tls;
    absl::StatusOr<engine::Listener*> listener = engine::Listener::Start(
        shard_, address.host, address.port,
        [this, tls](int slot) { HttpConnection::Accept(this, slot, tls); });
    if (!listener.ok()) return listener.status();
    listeners_.push_back(*listener);
    if (shard_->id() == 0) {
      PIMAP_LOG(INFO) << "P-IMAP over HTTP" << (tls ? "S" : "") << " on "
                      << address.host << ":" << address.port
                      << config_->session.path;
    }
  }
  shard_->AddStopHook([this] { Stop(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  stopping_ = true;
  for (engine::Listener* listener : listeners_) listener->Stop();
  listeners_.clear();
  // Shutdown() unregisters: iterate over copies.
  std::vector<HttpConnection*> connections(connections_.begin(),
                                           connections_.end());
  for (HttpConnection* connection : connections) {
    if (connections_.contains(connection)) connection->Shutdown();
  }
  std::vector<HttpSession*> sessions;
  for (const auto& [cookie, session] : cookies_) sessions.push_back(session);
  for (HttpSession* session : sessions) session->End("Server shutting down");
}

void HttpServer::Register(HttpConnection* connection) {
  connections_.insert(connection);
}

void HttpServer::Unregister(HttpConnection* connection) {
  connections_.erase(connection);
}

session::LoginServices HttpServer::LoginServices() {
  return {{sessions_, &shard_->counters(), &shard_->timers(), pool_,
           config_->store_timeout_ms},
          connector_,
          auth_cache_,
          config_->session.limits,
          config_->park};
}

// "<shard>-<32 hex digits>": 128 random bits, and the shard that owns the
// session so that any shard can route the request without a lookup.
std::string HttpServer::Authenticated(HttpSession* session) {
  uint8_t random[16];
  RAND_bytes(random, sizeof(random));
  std::string cookie =
      absl::StrCat(shard_->id(), "-",
                   absl::BytesToHexString(absl::string_view(
                       reinterpret_cast<const char*>(random), sizeof(random))));
  cookies_[cookie] = session;
  return cookie;
}

void HttpServer::Ended(HttpSession* session) {
  auto it = cookies_.find(session->cookie());
  if (it != cookies_.end() && it->second == session) cookies_.erase(it);
}

HttpSession* HttpServer::FindSession(absl::string_view cookie) const {
  auto it = cookies_.find(cookie);
  return it == cookies_.end() ? nullptr : it->second;
}

int HttpServer::ShardOfCookie(absl::string_view cookie) const {
  const size_t dash = cookie.find('-');
  int shard = -1;
  if (dash == absl::string_view::npos ||
      !absl::SimpleAtoi(cookie.substr(0, dash), &shard) || shard < 0 ||
      shard >= shard_->count()) {
    return -1;
  }
  return shard;
}

}  // namespace pimap::http_binding
