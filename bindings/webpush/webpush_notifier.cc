// WebPushNotifier (webpush_notifier.h): one Message per wake-up, from Send()
// through name lookup, the HTTPS POST and its retries, to its end (sent,
// failed, dropped or gone), when it leaves messages_.
#include "bindings/webpush/webpush_notifier.h"

#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bindings/webpush/webpush_crypto.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"

namespace pimap::webpush {
namespace {

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(
          out, "\\u00",
          absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

std::string WakeUpBody(const session::WakeUp& wake_up) {
  std::string out = R"({"folder":)";
  AppendJsonString(&out, wake_up.folder);
  absl::StrAppend(&out, R"(,"count":)", wake_up.new_messages, R"(,"uidnext":)",
                  wake_up.uidnext, "}");
  return out;
}

std::string DeviceTopic(absl::string_view user, absl::string_view device) {
  const std::string key =
      absl::StrCat("pimap topic", absl::string_view("\0", 1), user,
                   absl::string_view("\0", 1), device);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(key.data()), key.size(), digest);
  std::string topic;
  absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<char*>(digest), sizeof(digest)),
      &topic);
  topic.resize(32);
  return topic;
}

WebPushNotifier::WebPushNotifier(engine::Shard* shard,
                                 const tls::TlsContext* tls,
                                 engine::Resolver* resolver,
                                 std::unique_ptr<VapidSigner> vapid,
                                 const WebPushConfig* config,
                                 session::OutbandDispatcher* outband)
    : shard_(shard),
      tls_(tls),
      resolver_(resolver),
      vapid_(std::move(vapid)),
      config_(config),
      outband_(outband),
      jitter_(static_cast<uint32_t>(absl::GetCurrentTimeNanos())) {}

WebPushNotifier::~WebPushNotifier() {
  for (auto& [id, m] : messages_) {
    if (m.retry_timer != 0) shard_->timers().Cancel(m.retry_timer);
    CounterAdd(shard_->counters().webpush_dropped);
  }
}

bool WebPushNotifier::Send(session::WakeUp wake_up) {
  if (messages_.size() >= config_->max_in_flight) return false;
  absl::StatusOr<session::WebPushSubscription> sub =
      session::ParseWebPushSubscription(wake_up.address);
  absl::StatusOr<std::string> body =
      sub.ok() ? EncryptAes128gcm(sub->p256dh, sub->auth, WakeUpBody(wake_up))
               : sub.status();
  if (!body.ok()) {
    CounterAdd(shard_->counters().webpush_failed);
    PIMAP_LOG(WARNING) << "web push for a device of " << wake_up.user
                       << " not sent: " << body.status().message();
    return true;
  }
  const uint64_t id = ++next_id_;
  Message& m = messages_[id];
  m.wake_up = std::move(wake_up);
  m.subscription = *std::move(sub);
  m.body = *std::move(body);
  Attempt(id);
  return true;
}

void WebPushNotifier::Attempt(uint64_t id) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  Message& m = it->second;
  ++m.attempts;
  uint32_t port = 443;
  (void)absl::SimpleAtoi(m.subscription.port, &port);
  std::weak_ptr<bool> alive = alive_;
  resolver_->Resolve(
      m.subscription.host, static_cast<uint16_t>(port),
      [this, alive, id](absl::StatusOr<std::vector<engine::ResolvedAddress>>
                            addresses) mutable {
        if (!alive.expired()) OnResolved(id, std::move(addresses));
      });
}

