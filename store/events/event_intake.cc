// The store-event intake: HTTP on the engine, the secret, JSON -> validated
// typed events, routing to the owner shard, metrics and rate-limited warnings.
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
#include "core/engine/listener.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "core/engine/socket.h"
#include "core/http/request_parser.h"
#include "core/http/response.h"
#include "openssl/mem.h"
#include "openssl/sha.h"

namespace pimap::store {

using http::HttpRequest;
using http::HttpRequestParser;

namespace {

// Stop reading a connection whose peer does not read our answers.
constexpr size_t kMaxPendingOutput = 64 * 1024;

// The intake's counters are its shard's (ShardCounters::intake_*): stats per
// shard, summed when /metrics is read; a shard routing to another updates the
// owner's with atomic RMWs.

void Add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

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

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read secret file ", path));
  std::stringstream content;
  content << in.rdbuf();
  std::string secret = content.str();
  while (!secret.empty() && absl::ascii_isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  if (secret.empty()) return absl::InvalidArgumentError(absl::StrCat("secret file ", path, " is empty"));
  for (char c : secret) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secret file ", path, ": control character in the secret"));
    }
  }
  return secret;
}

class IntakeConnection final : public engine::TransportHandler {
 public:
  IntakeConnection(EventIntake* intake, engine::Socket* socket)
      : intake_(intake),
        socket_(socket),
        counters_(intake->shard_->counters()),
        parser_(intake->config_.max_body_bytes) {
    intake_->connections_.insert(this);
    counters_.intake_connections.fetch_add(1, std::memory_order_relaxed);
    last_request_ms_ = MonotonicNowMs();
    ArmIdleTimer(intake_->config_.idle_timeout_ms);
    socket_->SetHandler(this);
  }

  // EventIntake::Stop(): close now.
  void Shutdown() {
    socket_->Close();
    Free();
  }

  void OnTransportData(absl::string_view data) override {
    parser_.Feed(data);
    HttpRequest request;
    for (;;) {
      switch (parser_.Next(&request)) {
        case HttpRequestParser::Result::kNeedMore:
          if (socket_->PendingOutput() > kMaxPendingOutput) {
            socket_->SetReading(false);
            paused_ = true;
          }
          return;
        case HttpRequestParser::Result::kError:
          Add(counters_.intake_requests);
          Add(counters_.intake_bad);
          if (parser_.error_status() == 413) {
            Refused(IntakeReject::kBodyTooLarge, parser_.error_reason());
          } else {
            PIMAP_LOG(DEBUG)
                << "store events: bad request: " << parser_.error_reason();
          }
          Respond(parser_.error_status(), /*close=*/true, "", parser_.error_reason());
          CloseAndFree();
          return;
        case HttpRequestParser::Result::kRequest:
          last_request_ms_ = MonotonicNowMs();
          if (!Handle(request)) {
            CloseAndFree();
            return;
          }
          break;
      }
    }
  }

  void OnTransportDrained() override {
    if (paused_) {
      paused_ = false;
      socket_->SetReading(true);
    }
  }

  void OnTransportClosed(absl::Status) override { Free(); }

