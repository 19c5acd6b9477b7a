// The IMAP binding of one shard: its listeners (plain with STARTTLS, implicit
// TLS), its device connections, the users logged in here, and the goodbye at
// shutdown.
#ifndef PIMAP_BINDINGS_TCP_IMAP_SERVER_H_
#define PIMAP_BINDINGS_TCP_IMAP_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bindings/compress/deflate_transport.h"
#include "bindings/tls/tls_context.h"
#include "core/engine/proxy_accept.h"
#include "core/imap/limits.h"
#include "core/imap/user_name_format.h"
#include "core/session/auth_cache.h"
#include "core/session/session_driver.h"
#include "core/session/session_registry.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"

namespace pimap::engine {
class Shard;
class Listener;
}  // namespace pimap::engine

namespace pimap::tcp {

// A device's connection as its server sees it (a live ImapConnection or a
// HibernatedConnection): said goodbye to when the shard stops.
class ServedConnection {
 public:
  virtual void Shutdown(absl::string_view reason) = 0;
  // Whether it serves a user of this node (a logged-in or logging-in device),
  // as opposed to one spliced to the node that owns its user: a node that
  // loses its cluster lease says goodbye to the former only.
  virtual bool ServesUser() const { return true; }

 protected:
  ~ServedConnection() = default;
};

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

// Read-only after start-up; shared by all shards.
struct ImapServerConfig {
  imap::ParserLimits limits;
  bool allow_plaintext_auth = false;
  std::shared_ptr<tls::TlsContext>
      tls;  // null: no STARTTLS and no implicit TLS
  std::optional<ListenAddress> imap_listen;
  std::optional<ListenAddress> imaps_listen;
  size_t max_output_bytes = 4 << 20;
  int64_t login_timeout_ms = 60000;
  int64_t idle_timeout_ms = 31 * 60000;
  int64_t store_timeout_ms =
      15000;  // also how long a command waits for a pooled link
  // Stock clients (no "#device") in IDLE this long give their store link
  // back (--park-after); 0 never parks.
  session::RelayParkConfig park;
  // A P-IMAP device this long without input, at rest in the gateway's own
  // IDLE, hibernates (--hibernate-after; hibernated_connection.h); 0 never.
  int64_t hibernate_after_ms = 10000;
  // COMPRESS=DEFLATE's outbound compressor (--deflate-window-bits,
  // --deflate-mem-level).
  compress::DeflateConfig deflate;
  // --user-name-format (session::PreAuthPolicy::user_name_format).
  imap::UserNameFormat user_name_format;
  // --proxy-protocol-from: load balancers whose PROXY header is believed.
  engine::ProxyProtocolPolicy proxy_protocol;
  // --cluster-listen: where other cluster nodes forward devices to
  // (forward_arrival.h); the shard's cluster service has the secret their
  // forward lines are signed with.
  std::optional<ListenAddress> cluster_listen;
};

class ImapServer {
 public:
  // `pool` and `auth_cache` may be null (no pooled links; every login asks
  // the store).
  ImapServer(engine::Shard* shard, const ImapServerConfig* config,
             session::StoreConnector* connector,
             session::SessionRegistry* sessions,
             session::StoreLinkPool* pool = nullptr,
             session::AuthCache* auth_cache = nullptr);
  ~ImapServer();

  // On the shard thread, during set-up: binds the listeners, registers the stop
  // hook.
  absl::Status Start();

  engine::Shard& shard() { return *shard_; }
  const ImapServerConfig& config() const { return *config_; }
  // The TLS context of new handshakes (STARTTLS, implicit TLS): config().tls
  // until a certificate reload brings a new one through SetTls(). Shard
  // thread only, so reading it at accept takes no lock; an open connection
  // keeps its SSL, which holds its own references to the old material.
  const std::shared_ptr<tls::TlsContext>& tls() const { return tls_; }
  void SetTls(std::shared_ptr<tls::TlsContext> tls) { tls_ = std::move(tls); }
  session::StoreConnector& connector() { return *connector_; }
  session::SessionRegistry& sessions() { return *sessions_; }
  session::StoreLinkPool* pool() { return pool_; }
  session::AuthCache* auth_cache() { return auth_cache_; }
  bool stopping() const { return stopping_; }
  // The operator drains the gateway (pimapctl drain): no more accepting, and
  // every connection is told "* BYE reason" and closes (P-IMAP sessions live
  // on, detached). Hand-overs arriving later are refused as during a stop.
  // Returns how many connections were told.
  size_t Drain(absl::string_view reason);
  // As Drain, but the goodbyes are spread evenly over `spread_ms` (a graceful
  // upgrade, --drain-time), so that the devices do not all reconnect to the
  // new process in the same instant. Listeners stop at once.
  size_t DrainOver(absl::string_view reason, int64_t spread_ms);

  // The node lost its cluster lease: every connection that serves a user
  // here is told "* BYE reason" (listeners stay: new logins are placed anew).
  size_t ShutdownServing(absl::string_view reason);

  // Connections on the cluster listener waiting for their forward line, at
  // most kMaxForwardArrivals per shard.
  static constexpr int kMaxForwardArrivals = 256;
  bool AdmitForwardArrival() {
    if (forward_arrivals_ >= kMaxForwardArrivals) return false;
    ++forward_arrivals_;
    return true;
  }
  void LeaveForwardArrival() { --forward_arrivals_; }

  void Register(ServedConnection* connection);
  void Unregister(ServedConnection* connection);
  void UserLoggedIn(const std::string& user);
  void UserLoggedOut(const std::string& user);

 private:
  void Stop();

  engine::Shard* shard_;
  const ImapServerConfig* config_;
  std::shared_ptr<tls::TlsContext> tls_;
  session::StoreConnector* connector_;
  session::SessionRegistry* sessions_;
  session::StoreLinkPool* pool_;
  session::AuthCache* auth_cache_;
  std::vector<engine::Listener*> listeners_;
  absl::flat_hash_set<ServedConnection*> connections_;
  absl::flat_hash_map<std::string, int>
      users_;  // user -> authenticated connections
  bool stopping_ = false;
  int forward_arrivals_ = 0;
  // Connections from load balancers waiting for their PROXY header.
  engine::ProxyHeaderGate proxy_gate_;
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_IMAP_SERVER_H_
