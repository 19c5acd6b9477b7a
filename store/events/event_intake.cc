// The store-event intake: its route on the HTTP core, the secret, JSON ->
// validated typed events, routing to the owner shard, metrics and rate-limited
// warnings.
#include "store/events/event_intake.h"

#include <time.h>

#include <array>
#include <atomic>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/base/shard_for_user.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "openssl/mem.h"
#include "openssl/sha.h"

namespace pimap::store {

using http::EndpointResponse;
using http::HttpRequest;

namespace {

// The intake's counters are its shard's (ShardCounters::intake_*): stats per
// shard, summed when /metrics is read; a shard routing to another updates the
// owner's with atomic RMWs.

void Add(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Compares in time independent of the content and the length of either: the
// SHA-256 digests of both, with BoringSSL's constant-time CRYPTO_memcmp (a
// plain memcmp returns at the first difference, which a sender can time).
bool SecretMatches(absl::string_view given, absl::string_view secret) {
  uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const uint8_t*>(secret.data()), secret.size(), b);
  return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

// Peer-triggered warnings: the first of a burst is logged, the rest of it
// counted; the next one logged (at least kWarnEveryMs later) says how many
// went unlogged. Per shard thread: a misconfigured or hostile sender must not
// flood the log.
constexpr int64_t kWarnEveryMs = 10000;
struct WarnState {
  int64_t last_ms = -kWarnEveryMs;
  uint64_t suppressed = 0;
};

// True if a warning may be logged now; *suppressed: how many were not since
// the last one.
bool WarnNow(uint64_t* suppressed = nullptr) {
  thread_local WarnState state;
  const int64_t now = MonotonicNowMs();
  if (now - state.last_ms < kWarnEveryMs) {
    ++state.suppressed;
    return false;
  }
  state.last_ms = now;
  if (suppressed != nullptr) *suppressed = state.suppressed;
  state.suppressed = 0;
  return true;
}

std::string Suppressed(uint64_t n) {
  return n == 0 ? std::string()
                : absl::StrCat(" (", n, " more since the last report)");
}

// A notification refused as invalid: counted by reason, logged once per
// burst. `why` names fields, never values from the body.
void Refused(ShardCounters& counters, IntakeReject reason,
             absl::string_view why) {
  Add(counters.intake_rejected_by_reason[static_cast<size_t>(reason)]);
  uint64_t suppressed = 0;
  if (WarnNow(&suppressed)) {
    PIMAP_LOG(WARNING) << "store events: refused ("
                       << kIntakeRejectNames[static_cast<size_t>(reason)]
                       << "): " << why << Suppressed(suppressed);
  }
}

EndpointResponse Answer(int status, absl::string_view body = "",
                        absl::string_view extra_headers = "") {
  EndpointResponse r;
  r.status = status;
  r.body = absl::StrCat(body, "\n");
  r.extra_headers = std::string(extra_headers);
  return r;
}

// On the owner shard.
void Deliver(engine::Shard& shard, const SinkOfShard& sinks,
             const EventIntakeConfig::Divert& divert, StoreNotification& n,
             int64_t enqueued) {
  ShardCounters& c = shard.counters();
  c.intake_queued.fetch_sub(1, std::memory_order_relaxed);
  Add(c.intake_queue.sum_ns, static_cast<uint64_t>(NowNs() - enqueued));
  Add(c.intake_queue.count);
  if (divert && !n.forwarded && divert(shard, n)) return;
  session::StoreEventSink* sink = sinks ? sinks(shard.id()) : nullptr;
  if (sink == nullptr) {
    Add(c.intake_unrouted);
    Add(c.intake_lost);
    if (WarnNow()) {
      PIMAP_LOG(WARNING)
          << "store events: no sink on this shard; notification for " << n.user
          << " dropped";
    }
    return;
  }
  Add(c.intake_delivered);
  if (!n.events.empty()) {
    Add(c.intake_events, n.events.size());
    sink->OnStoreEvents(n.user, n.events);
  }
  // Flag changes of unknown result travel as `resolve` kFlags events in
  // n.events (the devices fetch their flags from the store): counted here.
  if (!n.flag_deltas.empty()) {
    Add(c.intake_flag_deltas, n.flag_deltas.size());
  }
}

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read secret file ", path));
  std::stringstream content;
  content << in.rdbuf();
  std::string secret = content.str();
  while (!secret.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  if (secret.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("secret file ", path, " is empty"));
  for (char c : secret) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secret file ", path, ": control character in the secret"));
    }
  }
  return secret;
}

EventIntake::EventIntake(engine::Shard* shard, const EventIntakeConfig& config,
                         SinkOfShard sinks)
    : shard_(shard),
      config_(config),
      sinks_(std::make_shared<const SinkOfShard>(std::move(sinks))),
      divert_(
          std::make_shared<const EventIntakeConfig::Divert>(config.divert)) {}

EventIntake::~EventIntake() = default;

absl::StatusOr<EventIntake*> EventIntake::Start(engine::Shard* shard,
                                                const EventIntakeConfig& config,
                                                SinkOfShard sinks) {
  if (config.secret.empty() && !config.insecure) {
    return absl::InvalidArgumentError(
        "store event intake without a secret (give --store-events-secret-file, "
        "or --store-events-insecure to accept events from anyone who can "
        "connect)");
  }
  auto* intake = new EventIntake(shard, config, std::move(sinks));
  http::HttpEndpointConfig endpoint;
  endpoint.name = "store event intake";
  endpoint.host = config.host;
  endpoint.port = config.port;
  endpoint.max_connections = config.max_connections;
  endpoint.idle_timeout_ms = config.idle_timeout_ms;
  endpoint.max_body_bytes = config.max_body_bytes;
  // A 4xx means a misconfigured or hostile sender: nothing more is read.
  endpoint.close_after_client_errors = true;
  endpoint.connections_gauge = &shard->counters().intake_connections;
  endpoint.on_refusal = [intake](http::EndpointRefusal why, int status,
                                 absl::string_view reason) {
    intake->OnRefusal(why, status, reason);
  };
  std::vector<http::EndpointRoute> routes;
  routes.push_back({config.path, {"POST"}, [intake](const HttpRequest& r) {
                      return intake->Handle(r);
                    }});
  absl::StatusOr<http::HttpEndpoint*> started =
      http::HttpEndpoint::Start(shard, endpoint, std::move(routes));
  if (!started.ok()) {
    delete intake;
    return started.status();
  }
  intake->endpoint_ = *started;
  PIMAP_LOG(INFO) << "store events: listening on " << config.host << ":"
                  << config.port << config.path
                  << (config.secret.empty() ? " (INSECURE: no secret checked)"
                                            : " (secret required)");
  return intake;
}

void EventIntake::Stop() {
  if (endpoint_ != nullptr) endpoint_->Stop();
  endpoint_ = nullptr;
  delete this;
}

void EventIntake::OnRefusal(http::EndpointRefusal why, int status,
                            absl::string_view reason) {
  ShardCounters& counters = shard_->counters();
  if (why == http::EndpointRefusal::kOverCapacity) {
    Add(counters.intake_overloaded);
    return;
  }
  Add(counters.intake_requests);
  if (why == http::EndpointRefusal::kNoRoute) {  // 404, 405
    Add(counters.intake_rejected);
    return;
  }
  Add(counters.intake_bad);
  if (status == 413) {
    Refused(counters, IntakeReject::kBodyTooLarge, reason);
  } else {
    PIMAP_LOG(DEBUG) << "store events: bad request: " << reason;
  }
}

EndpointResponse EventIntake::Handle(const HttpRequest& request) {
  const int64_t t0 = NowNs();
  ShardCounters& counters = shard_->counters();
  Add(counters.intake_requests);
  // Every answer from here on is a handled request (4xx close the connection).
  auto finished = [&](EndpointResponse r) {
    Add(counters.intake_handling.sum_ns, static_cast<uint64_t>(NowNs() - t0));
    Add(counters.intake_handling.count);
    return r;
  };
  if (!config_.secret.empty()) {  // Start() admits no secret only if insecure
    const std::string* given = request.Header("x-pimap-secret");
    if (given == nullptr || !SecretMatches(*given, config_.secret)) {
      Add(counters.intake_rejected);
      Add(counters.intake_unauthorized);
      uint64_t suppressed = 0;
      if (WarnNow(&suppressed)) {
        PIMAP_LOG(WARNING)
            << "store events: request without the right X-Pimap-Secret"
            << Suppressed(suppressed);
      }
      return Answer(401, "secret required");
    }
  }
  Add(counters.intake_received);
  IntakeReject reason = IntakeReject::kBadJson;
  absl::StatusOr<StoreNotification> parsed =
      ParseStoreNotification(request.body, config_.limits, &reason);
  if (!parsed.ok()) {
    Add(counters.intake_bad);
    Refused(counters, reason, parsed.status().message());
    return Answer(400, parsed.status().message());
  }
  StoreNotification& n = *parsed;
  Add(counters.intake_ignored_events, static_cast<uint64_t>(n.ignored));
  if (config_.divert) {
    // Authenticated above: only a peer node with the secret can say so.
    n.forwarded = request.Header("x-pimap-forwarded") != nullptr;
    if (!n.forwarded) n.raw_body = request.body;
  }
  if (n.events.empty() && n.flag_deltas.empty()) {  // nothing to route
    return finished(Answer(204));
  }
  absl::StatusOr<std::string> user = config_.user_name_format.Apply(n.user);
  if (!user.ok()) {
    Add(counters.intake_bad);
    Refused(counters, IntakeReject::kBadUser, user.status().message());
    return Answer(400, user.status().message());
  }
  n.user = *std::move(user);
  const int owner = static_cast<int>(
      ShardForUser(n.user, static_cast<uint32_t>(shard_->count())));
  if (!Route(owner, std::move(n))) {
    Add(counters.intake_rejected);
    Add(counters.intake_overloaded);
    Add(shard_->set().shard(owner).counters().intake_lost);
    return finished(Answer(503, "overloaded", "Retry-After: 1\r\n"));
  }
  Add(counters.intake_routed);
  return finished(Answer(204));
}

bool EventIntake::Route(int owner, StoreNotification&& n) {
  ShardCounters& target = shard_->set().shard(owner).counters();
  const int64_t limit = config_.max_queued_per_shard;
  if (target.intake_queued.fetch_add(1, std::memory_order_relaxed) >= limit) {
    target.intake_queued.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  const int64_t enqueued = NowNs();
  bool posted = shard_->set().shard(owner).Post(
      [sinks = sinks_, divert = divert_, n = std::move(n),
       enqueued](engine::Shard& shard) mutable {
        Deliver(shard, *sinks, *divert, n, enqueued);
      });
  if (!posted) target.intake_queued.fetch_sub(1, std::memory_order_relaxed);
  return posted;
}

}  // namespace pimap::store
