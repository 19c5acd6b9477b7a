// pimapd's wiring of the out-of-band wake-ups: what is prepared once from the
// options (the VAPID key, the client TLS context) and what each shard runs
// (the dispatcher the session registry calls, and the channels).
#ifndef PIMAP_TOOLS_PIMAPD_OUTBAND_SETUP_H_
#define PIMAP_TOOLS_PIMAPD_OUTBAND_SETUP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bindings/emn/emn_notifier.h"
#include "bindings/udp/udp_notifier.h"
#include "bindings/webpush/webpush_notifier.h"
#include "core/session/outband_notifier.h"
#include "tools/pimapd/options.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::session {
class SessionRegistry;
}
namespace pimap::tls {
class TlsContext;
}

namespace pimap {

struct OutbandShared {
  session::OutbandConfig dispatcher;
  webpush::WebPushConfig webpush;
  // The client TLS context of the HTTPS channels (null: neither WEBPUSH nor
  // an https EMN webhook).
  std::shared_ptr<tls::TlsContext> tls;
  bool webpush_enabled = false;          // --vapid-key: the WEBPUSH channel
  std::string vapid_pem;                 // the key's PEM text (secret)
  std::string vapid_subject;
  std::string vapid_public_key;  // base64url, for the log and XPROVISION
  bool udp = false;              // the UDP channel
  bool emn = false;              // --emn-webhook: the SMS and WAP_PUSH ones
  emn::EmnConfig emn_config;
};

// Reads --vapid-key and checks it (the key's content never reaches a
// message), reads --emn-webhook-secret-file, loads --outband-ca-file.
absl::StatusOr<OutbandShared> PrepareOutband(const Options& options);

struct OutbandShard {
  std::unique_ptr<session::OutbandDispatcher> dispatcher;
  std::unique_ptr<engine::Resolver> resolver;
  std::unique_ptr<webpush::WebPushNotifier> webpush;
  std::unique_ptr<udp::UdpNotifier> udp;
  std::unique_ptr<emn::EmnNotifier> emn;
};

// On the shard's thread: the shard's dispatcher, given to `sessions`, and its
// channels. `shared` outlives the shard.
absl::Status StartOutband(engine::Shard& shard, const OutbandShared& shared,
                          session::SessionRegistry* sessions,
                          OutbandShard* out);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_OUTBAND_SETUP_H_
