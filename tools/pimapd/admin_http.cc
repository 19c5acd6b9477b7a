// The admin endpoint: its routes (GET /metrics), where it runs, and the
// process metrics that are not any shard's.
#include "tools/pimapd/admin_http.h"

#include <malloc.h>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"

namespace pimap {

namespace {

// Scrapers keep their connection between scrapes (Prometheus: every 15-60 s);
// a connection without a complete request for this long is closed, idle or
// stuck half-way through a request.
constexpr int64_t kAdminIdleTimeoutMs = 60000;
// Operators and scrapers are few; the bound stops a leak of connections from
// costing the shard more than this many descriptors.
constexpr size_t kAdminMaxConnections = 32;
// Admin requests carry no body today; issue 17's commands take small ones.
constexpr size_t kAdminMaxBodyBytes = 4096;

// The allocator's view of the process: what is in use against what RSS holds.
// Why: RSS per device alone cannot tell live state from free heap that glibc
// has not given back (e.g. after a burst of pooled store links closed).
std::string RenderHeapMetrics() {
  struct mallinfo2 mi = mallinfo2();
  return absl::StrCat(
      "# HELP pimap_heap_in_use_bytes Heap bytes allocated and not freed "
      "(glibc "
      "mallinfo2: uordblks + hblkhd).\n# TYPE pimap_heap_in_use_bytes gauge\n"
      "pimap_heap_in_use_bytes ",
      mi.uordblks + mi.hblkhd,
      "\n# HELP pimap_heap_free_bytes Freed heap bytes the allocator still "
      "holds "
      "(fordblks).\n# TYPE pimap_heap_free_bytes gauge\npimap_heap_free_bytes ",
      mi.fordblks, "\n",
      "# HELP pimap_log_lines_dropped_total Log lines of shards dropped "
      "because the background log writer fell behind.\n"
      "# TYPE pimap_log_lines_dropped_total counter\n"
      "pimap_log_lines_dropped_total ",
      LogLinesDropped(), "\n");
}

}  // namespace

// The other shards' counters are read straight from this thread rather than
// gathered by a message to each shard: they are relaxed atomics, each written
// by its own shard only, so a read needs no lock and no help from their
// threads -- and a scrape still answers when another shard is busy or stuck,
// which is when an operator needs it most. The sum is not a snapshot across
// shards, which Prometheus counters do not need.
std::string RenderAdminMetrics(engine::ShardSet& set) {
  std::vector<const ShardCounters*> shards;
  shards.reserve(static_cast<size_t>(set.count()));
  for (int i = 0; i < set.count(); ++i)
    shards.push_back(&set.shard(i).counters());
  std::string body = RenderPrometheus(shards);
  body += RenderHeapMetrics();
  return body;
}

std::vector<http::EndpointRoute> AdminRoutes(engine::ShardSet* set) {
  std::vector<http::EndpointRoute> routes;
  routes.push_back({"/metrics", {"GET"}, [set](const http::HttpRequest&) {
                      http::EndpointResponse r;
                      r.content_type =
                          "text/plain; version=0.0.4; charset=utf-8";
                      r.body = RenderAdminMetrics(*set);
                      r.compressible = true;
                      return r;
                    }});
  return routes;
}

// pimapd starts it on shard 0 alone, not on every shard with SO_REUSEPORT:
// every request reads all shards anyway, so spreading a handful of scrapes
// gains nothing, while one listener keeps one bound on admin connections for
// the process and one place for issue 17's commands to start from (they reach
// other shards by message whichever shard accepted them).
absl::Status StartAdminEndpoint(engine::Shard& shard, const std::string& host,
                                uint16_t port) {
  http::HttpEndpointConfig config;
  config.name = "admin endpoint";
  config.host = host;
  config.port = port;
  config.max_connections = kAdminMaxConnections;
  config.idle_timeout_ms = kAdminIdleTimeoutMs;
  config.max_body_bytes = kAdminMaxBodyBytes;
  absl::StatusOr<http::HttpEndpoint*> endpoint =
      http::HttpEndpoint::Start(&shard, config, AdminRoutes(&shard.set()));
  if (!endpoint.ok()) return endpoint.status();
  shard.AddStopHook([e = *endpoint] { e->Stop(); });
  PIMAP_LOG(INFO) << "admin endpoint on " << host << ":" << port
                  << " (GET /metrics), shard " << shard.id();
  return absl::OkStatus();
}

}  // namespace pimap
