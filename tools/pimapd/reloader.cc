// The SIGHUP reload (see reloader.h).
#include "tools/pimapd/reloader.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"

namespace pimap {

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

absl::Status Reloader::Reload() {
  absl::StatusOr<CommandLine> parsed = ParseCommandLine(argc_, argv_);
  if (!parsed.ok()) {
    PIMAP_LOG(WARNING) << "SIGHUP: the configuration has an error, nothing "
                          "changes: "
                       << parsed.status().message();
    return parsed.status();
  }
  ReloadPlan plan = PlanReload(running_, parsed->options);
  absl::StatusOr<ServerTls> tls = BuildServerTls(plan.options);
  if (!tls.ok()) {
    // Paths and BoringSSL's reason only: never key material.
    PIMAP_LOG(WARNING) << "SIGHUP: TLS reload failed, the certificates in use "
                          "stay (and nothing else changes): "
                       << tls.status().message();
    PostPatiently(shards_->shard(0), [](engine::Shard& shard) {
      CounterAdd(shard.counters().tls_reloads_failed);
    });
    return tls.status();
  }
  absl::StatusOr<RuntimeConfig> made = BuildRuntimeConfig(plan.options, *tls);
  if (!made.ok()) {
    PIMAP_LOG(WARNING) << "SIGHUP: reload failed, nothing changes: "
                       << made.status().message();
    return made.status();
  }
  SetLogLevel(plan.options.log_level);
  SetLogFormat(plan.options.log_format);
  // Each shard gets the new settings by message and installs them on its own
  // thread: its servers and sessions read them without a lock or an atomic,
  // and no shard can see a half-made swap. Handshakes already begun and open
  // connections keep the old SSL_CTX through their SSL's references; the old
  // TlsContext goes when the last shard lets go of it.
  auto shared = std::make_shared<const RuntimeConfig>(*std::move(made));
  const bool has_tls = !plan.options.tls_cert.empty();
  int missed = 0;
  for (int i = 0; i < shards_->count(); ++i) {
    const bool posted =
        PostPatiently(shards_->shard(i),
                      [apply = apply_, shared, has_tls](engine::Shard& shard) {
                        apply(shard, *shared);
                        if (has_tls && shard.id() == 0) {
                          CounterAdd(shard.counters().tls_reloads_ok);
                        }
                      });
    if (!posted) ++missed;
  }
  running_ = std::move(plan.options);
  if (missed > 0) {
    PIMAP_LOG(WARNING) << "SIGHUP: " << missed
                       << " shard(s) did not take the new settings (inbox "
                          "full); they keep the old ones";
  }
  std::string what =
      plan.applied.empty()
          ? std::string("no option changed")
          : absl::StrCat("applied: ", absl::StrJoin(plan.applied, ", "));
  if (!plan.need_restart.empty()) {
    absl::StrAppend(&what, "; changed but need a restart (not applied): ",
                    absl::StrJoin(plan.need_restart, ", "));
  }
  PIMAP_LOG(INFO) << "SIGHUP: configuration reloaded (" << what << ")"
                  << (has_tls ? absl::StrCat("; TLS certificates reloaded (",
                                             1 + running_.tls_sni_certs.size(),
                                             " certificates)")
                              : std::string());
  return absl::OkStatus();
}

}  // namespace pimap
