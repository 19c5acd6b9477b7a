// pimapd's options of the out-of-band wake-ups (issue 13): coalescing and
// queue bounds of the dispatcher (core/session/outband_notifier.h), the Web
// Push channel (bindings/webpush), the UDP one (bindings/udp) and the EMN
// webhook (bindings/emn). Rows of the one option table (option_spec.h).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/emn/webhook_url.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

std::string NoneIfEmpty(const std::string& s) {
  return s.empty() ? std::string("none") : s;
}

const OptionSpec kOutbandOptionSpecs[] = {
    {"outband-min-interval", "DURATION",
     "Out-of-band wake-ups: at most one per device per DURATION while it "
     "stays away; events meanwhile make one more when it is over.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.outband_min_interval);
     },
     [](const Options& o) {
       return absl::FormatDuration(o.outband_min_interval);
     }},
    {"outband-max-age", "DURATION",
     "A wake-up not delivered within DURATION of its event is dropped (and "
     "counted); also the TTL a push service keeps it.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.outband_max_age);
     },
     [](const Options& o) { return absl::FormatDuration(o.outband_max_age); }},
    {"outband-timeout", "DURATION",
     "How long one attempt to deliver a wake-up may take (connect, TLS, "
     "answer); then it is retried.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.outband_timeout);
     },
     [](const Options& o) { return absl::FormatDuration(o.outband_timeout); }},
    {"outband-queue-limit", "N",
     "Wake-ups waiting for their channel per shard (1..1000000); past it they "
     "are dropped and counted.",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 1000000), o.outband_queue_limit);
     },
     [](const Options& o) { return absl::StrCat(o.outband_queue_limit); }},
    {"outband-allow-private", nullptr,
     "Let push endpoints be on loopback or private addresses (refused by "
     "default: server-side request forgery). For tests and private push "
     "services.",
     [](absl::string_view v, Options& o) {
       return Set(ParseBool(v), o.outband_allow_private);
     },
     [](const Options& o) {
       return std::string(o.outband_allow_private ? "true" : "false");
     }},
    {"outband-ca-file", "FILE",
     "PEM trust anchors added to the system's for push services (a private "
     "push service's CA).",
     [](absl::string_view v, Options& o) {
       o.outband_ca_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.outband_ca_file); }},
    {"outband-udp", nullptr,
     "Enable the UDP channel: a wake-up is one datagram with the OMA EMN text "
     "to the host:port the device gave as PIMAP_OUTBAND_ADDRESS.",
     [](absl::string_view v, Options& o) {
       return Set(ParseBool(v), o.outband_udp);
     },
     [](const Options& o) {
       return std::string(o.outband_udp ? "true" : "false");
     }},
    {"outband-payload", "minimal|full",
     "What a Web Push wake-up tells: minimal (the default: folder, new-message "
     "count, UIDNEXT) or full (also the newest new message's uid, subject and "
     "from, decoded, 256 bytes each at most). EMN and UDP wake-ups carry no "
     "content either way.",
     [](absl::string_view v, Options& o) {
       if (v != "minimal" && v != "full") {
         return absl::InvalidArgumentError(absl::StrCat(
             "invalid value \"", v, "\": expected minimal or full"));
       }
       o.outband_full_payload = v == "full";
       return absl::OkStatus();
     },
     [](const Options& o) {
       return std::string(o.outband_full_payload ? "full" : "minimal");
     }},
    {"vapid-key", "FILE",
     "P-256 private key (PEM) that signs VAPID tokens (RFC 8292); enables the "
     "WEBPUSH channel. Make one with vapid-keygen.",
     [](absl::string_view v, Options& o) {
       o.vapid_key = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.vapid_key); }},
    {"vapid-subject", "URI",
     "Contact of this server for push services (mailto: or https: URI); "
     "required with --vapid-key.",
     [](absl::string_view v, Options& o) {
       if (!absl::StartsWith(v, "mailto:") && !absl::StartsWith(v, "https:")) {
         return absl::InvalidArgumentError(absl::StrCat(
             "invalid value \"", v, "\": expected a mailto: or https: URI"));
       }
       o.vapid_subject = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.vapid_subject); }},
    {"emn-webhook", "URL",
     "Enable the SMS and WAP_PUSH channels: each wake-up is one JSON POST "
     "(channel, address, content_type, base64 OMA EMN body) to URL, the "
     "operator's SMSC/WAP push adapter. https, or http to a private address "
     "with --outband-allow-private.",
     [](absl::string_view v, Options& o) {
       if (absl::Status s = emn::ParseWebhookUrl(v).status(); !s.ok()) {
         return s;
       }
       o.emn_webhook = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.emn_webhook); }},
    {"emn-format", "wbxml|text",
     "The EMN document's form in --emn-webhook posts: WBXML "
     "(application/vnd.wap.emn+wbxml, the default) or XML "
     "(text/vnd.wap.emn+xml).",
     [](absl::string_view v, Options& o) {
       if (v != "wbxml" && v != "text") {
         return absl::InvalidArgumentError("expected wbxml or text");
       }
       o.emn_text = v == "text";
       return absl::OkStatus();
     },
     [](const Options& o) {
       return std::string(o.emn_text ? "text" : "wbxml");
     }},
    {"emn-webhook-secret-file", "FILE",
     "Sign --emn-webhook posts: header X-Pimap-Signature: sha256=<hex "
     "HMAC-SHA256 of the request body> keyed with FILE's content (trailing "
     "newlines removed).",
     [](absl::string_view v, Options& o) {
       o.emn_webhook_secret_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.emn_webhook_secret_file); }},
};

}  // namespace

absl::Span<const OptionSpec> OutbandOptionSpecs() {
  return kOutbandOptionSpecs;
}

absl::Status ValidateOutband(const Options& o) {
  if (!o.vapid_key.empty() && o.vapid_subject.empty()) {
    return absl::InvalidArgumentError(
        "--vapid-key needs --vapid-subject (mailto: or https: URI)");
  }
  if (!o.emn_webhook.empty() && absl::StartsWith(o.emn_webhook, "http://") &&
      !o.outband_allow_private) {
    return absl::InvalidArgumentError(
        "--emn-webhook: plain http only with --outband-allow-private (and "
        "only to a loopback or private address); use https");
  }
  if (!o.emn_webhook_secret_file.empty() && o.emn_webhook.empty()) {
    return absl::InvalidArgumentError(
        "--emn-webhook-secret-file needs --emn-webhook");
  }
  return absl::OkStatus();
}

}  // namespace pimap