void WebPushNotifier::OnResolved(
    uint64_t id,
    absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  Message& m = it->second;
  if (!addresses.ok()) {
    Retry(id, 0, addresses.status().message());
    return;
  }
  HttpsTarget target;
  target.host = m.subscription.host;
  // Checked on the addresses connected to, not on the name: a name may
  // resolve to an internal address (server-side request forgery).
  for (const engine::ResolvedAddress& a : *addresses) {
    if (config_->allow_private || !engine::IsInternalAddress(a.address)) {
      target.addresses.push_back(a);
    }
  }
  if (target.addresses.empty()) {
    Failed(id,
           "the endpoint is on a loopback or private address "
           "(--outband-allow-private)");
    return;
  }
  absl::StatusOr<std::string> authorization = vapid_->Authorization(
      m.subscription.origin, absl::ToUnixSeconds(absl::Now()));
  if (!authorization.ok()) {
    Retry(id, 0, authorization.status().message());
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  StartHttpsRequest(
      shard_, tls_, target, Request(m, *authorization),
      config_->request_timeout_ms,
      [this, alive, id](absl::StatusOr<http::HttpRequest> response) mutable {
        if (!alive.expired()) OnResponse(id, std::move(response));
      });
}

std::string WebPushNotifier::Request(const Message& m,
                                     absl::string_view authorization) const {
  const session::WebPushSubscription& s = m.subscription;
  // The origin without its scheme is the Host (port included when not 443).
  const absl::string_view host =
      absl::string_view(s.origin).substr(sizeof("https://") - 1);
  return absl::StrCat(
      "POST ", s.path, " HTTP/1.1\r\nHost: ", host,
      "\r\nTTL: ", std::max<int64_t>(config_->max_age_ms / 1000, 0),
      "\r\nUrgency: ", m.wake_up.new_messages > 0 ? "high" : "normal",
      "\r\nTopic: ", DeviceTopic(m.wake_up.user, m.wake_up.device),
      "\r\nContent-Type: application/octet-stream"
      "\r\nContent-Encoding: aes128gcm\r\nContent-Length: ",
      m.body.size(), "\r\nAuthorization: ", authorization, "\r\n\r\n", m.body);
}

void WebPushNotifier::OnResponse(uint64_t id,
                                 absl::StatusOr<http::HttpRequest> response) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  Message& m = it->second;
  if (!response.ok()) {
    Retry(id, 0, response.status().message());
    return;
  }
  const int status = response->status;
  ShardCounters& c = shard_->counters();
  if (status >= 200 && status < 300) {
    CounterAdd(c.webpush_sent);
    HistogramObserve(c.webpush_latency,
                     shard_->timers().now_ms() - m.wake_up.first_event_ms);
    messages_.erase(it);
    return;
  }
  if (status == 404 || status == 410) {
    // RFC 8030 §7.3: the subscription expired; the device must subscribe
    // again (the draft's "address no longer valid").
    CounterAdd(c.webpush_gone);
    PIMAP_LOG(INFO) << "web push subscription of a device of " << m.wake_up.user
                    << " is gone (" << status << "): removed";
    const session::WakeUp wake_up = std::move(m.wake_up);
    messages_.erase(it);
    outband_->AddressGone(wake_up);
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
  Failed(id, absl::StrCat("status ", status));
}

void WebPushNotifier::Retry(uint64_t id, int64_t retry_after_ms,
                            absl::string_view why) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  Message& m = it->second;
  int64_t delay = retry_after_ms;
  if (delay <= 0) {
    // Exponential with "equal jitter": half fixed, half random, so that the
    // devices of one failed burst do not all come back at once.
    const int shift = std::min(m.attempts - 1, 20);
    const int64_t full =
        std::min(config_->backoff_max_ms, config_->backoff_base_ms << shift);
    delay = full / 2 + static_cast<int64_t>(
                           jitter_() % static_cast<uint64_t>(full / 2 + 1));
  }
  const int64_t now = shard_->timers().now_ms();
  if (now + delay - m.wake_up.first_event_ms > config_->max_age_ms) {
    CounterAdd(shard_->counters().webpush_dropped);
    PIMAP_LOG(WARNING) << "web push for a device of " << m.wake_up.user
                       << " dropped after " << m.attempts
                       << " attempts (--outband-max-age): " << why;
    messages_.erase(it);
    return;
  }
  CounterAdd(shard_->counters().webpush_retried);
  PIMAP_LOG(DEBUG) << "web push for a device of " << m.wake_up.user
                   << " again in " << delay << " ms: " << why;
  m.retry_timer = shard_->timers().Schedule(delay, [this, id] {
    auto again = messages_.find(id);
    if (again == messages_.end()) return;
    again->second.retry_timer = 0;
    Attempt(id);
  });
}

void WebPushNotifier::Failed(uint64_t id, absl::string_view why) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  CounterAdd(shard_->counters().webpush_failed);
  PIMAP_LOG(WARNING) << "web push for a device of " << it->second.wake_up.user
                     << " failed: " << why;
  messages_.erase(it);
}

}  // namespace pimap::webpush
