// The operator's endpoint (--admin-listen): GET /metrics in the Prometheus
// text format, served by the gateway's one HTTP core on shard 0's io_uring
// ring (core/http/endpoint.h) -- no thread or blocking socket of its
// own. Its routes are a table: issue 17's pimapctl commands (who, kick,
// reload) are added to AdminRoutes().
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_

#include <cstdint>
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

// The admin endpoint's route table.
std::vector<http::EndpointRoute> AdminRoutes(engine::ShardSet* set);

// On `shard`'s thread during set-up (pimapd: shard 0 only): binds host:port
// and serves AdminRoutes() until the shard stops (a stop hook frees it).
absl::Status StartAdminEndpoint(engine::Shard& shard, const std::string& host,
                                uint16_t port);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
