// pimapd's reload on SIGHUP: re-reads what may change without a restart and
// hands it to every shard. Today that is the device listeners' TLS
// certificates; issue 17 grows it to the whole configuration, with the same
// rule: build everything new first, then either hand all of it over or keep
// all that runs (and say why in one log line).
#ifndef PIMAP_TOOLS_PIMAPD_RELOADER_H_
#define PIMAP_TOOLS_PIMAPD_RELOADER_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "bindings/tls/tls_context.h"
#include "tools/pimapd/options.h"

namespace pimap::engine {
class Shard;
class ShardSet;
}  // namespace pimap::engine

namespace pimap {

// The server TLS contexts of the device listeners; null where not needed.
struct ServerTls {
  std::shared_ptr<tls::TlsContext> imap;   // STARTTLS and IMAPS: ALPN "imap"
  std::shared_ptr<tls::TlsContext> https;  // ALPN "h2", "http/1.1"
};

// Reads --tls-cert/--tls-key and every --tls-sni-cert into new contexts: at
// start-up and at each reload. The error names the file at fault.
absl::StatusOr<ServerTls> BuildServerTls(const Options& options);

class Reloader {
 public:
  // Runs on each shard's thread with the new contexts, to give them to the
  // shard's servers for the handshakes that follow.
  using ApplyTls = std::function<void(engine::Shard&, const ServerTls&)>;

  // `options` and `shards` must outlive this.
  Reloader(const Options* options, engine::ShardSet* shards, ApplyTls apply)
      : options_(options), shards_(shards), apply_(std::move(apply)) {}

  // Main thread, on SIGHUP. Counted in pimap_tls_reloads_total{result}.
  void Reload();

 private:
  const Options* options_;
  engine::ShardSet* shards_;
  ApplyTls apply_;
};

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_RELOADER_H_
