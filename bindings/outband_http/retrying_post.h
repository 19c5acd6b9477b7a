// The delivery loop the HTTP out-of-band channels share (Web Push, the EMN
// webhook): one Post per wake-up, from name lookup through the request
// (https_request.h) and its retries to its end. Retries with exponential
// back-off and jitter on 5xx/429/timeouts/connection failures (Retry-After in
// seconds honoured), gives up after the wake-up's max age, refuses targets
// whose addresses are loopback/private unless allowed (server-side request
// forgery: checked on the addresses connected to, not on the name). Bounded:
// at most max_in_flight posts (sending or waiting to retry). Counts into the
// channel's own counters. On the shard's thread only.
#ifndef PIMAP_BINDINGS_OUTBAND_HTTP_RETRYING_POST_H_
#define PIMAP_BINDINGS_OUTBAND_HTTP_RETRYING_POST_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bindings/outband_http/https_request.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/engine/resolver.h"
#include "core/http/request_parser.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::tls {
class TlsContext;
}

namespace pimap::outband_http {

struct RetryConfig {
  int64_t max_age_ms = 3600 * 1000;    // --outband-max-age
  int64_t request_timeout_ms = 10000;  // --outband-timeout
  bool allow_private = false;          // --outband-allow-private
  size_t max_in_flight = 1024;
  int64_t backoff_base_ms = 1000;
  int64_t backoff_max_ms = 5 * 60 * 1000;
};

// The channel's counters (ShardCounters fields of the shard).
struct PostCounters {
  std::atomic<uint64_t>* sent = nullptr;     // a 2xx
  std::atomic<uint64_t>* failed = nullptr;   // refused for good
  std::atomic<uint64_t>* retried = nullptr;  // an attempt repeated
  std::atomic<uint64_t>* dropped = nullptr;  // given up (max age, shutdown)
  LatencyHistogram* latency = nullptr;       // event -> 2xx
};

struct Post {
  std::string host;  // a name or an IP literal (no brackets)
  uint16_t port = 443;
  // false: plain http, only ever to loopback/private addresses and only with
  // allow_private (the channel refuses it otherwise).
  bool tls = true;
  std::string user;            // for log lines only
  int64_t first_event_ms = 0;  // MonotonicNowMs() of the wake-up's event
  // The request of one attempt (called after each lookup: e.g. a VAPID token
  // that must be fresh); an error is retried like a failed attempt.
  absl::AnyInvocable<absl::StatusOr<std::string>()> request;
  // A status that is neither 2xx nor retryable: true when the channel dealt
  // with it (e.g. a push service's 410), false to count it as failed. May be
  // empty.
  absl::AnyInvocable<bool(int status)> on_refused;
};

class RetryingPoster {
 public:
  // `what` names the channel in log lines ("web push"). Everything pointed
  // to outlives this and belongs to `shard` (`tls` is shared read-only; null
  // when every post is plain http).
  RetryingPoster(engine::Shard* shard, const tls::TlsContext* tls,
                 engine::Resolver* resolver, const RetryConfig* config,
                 PostCounters counters, std::string what);
  ~RetryingPoster();  // posts still in flight count as dropped
  RetryingPoster(const RetryingPoster&) = delete;
  RetryingPoster& operator=(const RetryingPoster&) = delete;

  bool full() const { return posts_.size() >= config_->max_in_flight; }
  // Starts `post` (check full() first: a post past the bound is dropped).
  void Start(Post post);
  size_t in_flight() const { return posts_.size(); }
  // A count as failed, with a log line (a wake-up the channel could not even
  // turn into a post).
  void CountFailed(absl::string_view user, absl::string_view why);

 private:
  struct Entry {
    Post post;
    int attempts = 0;
    TimerWheel::TimerId retry_timer = 0;
  };
  void Attempt(uint64_t id);
  void OnResolved(
      uint64_t id,
      absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses);
  void OnResponse(uint64_t id, absl::StatusOr<http::HttpRequest> response);
  // A retryable failure: again after a back-off (or `retry_after_ms`), or
  // dropped when that would pass the post's max age.
  void Retry(uint64_t id, int64_t retry_after_ms, absl::string_view why);
  void Failed(uint64_t id, absl::string_view why);

  engine::Shard* shard_;
  const tls::TlsContext* tls_;
  engine::Resolver* resolver_;
  const RetryConfig* config_;
  PostCounters counters_;
  std::string what_;
  absl::flat_hash_map<uint64_t, Entry> posts_;
  uint64_t next_id_ = 0;
  std::minstd_rand jitter_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::outband_http

#endif  // PIMAP_BINDINGS_OUTBAND_HTTP_RETRYING_POST_H_
