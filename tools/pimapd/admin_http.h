// The operator's endpoint (--admin-listen, --admin-socket): GET /metrics in
// the Prometheus text format and pimapctl's commands (GET /admin/who,
// /admin/sessions; POST /admin/kick, /admin/drain, /admin/reload; JSON
// answers), served by the gateway's one HTTP core on shard 0's io_uring ring
// (core/http/endpoint.h) -- no thread or blocking socket of its own. The
// commands that need every shard's sessions gather them by message
// (admin_gather.h) and answer later (a deferred route).
//
// Access: on the Unix socket its file mode is the control (no more is asked);
// on TCP the /admin/ routes want "Authorization: Bearer <token>"
// (--admin-token-file) and answer 403 without a configured token. /metrics
// is open on both, for scrapers.
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/http/endpoint.h"

namespace pimap::engine {
class Shard;
class ShardSet;
}  // namespace pimap::engine

namespace pimap {

// The Prometheus text of every shard's counters (summed on read) and of the
// process (heap, dropped log lines).
std::string RenderAdminMetrics(engine::ShardSet& set);

// How one admin listener lets requests in (and what it may do).
struct AdminAccess {
  // The Unix socket: its file mode let the peer connect; nothing more asked.
  bool unix_socket = false;
  // TCP: the bearer token the /admin/ routes want; empty: they answer 403.
  std::string token;
  // See AdminEndpointConfig::drain.
  std::function<uint64_t(engine::Shard&)> drain;
};

// Reloads (SIGHUP's or POST /admin/reload's) begun and finished by pimapd's
// main thread: the route waits for one that began after its request.
struct AdminReloads {
  std::atomic<uint64_t> begun{0};
  std::atomic<uint64_t> done{0};
  // The number (a value of `done`) of the last reload that failed and changed
  // nothing; stored before `done` moves to it.
  std::atomic<uint64_t> last_failed{0};
};
AdminReloads& ProcessReloads();

// The value of `name` in the request target's query ("/p?a=1&b=x%20y"),
// percent-decoded ('+' is a space); nullopt when absent or malformed.
std::optional<std::string> QueryParam(absl::string_view target,
                                      absl::string_view name);

// Whether `request` may use the /admin/ routes under `access`; else the answer
// to give (401 or 403). The token is compared in constant time.
bool AdminAllowed(const AdminAccess& access, const http::HttpRequest& request,
                  http::EndpointResponse* refusal);

// The admin endpoint's route table; `shard` is the one serving it (answers
// from the other shards come back to it).
std::vector<http::EndpointRoute> AdminRoutes(engine::Shard* shard,
                                             AdminAccess access);

// The admin listeners pimapd runs (either or both).
struct AdminEndpointConfig {
  std::optional<std::string> host;  // TCP host:port
  uint16_t port = 0;
  std::string unix_path;  // empty: none
  uint32_t unix_mode = 0600;
  std::string token;  // TCP's bearer token (empty: /admin/ refused on TCP)
  // POST /admin/drain, on each shard's thread: stop that shard's device
  // listeners and say BYE to its connections; how many were told. Unset: 501.
  std::function<uint64_t(engine::Shard&)> drain;
};

// On `shard`'s thread during set-up (pimapd: shard 0 only): binds and serves
// AdminRoutes() until the shard stops (a stop hook frees it).
absl::Status StartAdminEndpoints(engine::Shard& shard,
                                 const AdminEndpointConfig& config);
// TCP only, no token (tests and callers of old).
absl::Status StartAdminEndpoint(engine::Shard& shard, const std::string& host,
                                uint16_t port);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