 private:
  // False: the connection must close (after the answer queued).
  bool Handle(HttpRequest& request) {
    const int64_t t0 = NowNs();
    Add(counters_.intake_requests);
    const EventIntakeConfig& config = intake_->config_;
    absl::string_view path = request.target;
    path = path.substr(0, path.find('?'));
    if (path != config.path) {
      Add(counters_.intake_rejected);
      Respond(404, true, "", "unknown path");
      return false;
    }
    if (request.method != "POST") {
      Add(counters_.intake_rejected);
      Respond(405, true, "Allow: POST\r\n", "use POST");
      return false;
    }
    if (!config.secret.empty()) {  // Start() admits no secret only if insecure
      const std::string* given = request.Header("x-pimap-secret");
      if (given == nullptr || !SecretMatches(*given, config.secret)) {
        Add(counters_.intake_rejected);
        Add(counters_.intake_unauthorized);
        uint64_t suppressed = 0;
        if (WarnNow(&suppressed)) {
          PIMAP_LOG(WARNING)
              << "store events: request without the right X-Pimap-Secret"
              << Suppressed(suppressed);
        }
        Respond(401, true, "", "secret required");
        return false;
      }
    }
    Add(counters_.intake_received);
    IntakeReject reason = IntakeReject::kBadJson;
    absl::StatusOr<StoreNotification> parsed =
        ParseStoreNotification(request.body, config.limits, &reason);
    if (!parsed.ok()) {
      Add(counters_.intake_bad);
      Refused(reason, parsed.status().message());
      Respond(400, true, "", parsed.status().message());
      return false;
    }
    StoreNotification& n = *parsed;
    Add(counters_.intake_ignored_events, static_cast<uint64_t>(n.ignored));
    const bool keep = request.keep_alive;
    if (n.events.empty() && n.flag_deltas.empty()) {  // nothing to route
      Respond(204, !keep);
      Finished(t0);
      return keep;
    }
    absl::StatusOr<std::string> user =
        intake_->config_.user_name_format.Apply(n.user);
    if (!user.ok()) {
      Add(counters_.intake_bad);
      Refused(IntakeReject::kBadUser, user.status().message());
      Respond(400, true, "", user.status().message());
      return false;
    }
    n.user = *std::move(user);
    engine::Shard* shard = intake_->shard_;
    const int owner = static_cast<int>(
        ShardForUser(n.user, static_cast<uint32_t>(shard->count())));
    ShardCounters& target = shard->set().shard(owner).counters();
    if (!Route(owner, std::move(n))) {
      Add(counters_.intake_rejected);
      Add(counters_.intake_overloaded);
      Add(target.intake_lost);
      Respond(503, !keep, "Retry-After: 1\r\n", "overloaded");
      Finished(t0);
      return keep;
    }
    Add(counters_.intake_routed);
    Respond(204, !keep);
    Finished(t0);
    return keep;
  }

