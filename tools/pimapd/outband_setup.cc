// Out-of-band wiring of pimapd (outband_setup.h).
#include "tools/pimapd/outband_setup.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/tls/tls_context.h"
#include "bindings/webpush/vapid.h"
#include "core/engine/shard.h"
#include "core/session/session_registry.h"

namespace pimap {

absl::StatusOr<OutbandShared> PrepareOutband(const Options& options) {
  OutbandShared shared;
  shared.dispatcher.min_interval_ms =
      absl::ToInt64Milliseconds(options.outband_min_interval);
  shared.dispatcher.max_queue =
      static_cast<size_t>(options.outband_queue_limit);
  shared.webpush.max_age_ms =
      absl::ToInt64Milliseconds(options.outband_max_age);
  shared.webpush.request_timeout_ms =
      absl::ToInt64Milliseconds(options.outband_timeout);
  shared.webpush.allow_private = options.outband_allow_private;
  shared.udp = options.outband_udp;
  if (options.vapid_key.empty()) return shared;
  std::ifstream in(options.vapid_key);
  std::stringstream pem;
  pem << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read --vapid-key ", options.vapid_key));
  }
  absl::StatusOr<std::unique_ptr<webpush::VapidSigner>> signer =
      webpush::VapidSigner::FromPem(pem.str(), options.vapid_subject);
  if (!signer.ok()) return signer.status();
  absl::StatusOr<std::shared_ptr<tls::TlsContext>> tls =
      tls::TlsContext::CreateClient(options.outband_ca_file,
                                    /*also_system=*/true, {"http/1.1"});
  if (!tls.ok()) return tls.status();
  shared.tls = *std::move(tls);
  shared.vapid_pem = pem.str();
  shared.vapid_subject = options.vapid_subject;
  shared.vapid_public_key = (*signer)->public_key();
  return shared;
}

absl::Status StartOutband(engine::Shard& shard, const OutbandShared& shared,
                          session::SessionRegistry* sessions,
                          OutbandShard* out) {
  out->dispatcher = std::make_unique<session::OutbandDispatcher>(
      &shard.timers(), &shard.counters(), &shared.dispatcher);
  sessions->set_outband(out->dispatcher.get());
  // The registry's pointer goes before the dispatcher does.
  shard.AddStopHook([sessions] { sessions->set_outband(nullptr); });
  if (shared.tls == nullptr && !shared.udp) return absl::OkStatus();
  out->resolver = std::make_unique<engine::Resolver>(&shard);
  shard.services().Register(out->resolver.get());
  if (shared.udp) {
    out->udp = std::make_unique<udp::UdpNotifier>(&shard, out->resolver.get(),
                                                  shared.webpush.allow_private);
    out->dispatcher->Register("UDP", out->udp.get());
  }
  if (shared.tls == nullptr) return absl::OkStatus();
  // A signer per shard: its token cache is the shard's alone (no locks).
  absl::StatusOr<std::unique_ptr<webpush::VapidSigner>> signer =
      webpush::VapidSigner::FromPem(shared.vapid_pem, shared.vapid_subject);
  if (!signer.ok()) return signer.status();
  out->webpush = std::make_unique<webpush::WebPushNotifier>(
      &shard, shared.tls.get(), out->resolver.get(), *std::move(signer),
      &shared.webpush, out->dispatcher.get());
  out->dispatcher->Register("WEBPUSH", out->webpush.get());
  return absl::OkStatus();
}

}  // namespace pimap
