// The SIGHUP reload (see reloader.h).
#include "tools/pimapd/reloader.h"

#include <chrono>
#include <thread>

#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"

namespace pimap {

absl::StatusOr<ServerTls> BuildServerTls(const Options& options) {
  ServerTls made;
  if (options.tls_cert.empty()) return made;
  std::vector<tls::CertificateFiles> files = {
      {options.tls_cert, options.tls_key}};
  for (const Options::CertKeyFiles& sni : options.tls_sni_certs) {
    files.push_back({sni.cert, sni.key});
  }
  // ALPN "imap" (RFC 7301's registry) on STARTTLS and the implicit-TLS port.
  auto imap = tls::TlsContext::CreateServer(files, {"imap"});
  if (!imap.ok()) return imap.status();
  made.imap = *std::move(imap);
  if (options.https_listen) {
    auto https = tls::TlsContext::CreateServer(files, {"h2", "http/1.1"});
    if (!https.ok()) return https.status();
    made.https = *std::move(https);
  }
  return made;
}

namespace {
// Runs `task` on `shard`, waiting out a full inbox for a bounded time (the
// shard drains it every loop turn, so only a stuck shard makes this fail).
template <typename F>
bool PostPatiently(engine::Shard& shard, const F& task) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // A copy each time: a refused Post() still consumes its argument.
    if (shard.Post(engine::Shard::Task(task))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}
}  // namespace

void Reloader::Reload() {
  if (options_->tls_cert.empty()) {
    PIMAP_LOG(INFO) << "SIGHUP: no TLS certificates to reload";
    return;
  }
  absl::StatusOr<ServerTls> made = BuildServerTls(*options_);
  if (!made.ok()) {
    // Paths and BoringSSL's reason only: never key material.
    PIMAP_LOG(WARNING) << "SIGHUP: TLS reload failed, the certificates in use "
                          "stay: "
                       << made.status().message();
    PostPatiently(shards_->shard(0), [](engine::Shard& shard) {
      CounterAdd(shard.counters().tls_reloads_failed);
    });
    return;
  }
  // Each shard gets the new contexts by message and installs them on its own
  // thread: the accept path reads its server's pointer without a lock or an
  // atomic, and no shard can see a half-made swap. Handshakes already begun
  // and open connections keep the old SSL_CTX through their SSL's references;
  // the old TlsContext goes when the last shard lets go of it.
  int missed = 0;
  for (int i = 0; i < shards_->count(); ++i) {
    const bool posted = PostPatiently(
        shards_->shard(i), [apply = apply_, tls = *made](engine::Shard& shard) {
          apply(shard, tls);
          if (shard.id() == 0) CounterAdd(shard.counters().tls_reloads_ok);
        });
    if (!posted) ++missed;
  }
  if (missed > 0) {
    PIMAP_LOG(WARNING) << "SIGHUP: " << missed
                       << " shard(s) did not take the new TLS certificates "
                          "(inbox full); they keep the old ones";
    return;
  }
  PIMAP_LOG(INFO) << "SIGHUP: TLS certificates reloaded ("
                  << 1 + options_->tls_sni_certs.size() << " certificates)";
}

}  // namespace pimap