  // Enqueues the notification for its owner shard; false if that shard is full.
  bool Route(int owner, StoreNotification&& n) {
    ShardCounters& target = intake_->shard_->set().shard(owner).counters();
    const int64_t limit = intake_->config_.max_queued_per_shard;
    if (target.intake_queued.fetch_add(1, std::memory_order_relaxed) >= limit) {
      target.intake_queued.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    const int64_t enqueued = NowNs();
    bool posted = intake_->shard_->set().shard(owner).Post(
        [sinks = intake_->sinks_, n = std::move(n), enqueued](engine::Shard& shard) {
          Deliver(shard, *sinks, n, enqueued);
        });
    if (!posted) target.intake_queued.fetch_sub(1, std::memory_order_relaxed);
    return posted;
  }

  // On the owner shard.
  static void Deliver(engine::Shard& shard, const SinkOfShard& sinks,
                      const StoreNotification& n, int64_t enqueued) {
    ShardCounters& c = shard.counters();
    c.intake_queued.fetch_sub(1, std::memory_order_relaxed);
    Add(c.intake_queue.sum_ns, static_cast<uint64_t>(NowNs() - enqueued));
    Add(c.intake_queue.count);
    session::StoreEventSink* sink = sinks ? sinks(shard.id()) : nullptr;
    if (sink == nullptr) {
      Add(c.intake_unrouted);
      Add(c.intake_lost);
      if (WarnNow()) {
        PIMAP_LOG(WARNING) << "store events: no sink on this shard; notification for "
                           << n.user << " dropped";
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

  // A notification refused as invalid: counted by reason, logged once per
  // burst. `why` names fields, never values from the body.
  void Refused(IntakeReject reason, absl::string_view why) {
    Add(counters_.intake_rejected_by_reason[static_cast<size_t>(reason)]);
    uint64_t suppressed = 0;
    if (WarnNow(&suppressed)) {
      PIMAP_LOG(WARNING) << "store events: refused ("
                         << kIntakeRejectNames[static_cast<size_t>(reason)]
                         << "): " << why << Suppressed(suppressed);
    }
  }

  void Finished(int64_t t0) {
    Add(counters_.intake_handling.sum_ns, static_cast<uint64_t>(NowNs() - t0));
    Add(counters_.intake_handling.count);
  }

  void Respond(int status, bool close, absl::string_view extra_headers = "",
               absl::string_view body = "") {
    socket_->Write(http::WholeResponse(status, extra_headers, "text/plain",
                                       absl::StrCat(body, "\n"), close));
  }

  void ArmIdleTimer(int64_t delay_ms) {
    idle_timer_ = intake_->shard_->timers().Schedule(delay_ms, [this] {
      idle_timer_ = 0;
      const int64_t idle = MonotonicNowMs() - last_request_ms_;
      const int64_t limit = intake_->config_.idle_timeout_ms;
      if (idle >= limit) {
        CloseAndFree();
      } else {
        ArmIdleTimer(limit - idle);
      }
    });
  }

  void CloseAndFree() {
    socket_->Close();  // flushes the answer, then closes; no callbacks after this
    Free();
  }

  void Free() {
    if (idle_timer_ != 0) intake_->shard_->timers().Cancel(idle_timer_);
    intake_->connections_.erase(this);
    counters_.intake_connections.fetch_sub(1, std::memory_order_relaxed);
    delete this;
  }

  EventIntake* intake_;
  engine::Socket* socket_;
  ShardCounters& counters_;
  HttpRequestParser parser_;
  int64_t last_request_ms_ = 0;
  TimerWheel::TimerId idle_timer_ = 0;
  bool paused_ = false;
};

EventIntake::EventIntake(engine::Shard* shard, const EventIntakeConfig& config,
                         SinkOfShard sinks)
    : shard_(shard),
      config_(config),
      sinks_(std::make_shared<const SinkOfShard>(std::move(sinks))) {}

EventIntake::~EventIntake() = default;

absl::StatusOr<EventIntake*> EventIntake::Start(engine::Shard* shard,
                                                const EventIntakeConfig& config,
                                                SinkOfShard sinks) {
  if (config.path.empty() || config.path[0] != '/') {
    return absl::InvalidArgumentError("store event intake path must start with '/'");
  }
  if (config.secret.empty() && !config.insecure) {
    return absl::InvalidArgumentError(
        "store event intake without a secret (give --store-events-secret-file, "
        "or --store-events-insecure to accept events from anyone who can "
        "connect)");
  }
  auto* intake = new EventIntake(shard, config, std::move(sinks));
  absl::StatusOr<engine::Listener*> listener = engine::Listener::Start(
      shard, config.host, config.port, [intake](int slot) {
        engine::Socket* socket = engine::Socket::Adopt(intake->shard_, slot);
        if (intake->connections_.size() >= intake->config_.max_connections) {
          Add(intake->shard_->counters().intake_overloaded);
          socket->Write(absl::string_view(
              "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
              "Content-Length: 0\r\nConnection: close\r\n\r\n"));
          socket->Close();
          return;
        }
        new IntakeConnection(intake, socket);
      });
  if (!listener.ok()) {
    delete intake;
    return listener.status();
  }
  intake->listener_ = *listener;
  PIMAP_LOG(INFO) << "store events: listening on " << config.host << ":"
                  << config.port << config.path
                  << (config.secret.empty() ? " (INSECURE: no secret checked)"
                                            : " (secret required)");
  return intake;
}

void EventIntake::Stop() {
  if (listener_ != nullptr) listener_->Stop();
  listener_ = nullptr;
  auto connections = std::move(connections_);
  connections_.clear();
  for (IntakeConnection* c : connections) c->Shutdown();
  delete this;
}

}  // namespace pimap::store
