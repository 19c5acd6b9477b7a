// The admin endpoint: its routes (GET /metrics, pimapctl's /admin/ commands),
// their access control, where it runs, and the process metrics that are not
// any shard's.
#include "tools/pimapd/admin_http.h"

#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "tools/pimapd/admin_gather.h"
#include "tools/pimapd/admin_sessions.h"

namespace pimap {

namespace {

// Scrapers keep their connection between scrapes (Prometheus: every 15-60 s);
// a connection without a complete request for this long is closed, idle or
// stuck half-way through a request.
constexpr int64_t kAdminIdleTimeoutMs = 60000;
// Operators and scrapers are few; the bound stops a leak of connections from
// costing the shard more than this many descriptors.
constexpr size_t kAdminMaxConnections = 32;
// Admin requests carry no body (their arguments are in the query).
constexpr size_t kAdminMaxBodyBytes = 4096;
// A command that needs every shard answers with what it has after this long
// (503, naming the shards that did not answer): a stuck shard is when an
// operator most needs an answer.
constexpr int64_t kGatherDeadlineMs = 2000;
// POST /admin/reload waits this long for the main thread's reload to end
// (it reads certificates from disk; normally milliseconds), polling.
constexpr int64_t kReloadWaitMs = 5000;
constexpr int64_t kReloadPollMs = 20;

http::EndpointResponse Json(int status, std::string body) {
  http::EndpointResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.compressible = true;
  return r;
}

// The `user=` a route cannot do without; else the 400 is sent and nullopt.
std::optional<std::string> RequiredUser(const http::HttpRequest& request,
                                        http::EndpointReply& reply) {
  std::optional<std::string> user = QueryParam(request.target, "user");
  if (!user || user->empty()) {
    reply.Send(Json(400, RenderErrorJson("user= is required")));
    return std::nullopt;
  }
  return user;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// Runs `collect` on every shard and answers with `render` of the merge: 200,
// or 503 with what came when a shard did not answer in time.
void GatherAndAnswer(engine::Shard* shard, AdminCollect collect,
                     http::EndpointReply reply,
                     std::string (*render)(const AdminShardReport&,
                                           const std::vector<int>&)) {
  GatherFromShards(
      *shard, std::move(collect), kGatherDeadlineMs,
      [reply, render](std::vector<AdminShardReport> reports,
                      std::vector<int> missing) {
        const AdminShardReport merged = MergeReports(std::move(reports));
        reply.Send(Json(missing.empty() ? 200 : 503, render(merged, missing)));
      });
}

// Polls the main thread's reload counter until a reload that began after the
// request has ended (or the wait is over: then 202, still queued).
void AwaitReload(engine::Shard* shard, http::EndpointReply reply,
                 uint64_t target, int64_t waited_ms) {
  AdminReloads& reloads = ProcessReloads();
  if (reloads.done.load(std::memory_order_acquire) >= target) {
    if (reloads.last_failed.load(std::memory_order_acquire) >= target) {
      reply.Send(Json(
          500, RenderErrorJson("the reload failed and changed nothing (the "
                               "configuration has an error: pimapd's log "
                               "says which)")));
      return;
    }
    reply.Send(Json(200, "{\"reload\":\"done\"}\n"));
    return;
  }
  if (waited_ms >= kReloadWaitMs || !reply.waiting()) {
    reply.Send(Json(202, "{\"reload\":\"queued\"}\n"));
    return;
  }
  shard->timers().Schedule(kReloadPollMs, [shard, reply, target, waited_ms] {
    AwaitReload(shard, reply, target, waited_ms + kReloadPollMs);
  });
}

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

AdminReloads& ProcessReloads() {
  static AdminReloads* const reloads = new AdminReloads();
  return *reloads;
}

std::optional<std::string> QueryParam(absl::string_view target,
                                      absl::string_view name) {
  const size_t q = target.find('?');
  if (q == absl::string_view::npos) return std::nullopt;
  for (absl::string_view pair :
       absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    const absl::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    if (eq == absl::string_view::npos) return std::string();
    return PercentDecode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

bool AdminAllowed(const AdminAccess& access, const http::HttpRequest& request,
                  http::EndpointResponse* refusal) {
  if (access.unix_socket) return true;
  if (access.token.empty()) {
    *refusal = Json(
        403, RenderErrorJson("admin commands over TCP are off: use the Unix "
                             "socket or set --admin-token-file"));
    return false;
  }
  const std::string* header = request.Header("authorization");
  absl::string_view given;
  if (header != nullptr && header->size() > 7 &&
      absl::EqualsIgnoreCase(absl::string_view(*header).substr(0, 7),
                             "Bearer ")) {
    given = absl::StripAsciiWhitespace(absl::string_view(*header).substr(7));
  }
  // Digests of both, compared in constant time: neither the token's bytes
  // nor its length show in the time a wrong guess takes.
  uint8_t want[SHA256_DIGEST_LENGTH];
  uint8_t got[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(access.token.data()),
         access.token.size(), want);
  SHA256(reinterpret_cast<const uint8_t*>(given.data()), given.size(), got);
  if (!given.empty() && CRYPTO_memcmp(want, got, sizeof(want)) == 0) {
    return true;
  }
  *refusal = Json(401, RenderErrorJson("a valid bearer token is required"));
  refusal->extra_headers = "WWW-Authenticate: Bearer realm=\"pimapd\"\r\n";
  return false;
}

std::vector<http::EndpointRoute> AdminRoutes(engine::Shard* shard,
                                             AdminAccess access) {
  engine::ShardSet* set = &shard->set();
  std::vector<http::EndpointRoute> routes;
  // Every /admin/ route: access first, then the command.
  auto admin = [access](auto command) {
    return [access, command](const http::HttpRequest& request,
                             http::EndpointReply reply) {
      http::EndpointResponse refusal;
      if (!AdminAllowed(access, request, &refusal)) {
        reply.Send(std::move(refusal));
        return;
      }
      command(request, std::move(reply));
    };
  };
  routes.push_back(
      {"/admin/who",
       {"GET"},
       nullptr,
       admin([shard](const http::HttpRequest& request,
                     http::EndpointReply reply) {
         const std::string user =
             QueryParam(request.target, "user").value_or(std::string());
         GatherAndAnswer(
             shard, [user](engine::Shard& s) { return CollectWho(s, user); },
             std::move(reply), &RenderWhoJson);
       })});
  routes.push_back({"/admin/sessions",
                    {"GET"},
                    nullptr,
                    admin([shard](const http::HttpRequest& request,
                                  http::EndpointReply reply) {
                      const std::optional<std::string> user =
                          RequiredUser(request, reply);
                      if (!user) return;
                      GatherAndAnswer(
                          shard,
                          [user = *user](engine::Shard& s) {
                            return CollectSessions(s, user);
                          },
                          std::move(reply), &RenderSessionsJson);
                    })});
  routes.push_back(
      {"/admin/kick",
       {"POST"},
       nullptr,
       admin([shard](const http::HttpRequest& request,
                     http::EndpointReply reply) {
         const std::optional<std::string> user = RequiredUser(request, reply);
         if (!user) return;
         const std::string device =
             QueryParam(request.target, "device").value_or(std::string());
         const std::string forget =
             QueryParam(request.target, "forget").value_or("0");
         const bool forget_on = forget == "1" || forget == "true";
         PIMAP_LOG(INFO) << "admin: kick " << *user
                         << (device.empty() ? "" : "#") << device
                         << (forget_on ? " (forget)" : "");
         GatherAndAnswer(
             shard,
             [user = *user, device, forget_on](engine::Shard& s) {
               return KickOnShard(s, user, device, forget_on);
             },
             std::move(reply), &RenderKickJson);
       })});
  routes.push_back(
      {"/admin/drain",
       {"POST"},
       nullptr,
       admin([shard, drain = access.drain](const http::HttpRequest&,
                                           http::EndpointReply reply) {
         if (!drain) {
           reply.Send(Json(501, RenderErrorJson("drain is not available")));
           return;
         }
         PIMAP_LOG(WARNING) << "admin: drain: device listeners close, "
                               "connections are told BYE [UNAVAILABLE]";
         GatherAndAnswer(
             shard,
             [drain](engine::Shard& s) {
               AdminShardReport r;
               r.drained = drain(s);
               return r;
             },
             std::move(reply), &RenderDrainJson);
       })});
  routes.push_back(
      {"/admin/reload",
       {"POST"},
       nullptr,
       admin([shard](const http::HttpRequest&, http::EndpointReply reply) {
         // The same path as SIGHUP: the main thread takes the signal and
         // reloads. A reload already running when the signal comes ends
         // before ours begins, so wait for the one after it.
         AdminReloads& reloads = ProcessReloads();
         const uint64_t begun = reloads.begun.load(std::memory_order_acquire);
         const uint64_t done = reloads.done.load(std::memory_order_acquire);
         const uint64_t target = done + (begun > done ? 2 : 1);
         PIMAP_LOG(INFO) << "admin: reload requested";
         if (kill(getpid(), SIGHUP) != 0) {
           reply.Send(Json(500, RenderErrorJson("cannot signal pimapd")));
           return;
         }
         AwaitReload(shard, std::move(reply), target, 0);
       })});
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
// The TCP listener and the Unix socket are two endpoints of the same HTTP
// core and routes; only their access differs.
absl::Status StartAdminEndpoints(engine::Shard& shard,
                                 const AdminEndpointConfig& admin) {
  http::HttpEndpointConfig config;
  config.name = "admin endpoint";
  config.max_connections = kAdminMaxConnections;
  config.idle_timeout_ms = kAdminIdleTimeoutMs;
  config.max_body_bytes = kAdminMaxBodyBytes;
  if (admin.host.has_value()) {
    http::HttpEndpointConfig tcp = config;
    tcp.host = *admin.host;
    tcp.port = admin.port;
    AdminAccess access;
    access.token = admin.token;
    access.drain = admin.drain;
    absl::StatusOr<http::HttpEndpoint*> endpoint =
        http::HttpEndpoint::Start(&shard, tcp, AdminRoutes(&shard, access));
    if (!endpoint.ok()) return endpoint.status();
    shard.AddStopHook([e = *endpoint] { e->Stop(); });
    PIMAP_LOG(INFO) << "admin endpoint on " << *admin.host << ":" << admin.port
                    << " (GET /metrics; /admin/ "
                    << (admin.token.empty() ? "refused: no token file"
                                            : "with a bearer token")
                    << "), shard " << shard.id();
  }
  if (!admin.unix_path.empty()) {
    http::HttpEndpointConfig local = config;
    local.unix_path = admin.unix_path;
    local.unix_mode = admin.unix_mode;
    AdminAccess access;
    access.unix_socket = true;
    access.drain = admin.drain;
    absl::StatusOr<http::HttpEndpoint*> endpoint =
        http::HttpEndpoint::Start(&shard, local, AdminRoutes(&shard, access));
    if (!endpoint.ok()) return endpoint.status();
    shard.AddStopHook([e = *endpoint] { e->Stop(); });
    PIMAP_LOG(INFO) << "admin endpoint on unix socket " << admin.unix_path
                    << " (mode " << absl::StrFormat("%04o", admin.unix_mode)
                    << "), shard " << shard.id();
  }
  return absl::OkStatus();
}

absl::Status StartAdminEndpoint(engine::Shard& shard, const std::string& host,
                                uint16_t port) {
  AdminEndpointConfig config;
  config.host = host;
  config.port = port;
  return StartAdminEndpoints(shard, config);
}

}  // namespace pimap
