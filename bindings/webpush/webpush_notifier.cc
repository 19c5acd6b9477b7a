// WebPushNotifier (webpush_notifier.h): a wake-up becomes one encrypted body
// and a Post whose request carries a fresh VAPID token per attempt; the
// delivery loop is outband_http::RetryingPoster's.
#include "bindings/webpush/webpush_notifier.h"

#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bindings/webpush/webpush_crypto.h"
#include "core/base/json_string.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"

namespace pimap::webpush {

std::string WakeUpBody(const session::WakeUp& wake_up) {
  std::string out = R"({"folder":)";
  AppendJsonString(&out, wake_up.folder);
  absl::StrAppend(&out, R"(,"count":)", wake_up.new_messages, R"(,"uidnext":)",
                  wake_up.uidnext);
  if (wake_up.headline != nullptr) {
    // Display text already (header_text.h: UTF-8, no controls, each at most
    // kMaxHeadlineBytes), so the body stays far below RFC 8291's 4096-byte
    // record even if every byte were escaped as \u00XX.
    absl::StrAppend(&out, R"(,"uid":)", wake_up.headline_uid, R"(,"subject":)");
    AppendJsonString(&out, wake_up.headline->subject);
    out += R"(,"from":)";
    AppendJsonString(&out, wake_up.headline->from);
  }
  out += "}";
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
      vapid_(std::move(vapid)),
      config_(config),
      outband_(outband),
      poster_(shard, tls, resolver, config,
              {.sent = &shard->counters().webpush_sent,
               .failed = &shard->counters().webpush_failed,
               .retried = &shard->counters().webpush_retried,
               .dropped = &shard->counters().webpush_dropped,
               .latency = &shard->counters().webpush_latency},
              "web push"),
      agreements_(&shard->timers()) {}

WebPushNotifier::~WebPushNotifier() = default;

bool WebPushNotifier::Send(session::WakeUp wake_up) {
  if (poster_.full()) return false;
  absl::StatusOr<session::WebPushSubscription> sub =
      session::ParseWebPushSubscription(wake_up.address);
  absl::StatusOr<std::string> body = absl::UnknownError("no subscription");
  if (!sub.ok()) {
    body = sub.status();
  } else {
    // The key agreement made while the device was away, if one is ready;
    // the next one is made ahead again (the device is still away).
    agreements_.NoteBusy();
    std::optional<KeyAgreement> ahead = agreements_.Take(sub->p256dh);
    if (ahead.has_value()) CounterAdd(shard_->counters().webpush_keys_ahead);
    body = ahead.has_value()
               ? EncryptAes128gcmWith(*ahead, sub->p256dh, sub->auth,
                                      WakeUpBody(wake_up))
               : EncryptAes128gcm(sub->p256dh, sub->auth, WakeUpBody(wake_up));
    agreements_.Want(sub->p256dh);
  }
  if (!body.ok()) {
    poster_.CountFailed(wake_up.user, body.status().message());
    return true;
  }
  outband_http::Post post;
  post.host = sub->host;
  uint32_t port = 443;
  (void)absl::SimpleAtoi(sub->port, &port);
  post.port = static_cast<uint16_t>(port);
  post.user = wake_up.user;
  post.first_event_ms = wake_up.first_event_ms;
  post.request = [this, wake_up, s = *sub, b = *std::move(body)] {
    return Request(wake_up, s, b);
  };
  post.on_refused = [this, wake_up, key = sub->p256dh](int status) {
    if (status != 404 && status != 410) return false;
    // RFC 8030 §7.3: the subscription expired; the device must subscribe
    // again (the draft's "address no longer valid").
    CounterAdd(shard_->counters().webpush_gone);
    agreements_.Drop(key);
    PIMAP_LOG(INFO) << "web push subscription of a device of " << wake_up.user
                    << " is gone (" << status << "): removed";
    outband_->AddressGone(wake_up);
    return true;
  };
  poster_.Start(std::move(post));
  return true;
}

void WebPushNotifier::Prepare(absl::string_view address) {
  absl::StatusOr<session::WebPushSubscription> sub =
      session::ParseWebPushSubscription(address);
  if (sub.ok()) agreements_.Want(sub->p256dh);
}

absl::StatusOr<std::string> WebPushNotifier::Request(
    const session::WakeUp& wake_up, const session::WebPushSubscription& s,
    const std::string& body) const {
  absl::StatusOr<std::string> authorization =
      vapid_->Authorization(s.origin, absl::ToUnixSeconds(absl::Now()));
  if (!authorization.ok()) return authorization.status();
  // The origin without its scheme is the Host (port included when not 443).
  const absl::string_view host =
      absl::string_view(s.origin).substr(sizeof("https://") - 1);
  return absl::StrCat(
      "POST ", s.path, " HTTP/1.1\r\nHost: ", host,
      "\r\nTTL: ", std::max<int64_t>(config_->max_age_ms / 1000, 0),
      "\r\nUrgency: ", wake_up.new_messages > 0 ? "high" : "normal",
      "\r\nTopic: ", DeviceTopic(wake_up.user, wake_up.device),
      "\r\nContent-Type: application/octet-stream"
      "\r\nContent-Encoding: aes128gcm\r\nContent-Length: ",
      body.size(), "\r\nAuthorization: ", *authorization, "\r\n\r\n",
      body);
}

}  // namespace pimap::webpush
