// pimapd's reload on SIGHUP: reads the command line and the config file again,
// builds everything the shards run with anew (runtime_config.h), and hands it
// to every shard, which installs it on its own thread; connections stay open.
// What cannot change without a restart (listeners, shard count, event
// sources, ...) keeps its running value and is named in the log. The rule:
// build everything new first, then either hand all of it over or keep all
// that runs (and say why in one log line).
#ifndef PIMAP_TOOLS_PIMAPD_RELOADER_H_
#define PIMAP_TOOLS_PIMAPD_RELOADER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/pimapd/options.h"
#include "tools/pimapd/runtime_config.h"

namespace pimap::engine {
class Shard;
class ShardSet;
}  // namespace pimap::engine

namespace pimap {

class Reloader {
 public:
  // Runs on each shard's thread with the new settings, to install them.
  using Apply = std::function<void(engine::Shard&, const RuntimeConfig&)>;

  // `argc`/`argv`: pimapd's command line (kept by the caller for the
  // process's life); `running`: the options in force. `shards` must outlive
  // this.
  Reloader(int argc, const char* const* argv, Options running,
           engine::ShardSet* shards, Apply apply)
      : argc_(argc),
        argv_(argv),
        running_(std::move(running)),
        shards_(shards),
        apply_(std::move(apply)) {}

  // Main thread, on SIGHUP. TLS material counted in
  // pimap_tls_reloads_total{result}. An error (the configuration's, the TLS
  // files', the store's address): nothing changed, and it is logged.
  absl::Status Reload();
  const Options& running() const { return running_; }

 private:
  int argc_;
  const char* const* argv_;
  Options running_;
  engine::ShardSet* shards_;
  Apply apply_;
};

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_RELOADER_H_
