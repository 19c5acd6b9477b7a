// The EMN out-of-band channel (issue 13): wake-ups for devices that chose
// PIMAP_OUTBAND_CHANNEL SMS or WAP_PUSH go as one JSON POST each to the
// operator's webhook (--emn-webhook), whose adapter hands them to its SMSC or
// WAP Push Proxy Gateway:
//   {"channel":"SMS"|"WAP_PUSH","address":<PIMAP_OUTBAND_ADDRESS>,
//    "content_type":"application/vnd.wap.emn+wbxml"|"text/vnd.wap.emn+xml",
//    "body":<base64 of the EMN document (emn_document.h)>}
// signed, with --emn-webhook-secret-file, by "X-Pimap-Signature:
// sha256=<hex HMAC-SHA256 of the request body>". Delivery (retries, back-off,
// max age, the private-address rule, the in-flight bound) is the shared loop
// of bindings/outband_http; plain http only to loopback/private addresses.
#ifndef PIMAP_BINDINGS_EMN_EMN_NOTIFIER_H_
#define PIMAP_BINDINGS_EMN_EMN_NOTIFIER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/emn/webhook_url.h"
#include "bindings/outband_http/retrying_post.h"
#include "core/session/outband_notifier.h"

namespace pimap::engine {
class Resolver;
class Shard;
}  // namespace pimap::engine
namespace pimap::tls {
class TlsContext;
}

namespace pimap::emn {

struct EmnConfig {
  outband_http::RetryConfig retry;
  WebhookUrl webhook;
  bool text = false;   // --emn-format text: the XML form, not WBXML
  std::string secret;  // HMAC-SHA256 key; empty: requests are not signed
};

// The webhook's JSON body for `wake_up` at `now`.
std::string WebhookBody(const session::WakeUp& wake_up, bool text,
                        absl::Time now);
// "sha256=" and the lower-case hex HMAC-SHA256 of `body` under `secret`.
std::string WebhookSignature(absl::string_view secret, absl::string_view body);

class EmnNotifier final : public session::OutbandNotifier {
 public:
  // Everything pointed to outlives this and belongs to `shard` (`tls` is
  // shared read-only; null when the webhook is plain http).
  EmnNotifier(engine::Shard* shard, const tls::TlsContext* tls,
              engine::Resolver* resolver, const EmnConfig* config);

  bool Send(session::WakeUp wake_up) override;
  size_t in_flight() const { return poster_.in_flight(); }

 private:
  const EmnConfig* config_;
  outband_http::RetryingPoster poster_;
};

}  // namespace pimap::emn

#endif  // PIMAP_BINDINGS_EMN_EMN_NOTIFIER_H_
