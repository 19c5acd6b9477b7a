// EmnNotifier (emn_notifier.h): a wake-up becomes one signed JSON request,
// the same for every attempt (the EMN's timestamp is when the wake-up was
// handed over, not when an attempt went out).
#include "bindings/emn/emn_notifier.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bindings/emn/emn_document.h"
#include "core/base/json_string.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"
#include "core/session/outband_address.h"

namespace pimap::emn {

std::string WebhookBody(const session::WakeUp& wake_up, bool text,
                        absl::Time now) {
  const std::string document =
      text ? EmnXml(wake_up.user, now) : EmnWbxml(wake_up.user, now);
  std::string out = R"({"channel":)";
  AppendJsonString(&out, wake_up.channel);
  out += R"(,"address":)";
  AppendJsonString(&out, wake_up.address);
  out += R"(,"content_type":)";
  AppendJsonString(&out, text ? kEmnTextType : kEmnWbxmlType);
  absl::StrAppend(&out, R"(,"body":")", absl::Base64Escape(document), "\"}");
  return out;
}

std::string WebhookSignature(absl::string_view secret, absl::string_view body) {
  uint8_t mac[SHA256_DIGEST_LENGTH];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), secret.size(),
       reinterpret_cast<const uint8_t*>(body.data()), body.size(), mac,
       &mac_len);
  return absl::StrCat("sha256=",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(mac), mac_len)));
}

EmnNotifier::EmnNotifier(engine::Shard* shard, const tls::TlsContext* tls,
                         engine::Resolver* resolver, const EmnConfig* config)
    : config_(config),
      poster_(shard, tls, resolver, &config->retry,
              {.sent = &shard->counters().emn_sent,
               .failed = &shard->counters().emn_failed,
               .retried = &shard->counters().emn_retried,
               .dropped = &shard->counters().emn_dropped,
               .latency = &shard->counters().emn_latency},
              "EMN webhook") {}

bool EmnNotifier::Send(session::WakeUp wake_up) {
  if (poster_.full()) return false;
  // Checked again here: an address stored before the preference check
  // existed (prefs.h) may still be malformed.
  if (absl::Status s =
          session::CheckEmnAddress(wake_up.channel, wake_up.address);
      !s.ok()) {
    poster_.CountFailed(wake_up.user, s.message());
    return true;
  }
  const WebhookUrl& url = config_->webhook;
  const std::string body = WebhookBody(wake_up, config_->text, absl::Now());
  std::string request = absl::StrCat(
      "POST ", url.path, " HTTP/1.1\r\nHost: ", url.authority,
      "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
      "\r\n");
  if (!config_->secret.empty()) {
    absl::StrAppend(&request, "X-Pimap-Signature: ",
                    WebhookSignature(config_->secret, body), "\r\n");
  }
  // Kept alive: the shared HTTP client reuses connections to the webhook.
  absl::StrAppend(&request, "\r\n", body);
  outband_http::Post post;
  post.host = url.host;
  post.port = url.port;
  post.tls = url.tls;
  post.user = wake_up.user;
  post.first_event_ms = wake_up.first_event_ms;
  // The same request every attempt (nothing in it expires).
  post.request = [r = std::move(request)] {
    return absl::StatusOr<std::string>(r);
  };
  poster_.Start(std::move(post));
  return true;
}

}  // namespace pimap::emn
