// The Web Push out-of-band channel (RFC 8030): a session::OutbandNotifier that
// turns a wake-up into an encrypted (RFC 8291) push message signed for with
// VAPID (RFC 8292) and POSTs it to the subscription's push service, on the
// shard's ring (https_request.h). Retries with exponential back-off and
// jitter on 5xx/429/timeouts/connection failures (Retry-After honoured),
// gives up after --outband-max-age, removes the subscription on 404/410, and
// refuses endpoints on loopback/private addresses unless allowed. Bounded:
// at most max_in_flight messages per shard (sending or waiting to retry);
// past that Send() says no and the dispatcher keeps the wake-up queued.
#ifndef PIMAP_BINDINGS_WEBPUSH_WEBPUSH_NOTIFIER_H_
#define PIMAP_BINDINGS_WEBPUSH_WEBPUSH_NOTIFIER_H_

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "bindings/webpush/https_request.h"
#include "bindings/webpush/vapid.h"
#include "core/engine/resolver.h"
#include "core/http/request_parser.h"
#include "core/session/outband_address.h"
#include "core/session/outband_notifier.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::tls {
class TlsContext;
}

namespace pimap::webpush {

struct WebPushConfig {
  int64_t max_age_ms = 3600 * 1000;  // --outband-max-age (also the TTL)
  int64_t request_timeout_ms = 10000;
  bool allow_private = false;  // --outband-allow-private
  size_t max_in_flight = 1024;
  int64_t backoff_base_ms = 1000;
  int64_t backoff_max_ms = 5 * 60 * 1000;
};

// The plaintext of a wake-up (before encryption): {"folder":...,"count":N,
// "uidnext":N}; nothing about the messages themselves.
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
  size_t in_flight() const { return messages_.size(); }

 private:
  struct Message {
    session::WakeUp wake_up;
    session::WebPushSubscription subscription;
    std::string body;  // encrypted once, the same for every attempt
    int attempts = 0;
    TimerWheel::TimerId retry_timer = 0;
  };
  void Attempt(uint64_t id);
  void OnResolved(
      uint64_t id,
      absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses);
  void OnResponse(uint64_t id, absl::StatusOr<http::HttpRequest> response);
  // A retryable failure: again after a back-off (or `retry_after_ms`), or
  // dropped when that would pass the message's max age.
  void Retry(uint64_t id, int64_t retry_after_ms, absl::string_view why);
  void Failed(uint64_t id, absl::string_view why);
  std::string Request(const Message& m, absl::string_view authorization) const;

  engine::Shard* shard_;
  const tls::TlsContext* tls_;
  engine::Resolver* resolver_;
  std::unique_ptr<VapidSigner> vapid_;
  const WebPushConfig* config_;
  session::OutbandDispatcher* outband_;
  absl::flat_hash_map<uint64_t, Message> messages_;
  uint64_t next_id_ = 0;
  std::minstd_rand jitter_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::webpush

#endif  // PIMAP_BINDINGS_WEBPUSH_WEBPUSH_NOTIFIER_H_
