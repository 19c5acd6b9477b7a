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
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view option) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", option, " ", path));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<OutbandShared> PrepareOutband(const Options& options) {
  OutbandShared shared;
  shared.dispatcher.min_interval_ms =
      absl::ToInt64Milliseconds(options.outband_min_interval);
  shared.dispatcher.max_queue =
      static_cast<size_t>(options.outband_queue_limit);
  shared.dispatcher.full_payload = options.outband_full_payload;
  shared.webpush.max_age_ms =
      absl::ToInt64Milliseconds(options.outband_max_age);
  shared.webpush.request_timeout_ms =
      absl::ToInt64Milliseconds(options.outband_timeout);
  shared.webpush.allow_private = options.outband_allow_private;
  shared.udp = options.outband_udp;
  if (!options.emn_webhook.empty()) {
    absl::StatusOr<emn::WebhookUrl> url =
        emn::ParseWebhookUrl(options.emn_webhook);
    if (!url.ok()) return url.status();
    shared.emn = true;
    shared.emn_config.retry = shared.webpush;
    shared.emn_config.webhook = *std::move(url);
    shared.emn_config.text = options.emn_text;
    if (!options.emn_webhook_secret_file.empty()) {
      absl::StatusOr<std::string> secret = ReadFile(
          options.emn_webhook_secret_file, "--emn-webhook-secret-file");
      if (!secret.ok()) return secret.status();
      while (!secret->empty() &&
             (secret->back() == '\n' || secret->back() == '\r')) {
        secret->pop_back();
      }
      if (secret->empty()) {
        return absl::InvalidArgumentError(
            "--emn-webhook-secret-file: the file is empty");
      }
      shared.emn_config.secret = *std::move(secret);
    }
  }
  const bool https_emn = shared.emn && shared.emn_config.webhook.tls;
  if (options.vapid_key.empty() && !https_emn) return shared;
  absl::StatusOr<std::shared_ptr<tls::TlsContext>> tls =
      tls::TlsContext::CreateClient(options.outband_ca_file,
                                    /*also_system=*/true, {"http/1.1"});
  if (!tls.ok()) return tls.status();
  shared.tls = *std::move(tls);
  if (options.vapid_key.empty()) return shared;
  absl::StatusOr<std::string> pem = ReadFile(options.vapid_key, "--vapid-key");
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::unique_ptr<webpush::VapidSigner>> signer =
      webpush::VapidSigner::FromPem(*pem, options.vapid_subject);
  if (!signer.ok()) return signer.status();
  shared.webpush_enabled = true;
  shared.vapid_pem = *std::move(pem);
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
  if (!shared.webpush_enabled && !shared.udp && !shared.emn)
    return absl::OkStatus();
  out->resolver = std::make_unique<engine::Resolver>(&shard);
  shard.services().Register(out->resolver.get());
  if (shared.udp) {
    out->udp = std::make_unique<udp::UdpNotifier>(&shard, out->resolver.get(),
                                                  shared.webpush.allow_private);
    out->dispatcher->Register("UDP", out->udp.get());
  }
  if (shared.emn) {
    out->emn = std::make_unique<emn::EmnNotifier>(
        &shard, shared.tls.get(), out->resolver.get(), &shared.emn_config);
    out->dispatcher->Register("SMS", out->emn.get());
    out->dispatcher->Register("WAP_PUSH", out->emn.get());
  }
  if (!shared.webpush_enabled) return absl::OkStatus();
  out->dispatcher->set_vapid_public_key(shared.vapid_public_key);
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
