// RetryingPoster (retrying_post.h): one Entry per post, from Start() through
// name lookup, the request and its retries, to its end (sent, failed, dropped
// or refused), when it leaves posts_. Moved here from the Web Push channel
// (which it served alone) unchanged in behaviour, so that the EMN webhook
// shares it.
#include "bindings/outband_http/retrying_post.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/log.h"
#include "core/engine/shard.h"

namespace pimap::outband_http {

RetryingPoster::RetryingPoster(engine::Shard* shard, const tls::TlsContext* tls,
                               engine::Resolver* resolver,
                               const RetryConfig* config, PostCounters counters,
                               std::string what)
    : shard_(shard),
      tls_(tls),
      resolver_(resolver),
      config_(config),
      counters_(counters),
      what_(std::move(what)),
      jitter_(static_cast<uint32_t>(absl::GetCurrentTimeNanos())) {}

RetryingPoster::~RetryingPoster() {
  for (auto& [id, e] : posts_) {
    if (e.retry_timer != 0) shard_->timers().Cancel(e.retry_timer);
    CounterAdd(*counters_.dropped);
  }
}

void RetryingPoster::CountFailed(absl::string_view user,
                                 absl::string_view why) {
  CounterAdd(*counters_.failed);
  PIMAP_LOG(WARNING) << what_ << " for a device of " << user
                     << " not sent: " << why;
}

void RetryingPoster::Start(Post post) {
  if (full()) {
    CounterAdd(*counters_.dropped);
    return;
  }
  const uint64_t id = ++next_id_;
  posts_[id].post = std::move(post);
  Attempt(id);
}

void RetryingPoster::Attempt(uint64_t id) {
  auto it = posts_.find(id);
  if (it == posts_.end()) return;
  Entry& e = it->second;
  ++e.attempts;
  std::weak_ptr<bool> alive = alive_;
  resolver_->Resolve(
      e.post.host, e.post.port,
      [this, alive, id](absl::StatusOr<std::vector<engine::ResolvedAddress>>
                            addresses) mutable {
        if (!alive.expired()) OnResolved(id, std::move(addresses));
      });
}

void RetryingPoster::OnResolved(
    uint64_t id,
    absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses) {
  auto it = posts_.find(id);
  if (it == posts_.end()) return;
  Entry& e = it->second;
  if (!addresses.ok()) {
    Retry(id, 0, addresses.status().message());
    return;
  }
  HttpsTarget target;
  target.host = e.post.host;
  // Checked on the addresses connected to, not on the name: a name may
  // resolve to an internal address (server-side request forgery). Plain
  // http never leaves the private network (its posts are allowed only with
  // --outband-allow-private in the first place).
  for (const engine::ResolvedAddress& a : *addresses) {
    const bool internal = engine::IsInternalAddress(a.address);
    if (!e.post.tls && !internal) continue;
    if (config_->allow_private || !internal) target.addresses.push_back(a);
  }
  if (target.addresses.empty()) {
    Failed(id, e.post.tls ? "the endpoint is on a loopback or private address "
                            "(--outband-allow-private)"
                          : "plain http only to a loopback or private address "
                            "(with --outband-allow-private)");
    return;
  }
  absl::StatusOr<std::string> request = e.post.request();
  if (!request.ok()) {
    Retry(id, 0, request.status().message());
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  StartHttpsRequest(
      shard_, e.post.tls ? tls_ : nullptr, target, *std::move(request),
      config_->request_timeout_ms,
      [this, alive, id](absl::StatusOr<http::HttpRequest> response) mutable {
        if (!alive.expired()) OnResponse(id, std::move(response));
      });
}

void RetryingPoster::OnResponse(uint64_t id,
                                absl::StatusOr<http::HttpRequest> response) {
  auto it = posts_.find(id);
  if (it == posts_.end()) return;
  Entry& e = it->second;
  if (!response.ok()) {
    Retry(id, 0, response.status().message());
    return;
  }
  const int status = response->status;
  if (status >= 200 && status < 300) {
    CounterAdd(*counters_.sent);
    HistogramObserve(*counters_.latency,
                     shard_->timers().now_ms() - e.post.first_event_ms);
    posts_.erase(it);
    return;
  }
  if (status == 429 || status >= 500) {
    int64_t retry_after_s = 0;
    const std::string* header = response->Header("retry-after");
    if (header == nullptr || !absl::SimpleAtoi(*header, &retry_after_s) ||
        retry_after_s < 0) {
      retry_after_s = 0;  // an HTTP-date: the back-off decides
    }
    Retry(id, retry_after_s * 1000, absl::StrCat("status ", status));
    return;
  }
  if (e.post.on_refused) {
    // Taken out first: the callback may start another post.
    Post post = std::move(e.post);
    posts_.erase(it);
    if (post.on_refused(status)) return;
    CounterAdd(*counters_.failed);
    PIMAP_LOG(WARNING) << what_ << " for a device of " << post.user
                       << " failed: status " << status;
    return;
  }
  Failed(id, absl::StrCat("status ", status));
}

void RetryingPoster::Retry(uint64_t id, int64_t retry_after_ms,
                           absl::string_view why) {
  auto it = posts_.find(id);
  if (it == posts_.end()) return;
  Entry& e = it->second;
  int64_t delay = retry_after_ms;
  if (delay <= 0) {
    // Exponential with "equal jitter": half fixed, half random, so that the
    // devices of one failed burst do not all come back at once.
    const int shift = std::min(e.attempts - 1, 20);
    const int64_t full =
        std::min(config_->backoff_max_ms, config_->backoff_base_ms << shift);
    delay = full / 2 + static_cast<int64_t>(
                           jitter_() % static_cast<uint64_t>(full / 2 + 1));
  }
  const int64_t now = shard_->timers().now_ms();
  if (now + delay - e.post.first_event_ms > config_->max_age_ms) {
    CounterAdd(*counters_.dropped);
    PIMAP_LOG(WARNING) << what_ << " for a device of " << e.post.user
                       << " dropped after " << e.attempts
                       << " attempts (--outband-max-age): " << why;
    posts_.erase(it);
    return;
  }
  CounterAdd(*counters_.retried);
  PIMAP_LOG(DEBUG) << what_ << " for a device of " << e.post.user
                   << " again in " << delay << " ms: " << why;
  e.retry_timer = shard_->timers().Schedule(delay, [this, id] {
    auto again = posts_.find(id);
    if (again == posts_.end()) return;
    again->second.retry_timer = 0;
    Attempt(id);
  });
}

void RetryingPoster::Failed(uint64_t id, absl::string_view why) {
  auto it = posts_.find(id);
  if (it == posts_.end()) return;
  CounterAdd(*counters_.failed);
  PIMAP_LOG(WARNING) << what_ << " for a device of " << it->second.post.user
                     << " failed: " << why;
  posts_.erase(it);
}

}  // namespace pimap::outband_http
