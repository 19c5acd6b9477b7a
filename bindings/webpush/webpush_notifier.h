// The Web Push out-of-band channel (RFC 8030): a session::OutbandNotifier that
// turns a wake-up into an encrypted (RFC 8291) push message signed for with
// VAPID (RFC 8292) and POSTs it to the subscription's push service, on the
// shard's ring through the shared delivery loop
// (bindings/outband_http/retrying_post.h: retries, back-off, max age, the
// private-address refusal, the in-flight bound), and removes the
// subscription on 404/410. Past max_in_flight Send() says no and the
// dispatcher keeps the wake-up queued.
#ifndef PIMAP_BINDINGS_WEBPUSH_WEBPUSH_NOTIFIER_H_
#define PIMAP_BINDINGS_WEBPUSH_WEBPUSH_NOTIFIER_H_

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bindings/outband_http/retrying_post.h"
#include "bindings/webpush/key_agreement_cache.h"
#include "bindings/webpush/vapid.h"
#include "core/engine/resolver.h"
#include "core/session/outband_address.h"
#include "core/session/outband_notifier.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::tls {
class TlsContext;
}

namespace pimap::webpush {

// Its max_age_ms (--outband-max-age) is also the TTL.
using WebPushConfig = outband_http::RetryConfig;

// The plaintext of a wake-up (before encryption): {"folder":...,"count":N,
// "uidnext":N}; nothing about the messages themselves, unless the wake-up
// carries a headline (`--outband-payload full`): then also ,"uid":N,
// "subject":...,"from":... of that message.
std::string WakeUpBody(const session::WakeUp& wake_up);
// The Topic header (RFC 8030 §5.4) of a device: at most 32 base64url
// characters, the same for every wake-up of the device and different across
// devices, so that a push service replaces an undelivered one; a hash, so
// that it names nobody.
std::string DeviceTopic(absl::string_view user, absl::string_view device);

class WebPushNotifier final : public session::OutbandNotifier {
 public:
  // Everything pointed to outlives this and belongs to `shard` (`tls` is
  // shared read-only). `outband` hears of subscriptions that are gone.
  WebPushNotifier(engine::Shard* shard, const tls::TlsContext* tls,
                  engine::Resolver* resolver,
                  std::unique_ptr<VapidSigner> vapid,
                  const WebPushConfig* config,
                  session::OutbandDispatcher* outband);
  ~WebPushNotifier() override;

  bool Send(session::WakeUp wake_up) override;
  // The key agreement of the device's next message is made ahead
  // (KeyAgreementCache).
  void Prepare(absl::string_view address) override;
  const KeyAgreementCache& key_agreements() const { return agreements_; }
  size_t in_flight() const { return poster_.in_flight(); }

 private:
  // The request of one attempt of `wake_up` to `s` (`body` encrypted once, the
  // same for every attempt; the VAPID token fresh).
  absl::StatusOr<std::string> Request(const session::WakeUp& wake_up,
                                      const session::WebPushSubscription& s,
                                      const std::string& body) const;

  engine::Shard* shard_;
  std::unique_ptr<VapidSigner> vapid_;
  const WebPushConfig* config_;
  session::OutbandDispatcher* outband_;
  outband_http::RetryingPoster poster_;
  KeyAgreementCache agreements_;
};

}  // namespace pimap::webpush

#endif  // PIMAP_BINDINGS_WEBPUSH_WEBPUSH_NOTIFIER_H_
