// What pimapd's shards run with, made from the options: the bindings' and
// the session layer's settings, the store address. Built once at start-up and
// again at each reload (reloader.h), so that both read the options the same
// way; the shards keep their own copies, and a reload hands each shard a new
// one to install on its own thread.
#ifndef PIMAP_TOOLS_PIMAPD_RUNTIME_CONFIG_H_
#define PIMAP_TOOLS_PIMAPD_RUNTIME_CONFIG_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "bindings/http/http_server.h"
#include "bindings/tcp/imap_server.h"
#include "core/session/login_throttle.h"
#include "core/session/session_registry.h"
#include "store/link_pool.h"
#include "store/upstream_link.h"
#include "bindings/tls/tls_context.h"
#include "tools/pimapd/options.h"

namespace pimap {

// The server TLS contexts of the device listeners; null where not needed.
struct ServerTls {
  std::shared_ptr<tls::TlsContext> imap;   // STARTTLS and IMAPS: ALPN "imap"
  std::shared_ptr<tls::TlsContext> https;  // ALPN "h2", "http/1.1"
};

// Reads --tls-cert/--tls-key and every --tls-sni-cert into new contexts: at
// start-up and at each reload. The error names the file at fault.
absl::StatusOr<ServerTls> BuildServerTls(const Options& options);

struct RuntimeConfig {
  tcp::ImapServerConfig imap;
  http_binding::HttpServerConfig http;
  session::SessionConfig session;
  store::UpstreamConfig upstream;  // resolved address; no namespaces yet
  store::LinkPoolConfig pool;
  session::LoginThrottleConfig throttle;
  int64_t auth_cache_ttl_ms = 0;
};

// `tls`: the device listeners' contexts (BuildServerTls). Resolves the store
// address and reads the master password file: blocking, main thread only.
// The error says what is wrong (the daemon exits 2 at start-up; a reload
// keeps what runs).
absl::StatusOr<RuntimeConfig> BuildRuntimeConfig(const Options& options,
                                                 const ServerTls& tls);

// What a reload changes: the changed options by name, split into those it
// applies to the running shards and those that need a restart (listeners,
// shard count, state directory, event sources, ...), and the options to run
// with (the running ones with the applied changes).
struct ReloadPlan {
  std::vector<std::string> applied;
  std::vector<std::string> need_restart;
  Options options;
};
ReloadPlan PlanReload(const Options& running, const Options& fresh);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_RUNTIME_CONFIG_H_
