// pimap-bench: a device-fleet load generator on pimap's io_uring engine.
//
// For each target (the gateway, then with --compare direct the store itself) one
// "phase": ramp N devices up to IDLE (or relay-ready), sample memory, run the
// scenario, tear down, compute. Results go to stdout (summary) and --json FILE.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "core/base/log.h"
#include "core/engine/listener.h"
#include "core/engine/shard_set.h"
#include "bench/loadgen/fleet.h"
#include "bench/loadgen/lmtp.h"
#include "bench/loadgen/options.h"
#include "bench/loadgen/probes.h"
#include "bench/loadgen/resume.h"

namespace pimap::bench {
namespace {

constexpr int kExitErrors = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLimit = 3;
[[maybe_unused]] constexpr int kExitNotImplemented = 4;  // no unimplemented option left

void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

bool g_tty = false;

void Progress(const Options& o, const std::string& line, bool final_line = false) {
  if (o.quiet) return;
  if (g_tty) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

struct Totals {
  int64_t launched = 0, connected = 0, ready = 0, setup_failed = 0, lost = 0, notified = 0,
          relay_done = 0, relay_failed = 0, relay_busy = 0, resumed = 0, resume_failed = 0,
          resume_finished = 0;
};

Totals Sum(const std::vector<std::unique_ptr<Fleet>>& fleets) {
  Totals t;
  for (auto& f : fleets) {
    if (!f) continue;
    FleetCounters& c = f->counters();
    t.launched += c.launched.load();
    t.connected += c.connected.load();
    t.ready += c.ready.load();
    t.setup_failed += c.setup_failed.load();
    t.lost += c.lost.load();
    t.notified += c.notified.load();
    t.relay_done += c.relay_done.load();
    t.relay_failed += c.relay_failed.load();
    t.relay_busy += c.relay_busy.load();
    t.resumed += c.resumed.load();
    t.resume_failed += c.resume_failed.load();
    t.resume_finished += c.resume_finished.load();
  }
  return t;
}

// pimapd's store link pool, auth cache and heap (see PoolJson).
constexpr const char* kPoolGauges[] = {
    "pimap_store_links_open",   "pimap_store_links_busy",  "pimap_store_links_idle",
    "pimap_store_link_waiters", "pimap_heap_in_use_bytes", "pimap_heap_free_bytes"};
// Counter -> its key in the JSON's deltas.
constexpr std::pair<const char*, const char*> kPoolCounters[] = {
    {"pimap_store_link_borrows_total", "borrows"},
    {"pimap_store_link_opens_total", "opens"},
    {"pimap_store_link_evictions_total", "evictions"},
    {"pimap_store_link_wait_timeouts_total", "wait_timeouts"},
    {"pimap_auth_cache_hits_total", "auth_cache_hits"},
    {"pimap_auth_cache_misses_total", "auth_cache_misses"},
    {"pimap_store_link_wait_seconds_count", "waits"},
};

struct Snapshot {
  ProcSample gateway, store;
  KernelSample kernel;
  std::map<std::string, double> metrics;
  int64_t at_us = 0;
};

Snapshot TakeSnapshot(const Options& o, const PhaseConfig& cfg, bool with_metrics) {
  Snapshot s;
  s.at_us = NowUs();
  if (!cfg.gateway_pids.empty() && cfg.gateway_pids[0] > 0) {
    s.gateway = cfg.gateway_tree ? SampleTree(cfg.gateway_pids) : SampleProcess(cfg.gateway_pids[0]);
  }
  s.store = SampleTree(o.store_pids);
  s.kernel = SampleKernel();
  if (with_metrics) s.metrics = FetchMetrics(o.metrics);
  return s;
}

Json SnapshotJson(const Snapshot& s) {
  Json j = Json::Object();
  if (s.gateway.ok) {
    j["gateway_rss_bytes"] = s.gateway.rss_bytes;
    j["gateway_cpu_s"] = s.gateway.cpu_s;
  }
  if (s.store.ok) {
    j["store_rss_bytes"] = s.store.rss_bytes;
    j["store_pss_bytes"] = s.store.pss_bytes;
    j["store_processes"] = s.store.processes;
    j["store_cpu_s"] = s.store.cpu_s;
  }
  j["tcp_inuse"] = s.kernel.tcp_inuse;
  j["tcp_mem_bytes"] = s.kernel.tcp_mem_pages * 4096;
  j["slab_bytes"] = s.kernel.slab_bytes;
  j["mem_available_bytes"] = s.kernel.mem_available;
  for (const char* m : {"pimap_device_connections", "pimap_upstream_connections",
                        "pimap_users_logged_in", "pimap_logins_total", "pimap_sessions",
                        "pimap_watch_connections", "pimap_session_resumes_total",
                        "pimap_resyncs_total", "pimap_events_pushed_total"}) {
    auto it = s.metrics.find(m);
    if (it != s.metrics.end()) j[m] = it->second;
  }
  for (const char* m : kPoolGauges) {
    auto it = s.metrics.find(m);
    if (it != s.metrics.end()) j[m] = it->second;
  }
  for (const auto& [m, key] : kPoolCounters) {
    auto it = s.metrics.find(m);
    if (it != s.metrics.end()) j[m] = it->second;
  }
  return j;
}

double MetricOr(const std::map<std::string, double>& m, const std::string& name, double dflt) {
  auto it = m.find(name);
  return it == m.end() ? dflt : it->second;
}

// The store link pool, the auth cache and the heap as pimapd's /metrics reports
// them: gauges (summed over shards) at `sample`, counters and the wait
// histogram as deltas from `before` (the ramp's start) to `end` (the end of the
// scenario). Empty when pimapd exports none of them (an older pimapd).
Json PoolJson(const Snapshot& before, const Snapshot& sample,
              const std::map<std::string, double>& end) {
  Json j = Json::Object();
  if (!sample.metrics.count("pimap_store_links_open") &&
      !sample.metrics.count("pimap_auth_cache_hits_total") &&
      !sample.metrics.count("pimap_heap_in_use_bytes")) {
    return j;
  }
  Json at = Json::Object();
  for (const char* m : kPoolGauges) {
    auto it = sample.metrics.find(m);
    if (it != sample.metrics.end()) at[absl::StrCat(absl::StripPrefix(m, "pimap_"))] = it->second;
  }
  j["at_sample"] = at;
  auto deltas = [&](const std::map<std::string, double>& to) {
    Json d = Json::Object();
    for (const auto& [m, key] : kPoolCounters) {
      auto b = before.metrics.find(m);
      auto e = to.find(m);
      if (b != before.metrics.end() && e != to.end()) d[key] = e->second - b->second;
    }
    return d;
  };
  j["ramp"] = deltas(sample.metrics);  // to the sample
  Json run = deltas(end);              // to the end of the scenario
  const double hits = MetricOr(end, "pimap_auth_cache_hits_total", 0) -
                      MetricOr(before.metrics, "pimap_auth_cache_hits_total", 0);
  const double misses = MetricOr(end, "pimap_auth_cache_misses_total", 0) -
                        MetricOr(before.metrics, "pimap_auth_cache_misses_total", 0);
  if (hits + misses > 0) run["auth_cache_hit_ratio"] = hits / (hits + misses);
  j["run"] = run;
  Json wait = HistogramDelta(before.metrics, end, "pimap_store_link_wait_seconds");
  if (wait.Find("count") != nullptr) j["wait"] = wait;
  return j;
}

struct PhaseResult {
  Json json = Json::Object();
  int64_t errors = 0;
};

// The store's memory before the first phase: its imap processes stay around after a
// phase's sessions end, so each phase's store cost is measured against this.
ProcSample g_store_initial;

PhaseResult RunPhase(const Options& o, const PhaseConfig& cfg, int shards,
                     const std::vector<int>& push_recipients,
                     const std::vector<PlannedEvent>& resume_plan) {
  PhaseResult result;
  Json& j = result.json;
  const bool is_gateway = cfg.name == "pimap";
  const bool with_metrics = is_gateway && o.metrics.set();
  const int users = o.effective_users();
  j["name"] = cfg.name;
  j["target"] = cfg.target_text;
  j["binding"] = cfg.binding;
  j["login_form"] = cfg.device_logins ? "user#devN" : "user";
  j["bench_shards"] = shards;

  std::map<std::string, int64_t> errors;
  std::map<std::string, std::string> examples;
  auto add_error = [&](const std::string& kind, int64_t n, const std::string& ex) {
    errors[kind] += n;
    if (!examples.count(kind)) examples[kind] = ex;
  };

  // ---- before
  Snapshot before = TakeSnapshot(o, cfg, with_metrics);
  j["before"] = SnapshotJson(before);
  if (!g_store_initial.ok) g_store_initial = before.store;
  const ProcSample store_base = g_store_initial.ok ? g_store_initial : before.store;

  // ---- shards and fleets
  engine::RingOptions ring;
  const int per_shard = (o.devices + shards - 1) / shards;
  // HTTP: a device opens a second connection for its DONE while the long poll
  // holds the first.
  const int conns_per_shard = cfg.http ? 2 * per_shard : per_shard;
  ring.file_table_size = static_cast<unsigned>(
      std::min(19400, conns_per_shard + conns_per_shard / 20 + 64));
  ring.buffer_count = 256;
  ring.buffer_size = 16 * 1024;
  ring.sq_entries = 4096;
  FleetShared shared(users);
  std::vector<std::unique_ptr<Fleet>> fleets(static_cast<size_t>(shards));
  const int inflight_per_shard = std::max(1, o.inflight / shards);
  const double rate_per_shard = o.connect_rate / shards;
  auto set = std::make_unique<engine::ShardSet>(shards, ring);
  absl::Status started = set->Start([&](engine::Shard& shard) -> absl::Status {
    if (shard.ring().file_table_size() <
        static_cast<unsigned>(conns_per_shard)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "io_uring file table holds ", shard.ring().file_table_size(),
          " descriptors but ", conns_per_shard,
          " connections per shard are needed: use more --shards"));
    }
    std::vector<int> mine;
    for (int i = shard.id(); i < o.devices; i += shards) mine.push_back(i);
    auto fleet = std::make_unique<Fleet>(&shard, o, cfg, &shared, std::move(mine),
                                         inflight_per_shard, rate_per_shard);
    Fleet* raw = fleet.get();
    fleets[static_cast<size_t>(shard.id())] = std::move(fleet);
    shard.AddStopHook([raw] { raw->CloseAll(); });
    return absl::OkStatus();
  });
  if (!started.ok()) {
    add_error(std::string(started.message()), 1, std::string(started.message()));
    Json e = Json::Object();
    for (auto& [k, v] : errors) e[k] = v;
    j["errors"] = e;
    result.errors = 1;
    return result;
  }
  for (int i = 0; i < shards; ++i) {
    Fleet* f = fleets[static_cast<size_t>(i)].get();
    set->shard(i).Post([f](engine::Shard&) { f->StartRamp(); });
  }

  // ---- ramp-up
  const int64_t ramp_start = NowUs();
  const int64_t ramp_deadline = ramp_start + static_cast<int64_t>(o.setup_timeout_s * 1e6);
  int64_t last_print = 0;
  Totals t;
  for (;;) {
    SleepMs(50);
    t = Sum(fleets);
    const int64_t now = NowUs();
    const bool done = t.ready + t.setup_failed >= o.devices;
    if (done || now >= ramp_deadline || now - last_print >= 1000000) {
      last_print = now;
      const double secs = static_cast<double>(now - ramp_start) / 1e6;
      Progress(o, absl::StrCat("[", cfg.name, "] ramp ", t.ready, "/", o.devices, " ready, ",
                               t.setup_failed, " failed, ", t.launched - t.ready - t.setup_failed,
                               " in set-up, ", static_cast<int64_t>(t.ready / std::max(secs, 1e-3)),
                               " dev/s, ", absl::StrFormat("%.1f", secs), " s"),
               done || now >= ramp_deadline);
    }
    if (done || now >= ramp_deadline) break;
  }
  const double ramp_s = static_cast<double>(NowUs() - ramp_start) / 1e6;
  Json ramp = Json::Object();
  ramp["seconds"] = ramp_s;
  ramp["ready"] = t.ready;
  ramp["failed"] = t.setup_failed;
  ramp["devices_per_s"] = t.ready / std::max(ramp_s, 1e-3);
  const int64_t incomplete = o.devices - t.ready - t.setup_failed;
  if (incomplete > 0) {
    add_error("set-up not finished before --setup-timeout", incomplete,
              absl::StrCat(incomplete, " devices still in connect/login/select after ",
                           o.setup_timeout_s, " s"));
  }
  j["ramp"] = ramp;

  // ---- settle and sample the loaded state
  const int64_t ready = t.ready;
  SleepMs(static_cast<int64_t>(o.settle_s * 1000));
  Snapshot loaded = TakeSnapshot(o, cfg, with_metrics);
  j["loaded"] = SnapshotJson(loaded);
  {
    Json mem = Json::Object();
    const double n = static_cast<double>(std::max<int64_t>(ready, 1));
    mem["devices"] = ready;
    if (before.gateway.ok && loaded.gateway.ok)
      mem["gateway_rss_per_device_bytes"] =
          static_cast<double>(loaded.gateway.rss_bytes - before.gateway.rss_bytes) / n;
    if (with_metrics) {
      // Live allocations only: RSS also keeps freed heap glibc has not returned.
      auto a = before.metrics.find("pimap_heap_in_use_bytes");
      auto b = loaded.metrics.find("pimap_heap_in_use_bytes");
      if (a != before.metrics.end() && b != loaded.metrics.end())
        mem["gateway_heap_in_use_per_device_bytes"] = (b->second - a->second) / n;
    }
    if (store_base.ok && loaded.store.ok) {
      // Against the store's state before the first phase (see g_store_initial).
      mem["store_rss_per_device_bytes"] =
          static_cast<double>(loaded.store.rss_bytes - store_base.rss_bytes) / n;
      mem["store_pss_per_device_bytes"] =
          static_cast<double>(loaded.store.pss_bytes - store_base.pss_bytes) / n;
      mem["store_processes"] = loaded.store.processes;
      mem["store_processes_added"] = loaded.store.processes - store_base.processes;
    }
    mem["kernel_slab_per_device_bytes"] =
        static_cast<double>(loaded.kernel.slab_bytes - before.kernel.slab_bytes) / n;
    mem["kernel_tcp_mem_per_device_bytes"] =
        static_cast<double>((loaded.kernel.tcp_mem_pages - before.kernel.tcp_mem_pages) * 4096) / n;
    mem["tcp_sockets_per_device"] =
        static_cast<double>(loaded.kernel.tcp_inuse - before.kernel.tcp_inuse) / n;
    int active_users = 0;
    for (int u = 0; u < users; ++u) active_users += shared.ready_per_user[u].load() > 0;
    mem["active_users"] = active_users;
    mem["devices_per_active_user"] = static_cast<double>(ready) / std::max(active_users, 1);
    if (store_base.ok && loaded.store.ok)
      mem["store_pss_per_active_user_bytes"] =
          static_cast<double>(loaded.store.pss_bytes - store_base.pss_bytes) /
          std::max(active_users, 1);
    if (with_metrics) {
      auto up = loaded.metrics.find("pimap_upstream_connections");
      if (up != loaded.metrics.end()) {
        mem["upstream_connections"] = up->second;
        mem["upstream_per_device"] = up->second / n;
        mem["upstream_per_active_user"] = up->second / std::max(active_users, 1);
        // pimap_upstream_connections counts the users' watch connections too.
        auto w = loaded.metrics.find("pimap_watch_connections");
        if (w != loaded.metrics.end()) {
          mem["watch_connections"] = w->second;
          mem["device_upstream_per_active_user"] =
              (up->second - w->second) / std::max(active_users, 1);
        }
      }
    }
    j["memory"] = mem;
  }

  // ---- the scenario
  LmtpResult lmtp;
  int64_t push_start_us = 0, push_end_us = 0;
  Snapshot cpu_before, cpu_after;
  if (o.scenario == "idle") {
    const int64_t hold_end = NowUs() + static_cast<int64_t>(o.duration_s * 1e6);
    while (NowUs() < hold_end) {
      SleepMs(std::min<int64_t>(1000, std::max<int64_t>(1, (hold_end - NowUs()) / 1000)));
      if (NowUs() >= hold_end) break;
      t = Sum(fleets);
      Progress(o, absl::StrCat("[", cfg.name, "] idle ", t.ready - t.lost, " devices holding, ",
                               t.lost, " lost, ",
                               absl::StrFormat("%.0f", static_cast<double>(hold_end - NowUs()) / 1e6),
                               " s left"));
    }
    Progress(o, absl::StrCat("[", cfg.name, "] idle hold done"), true);
    Snapshot end = TakeSnapshot(o, cfg, with_metrics);
    j["after_hold"] = SnapshotJson(end);
    Json idle = Json::Object();
    idle["hold_s"] = o.duration_s;
    idle["lost_during_hold"] = Sum(fleets).lost;
    if (end.gateway.ok && loaded.gateway.ok)
      idle["gateway_cpu_s_during_hold"] = end.gateway.cpu_s - loaded.gateway.cpu_s;
    if (end.store.ok && loaded.store.ok)
      idle["store_cpu_s_during_hold"] = end.store.cpu_s - loaded.store.cpu_s;
    j["idle"] = idle;
  } else if (o.scenario == "push") {
    cpu_before = TakeSnapshot(o, cfg, false);
    push_start_us = NowUs();
    std::atomic<int64_t> expected{0};
    std::atomic<bool> lmtp_done{false};
    std::thread progress([&] {
      int64_t last = 0;
      while (!lmtp_done.load()) {
        SleepMs(100);
        if (NowUs() - last < 1000000) continue;
        last = NowUs();
        Totals tt = Sum(fleets);
        Progress(o, absl::StrCat("[", cfg.name, "] push: ", tt.notified, "/", expected.load(),
                                 " notifications received"));
      }
    });
    lmtp = DeliverMessages(o.lmtp, o.lmtp_conns, users, o.user_prefix, push_recipients, o.rate,
                           std::max(o.duration_s, 1.0) + o.messages / std::max(o.rate, 1.0) + 60,
                           [&](int u) { expected += shared.ready_per_user[u].load(); });
    const int64_t drain_deadline = NowUs() + static_cast<int64_t>(o.drain_s * 1e6);
    for (;;) {
      Totals tt = Sum(fleets);
      if (tt.notified >= expected.load() || NowUs() >= drain_deadline) break;
      SleepMs(20);
    }
    lmtp_done = true;
    progress.join();
    push_end_us = NowUs();
    cpu_after = TakeSnapshot(o, cfg, false);
    Totals tt = Sum(fleets);
    Progress(o, absl::StrCat("[", cfg.name, "] push: ", tt.notified, "/", expected.load(),
                             " notifications received"), true);
    for (auto& e : lmtp.errors) add_error("LMTP delivery failed", 1, e);
  } else if (o.scenario == "relay") {
    cpu_before = TakeSnapshot(o, cfg, false);
    const double think_ms = o.rate > 0 ? 1000.0 * static_cast<double>(ready) / o.rate : 0;
    for (int i = 0; i < shards; ++i) {
      Fleet* f = fleets[static_cast<size_t>(i)].get();
      set->shard(i).Post([f, think_ms](engine::Shard&) { f->StartRelay(think_ms); });
    }
    const int64_t start = NowUs();
    const int64_t end = start + static_cast<int64_t>(o.duration_s * 1e6);
    while (NowUs() < end) {
      SleepMs(std::min<int64_t>(1000, std::max<int64_t>(1, (end - NowUs()) / 1000)));
      Totals tt = Sum(fleets);
      const double secs = static_cast<double>(NowUs() - start) / 1e6;
      Progress(o, absl::StrCat("[", cfg.name, "] relay: ", tt.relay_done, " commands, ",
                               static_cast<int64_t>(tt.relay_done / std::max(secs, 1e-3)), "/s, ",
                               tt.relay_failed, " failed"));
    }
    Totals at_end = Sum(fleets);
    const double secs = static_cast<double>(NowUs() - start) / 1e6;
    for (int i = 0; i < shards; ++i) {
      Fleet* f = fleets[static_cast<size_t>(i)].get();
      set->shard(i).Post([f](engine::Shard&) { f->StopRelay(); });
    }
    const int64_t wait_end = NowUs() + 10000000;
    while (Sum(fleets).relay_busy > 0 && NowUs() < wait_end) SleepMs(10);
    cpu_after = TakeSnapshot(o, cfg, false);
    Progress(o, absl::StrCat("[", cfg.name, "] relay done: ", at_end.relay_done, " commands in ",
                             absl::StrFormat("%.1f", secs), " s"), true);
    Json relay = Json::Object();
    relay["seconds"] = secs;
    relay["commands"] = at_end.relay_done;
    relay["commands_per_s"] = static_cast<double>(at_end.relay_done) / std::max(secs, 1e-3);
    relay["think_ms"] = think_ms;
    if (cpu_before.gateway.ok && cpu_after.gateway.ok && at_end.relay_done > 0)
      relay["gateway_cpu_s_per_1000_commands"] =
          (cpu_after.gateway.cpu_s - cpu_before.gateway.cpu_s) * 1000.0 /
          static_cast<double>(Sum(fleets).relay_done);
    if (cpu_before.store.ok && cpu_after.store.ok && at_end.relay_done > 0)
      relay["store_cpu_s_per_1000_commands"] =
          (cpu_after.store.cpu_s - cpu_before.store.cpu_s) * 1000.0 /
          static_cast<double>(Sum(fleets).relay_done);
    j["relay"] = relay;
  }

  StoreEventsResult store_events;
  Json resume = Json::Object();
  int64_t resume_expected = 0;
  if (o.scenario == "resume") {
    // 1. Devices go away without LOGOUT (socket closed).
    resume_expected = Sum(fleets).ready - Sum(fleets).lost;
    for (int i = 0; i < shards; ++i) {
      Fleet* f = fleets[static_cast<size_t>(i)].get();
      set->shard(i).Post([f](engine::Shard&) { f->ParkAll(); });
    }
    SleepMs(200);
    if (with_metrics) {
      const int64_t until = NowUs() + 15000000;
      while (NowUs() < until) {
        auto m = FetchMetrics(o.metrics);
        auto it = m.find("pimap_device_connections");
        if (it == m.end() || it->second == 0) break;
        SleepMs(100);
      }
    }
    SleepMs(500);
    Snapshot parked = TakeSnapshot(o, cfg, with_metrics);
    j["parked"] = SnapshotJson(parked);
    Progress(o, absl::StrCat("[", cfg.name, "] ", resume_expected,
                             " devices disconnected; making ", resume_plan.size(),
                             " store events"), true);
    // 2. The events they miss, straight in the store; then the store's state per user.
    store_events = RunStoreEvents(o, users, resume_plan, o.seed, 4);
    for (auto& e : store_events.errors) add_error("store events failed", 1, e);
    // 3. Let the gateway's watch see them (Dovecot notifies IDLE after ~0.5-1 s).
    SleepMs(static_cast<int64_t>(o.resume_wait_s * 1000));
    cpu_before = TakeSnapshot(o, cfg, with_metrics);
    const int64_t start = NowUs();
    for (int i = 0; i < shards; ++i) {
      Fleet* f = fleets[static_cast<size_t>(i)].get();
      set->shard(i).Post([f](engine::Shard&) { f->StartResume(); });
    }
    const int64_t deadline = start + static_cast<int64_t>(o.setup_timeout_s * 1e6);
    int64_t last = 0;
    for (;;) {
      SleepMs(20);
      Totals tt = Sum(fleets);
      const bool done = tt.resumed + tt.resume_failed >= resume_expected;
      if (done || NowUs() >= deadline || NowUs() - last >= 1000000) {
        last = NowUs();
        Progress(o, absl::StrCat("[", cfg.name, "] resume ", tt.resumed, "/", resume_expected,
                                 " synchronised, ", tt.resume_failed, " failed"),
                 done || NowUs() >= deadline);
      }
      if (done || NowUs() >= deadline) break;
    }
    const int64_t fin_deadline = NowUs() + 10000000;
    while (Sum(fleets).resume_finished < resume_expected && NowUs() < fin_deadline) SleepMs(20);
    cpu_after = TakeSnapshot(o, cfg, with_metrics);
    Totals tt = Sum(fleets);
    if (tt.resumed + tt.resume_failed < resume_expected) {
      add_error("resume not finished before --setup-timeout",
                resume_expected - tt.resumed - tt.resume_failed,
                "devices still reconnecting at the deadline");
    }
    Json pm = Json::Object();
    for (const char* m : {"pimap_sessions", "pimap_watch_connections",
                          "pimap_upstream_connections", "pimap_device_connections"}) {
      auto it = parked.metrics.find(m);
      if (it != parked.metrics.end()) pm[m] = it->second;
    }
    if (store_base.ok && parked.store.ok) {
      pm["store_pss_bytes_delta"] =
          static_cast<double>(parked.store.pss_bytes - store_base.pss_bytes);
      pm["store_pss_per_user_bytes"] =
          static_cast<double>(parked.store.pss_bytes - store_base.pss_bytes) / users;
    }
    pm["users"] = users;
    if (with_metrics) {
      auto up = parked.metrics.find("pimap_upstream_connections");
      if (up != parked.metrics.end()) pm["store_connections_per_user"] = up->second / users;
    }
    resume["while_disconnected"] = pm;
    if (with_metrics) {
      for (const char* m : {"pimap_session_resumes_total", "pimap_resyncs_total"}) {
        auto a = cpu_before.metrics.find(m), b = cpu_after.metrics.find(m);
        if (a != cpu_before.metrics.end() && b != cpu_after.metrics.end())
          resume[absl::StrCat(m, "_delta")] = b->second - a->second;
      }
    }
    if (cpu_before.gateway.ok && cpu_after.gateway.ok)
      resume["gateway_cpu_s"] = cpu_after.gateway.cpu_s - cpu_before.gateway.cpu_s;
    if (cpu_before.store.ok && cpu_after.store.ok)
      resume["store_cpu_s"] = cpu_after.store.cpu_s - cpu_before.store.cpu_s;
  }

  // The pool's counters up to here, before the bench's own LOGOUTs.
  if (with_metrics) {
    Json pool = PoolJson(before, loaded, FetchMetrics(o.metrics));
    if (pool.Find("at_sample") != nullptr) j["store_links"] = pool;
  }

  // ---- tear down
  Totals final_totals = Sum(fleets);
  // LOGOUT every live device first: a P-IMAP session outlives a closed connection (and
  // keeps the user's store watch open), which would load the store in the next phase.
  for (int i = 0; i < shards; ++i) {
    Fleet* f = fleets[static_cast<size_t>(i)].get();
    set->shard(i).Post([f](engine::Shard&) { f->LogoutAll(); });
  }
  {
    const int64_t until = NowUs() + 15000000;
    for (;;) {
      int posted = 0;
      int64_t sent = 0, done = 0;
      for (auto& f : fleets) {
        posted += f->counters().logout_posted.load(std::memory_order_acquire);
        sent += f->counters().logout_sent.load();
        done += f->counters().logout_done.load();
      }
      if ((posted == shards && done >= sent) || NowUs() >= until) {
        j["logouts"] = sent;
        j["logouts_unanswered"] = sent - done;
        break;
      }
      SleepMs(20);
    }
  }
  set->StopAndJoin(5000);

  // ---- results (shards are gone: device state is ours now)
  std::vector<int64_t> setup_us, wake_us;
  for (auto& f : fleets) {
    setup_us.insert(setup_us.end(), f->setup_us().begin(), f->setup_us().end());
    wake_us.insert(wake_us.end(), f->wake_us().begin(), f->wake_us().end());
    for (auto& [k, v] : f->errors()) add_error(k, v, f->error_examples()[k]);
  }
  j["setup_latency"] = SummarizeLatency(&setup_us);
  // Every idle device at once at the end of the hold: DONE + UID FETCH 1:* (FLAGS).
  if (!wake_us.empty()) j["wake_latency"] = SummarizeLatency(&wake_us);

  if (o.scenario == "resume") {
    std::vector<int64_t> lat, login_lat;
    int64_t synced = 0, resyncs = 0, mismatched = 0, late = 0, bytes = 0, resync_bytes = 0;
    int64_t n_exists = 0, n_fetch = 0, n_expunge = 0, verified = 0;
    int64_t model_refetches = 0;
    int64_t first_start = 0, last_synced = 0;
    for (auto& f : fleets) {
      for (auto& d : f->devices()) {
        const Device::ResumeStats& rs = d->resume();
        model_refetches += rs.model_refetches;
        if (!rs.parked || !rs.synced) continue;
        ++synced;
        lat.push_back(rs.synced_us);
        login_lat.push_back(rs.login_us);
        if (first_start == 0 || rs.start_us < first_start) first_start = rs.start_us;
        last_synced = std::max(last_synced, rs.start_us + rs.synced_us);
        bytes += rs.bytes;
        late += rs.late_events;
        n_exists += rs.new_signalled;
        n_fetch += rs.fetches;
        n_expunge += rs.expunges;
        if (rs.resync) {
          ++resyncs;
          resync_bytes += rs.resync_fetch_bytes;
        }
        const std::string who = absl::StrCat("device ", d->index(), " (", o.user_prefix,
                                             d->user(), "): ");
        if (cfg.device_logins) {
          if (!rs.session_selected || rs.folder != "INBOX")
            add_error("resume: no * SESSION SELECTED / * FOLDER INBOX", 1,
                      absl::StrCat(who, "folder '", rs.folder, "'"));
        }
        if (!rs.model_error.empty())
          add_error("resume: inconsistent event stream", 1, who + rs.model_error);
        // The device's model after the replayed events must be the store's INBOX.
        if (store_events.truth.size() != static_cast<size_t>(users)) continue;
        const std::vector<ModelMsg>& truth = store_events.truth[static_cast<size_t>(d->user())];
        const std::vector<ModelMsg>& model = d->model();
        std::string diff;
        if (model.size() != truth.size()) {
          diff = absl::StrCat(model.size(), " messages on the device, ", truth.size(),
                              " in the store");
        }
        for (size_t i = 0; diff.empty() && i < model.size(); ++i) {
          const ModelMsg& m = model[i];
          const ModelMsg& t = truth[i];
          if (m.uid != 0 && m.uid != t.uid) {
            diff = absl::StrCat("message ", i + 1, ": UID ", m.uid, " on the device, ", t.uid,
                                " in the store");
          } else if (m.uid == 0 && t.uid <= rs.pre_max_uid) {
            diff = absl::StrCat("message ", i + 1, ": new on the device, but the store has UID ",
                                t.uid, " (known before the disconnect)");
          } else if (m.flags_known && m.flags != t.flags) {
            diff = absl::StrCat("message ", i + 1, " (UID ", t.uid, "): flags (", m.flags,
                                ") on the device, (", t.flags, ") in the store");
          }
        }
        ++verified;
        if (!diff.empty()) {
          ++mismatched;
          add_error("resume: device state differs from the store", 1, who + diff);
        }
      }
    }
    const double secs = static_cast<double>(last_synced - first_start) / 1e6;
    const double n = static_cast<double>(std::max<int64_t>(synced, 1));
    resume["devices"] = resume_expected;
    resume["resumed"] = synced;
    resume["failed"] = resume_expected - synced;
    resume["verified"] = verified;
    resume["mismatched"] = mismatched;
    resume["resyncs"] = resyncs;
    resume["model_refetches"] = model_refetches;
    resume["seconds"] = secs;
    resume["resumes_per_s"] = static_cast<double>(synced) / std::max(secs, 1e-3);
    resume["bytes_per_resume"] = static_cast<double>(bytes) / n;
    if (resyncs > 0)
      resume["resync_fetch_bytes_per_resync"] =
          static_cast<double>(resync_bytes) / static_cast<double>(resyncs);
    Json ev = Json::Object();
    ev["new_messages"] = store_events.new_messages;
    ev["flag_changes"] = store_events.flag_changes;
    ev["expunges"] = store_events.expunges;
    ev["seconds"] = store_events.seconds;
    resume["store_events"] = ev;
    Json seen = Json::Object();
    seen["new_messages_per_resume"] = static_cast<double>(n_exists) / n;
    seen["flag_fetches_per_resume"] = static_cast<double>(n_fetch) / n;
    seen["expunges_per_resume"] = static_cast<double>(n_expunge) / n;
    seen["late_events"] = late;
    resume["events_in_login_response"] = seen;
    if (resume.Find("gateway_cpu_s") != nullptr)
      resume["gateway_cpu_s_per_1000_resumes"] =
          resume.Find("gateway_cpu_s")->number() * 1000.0 / n;
    if (resume.Find("store_cpu_s") != nullptr)
      resume["store_cpu_s_per_1000_resumes"] = resume.Find("store_cpu_s")->number() * 1000.0 / n;
    resume["latency"] = SummarizeLatency(&lat);
    resume["login_latency"] = SummarizeLatency(&login_lat);
    j["resume"] = resume;
  }
  if (o.scenario == "push") {
    std::vector<int64_t> lat, lat_data, accept_us;
    int64_t missed = 0, early = 0, last_receipt = 0;
    for (size_t u = 0; u < lmtp.accepted_us.size(); ++u)
      for (size_t m = 0; m < lmtp.accepted_us[u].size(); ++m)
        accept_us.push_back(lmtp.accepted_us[u][m] - lmtp.data_end_us[u][m]);
    for (auto& f : fleets) {
      for (auto& d : f->devices()) {
        if (!d->was_ready()) continue;
        const auto& acc = lmtp.accepted_us[static_cast<size_t>(d->user())];
        const auto& sent = lmtp.data_end_us[static_cast<size_t>(d->user())];
        const auto& ev = d->exists_events();
        size_t e = 0;
        for (size_t m = 0; m < acc.size(); ++m) {
          const uint32_t want = d->base_exists() + static_cast<uint32_t>(m) + 1;
          while (e < ev.size() && ev[e].first < want) ++e;
          if (e == ev.size()) {
            ++missed;
            continue;
          }
          lat_data.push_back(std::max<int64_t>(0, ev[e].second - sent[m]));
          int64_t l = ev[e].second - acc[m];
          if (l < 0) {
            ++early;
            l = 0;
          }
          last_receipt = std::max(last_receipt, ev[e].second);
          lat.push_back(l);
        }
      }
    }
    Json push = Json::Object();
    push["messages_requested"] = static_cast<int64_t>(push_recipients.size());
    push["messages_delivered"] = lmtp.delivered;
    push["messages_failed"] = lmtp.failed;
    push["rate_requested"] = o.rate;
    const double send_s = static_cast<double>(lmtp.last_us - lmtp.first_us) / 1e6;
    push["lmtp_seconds"] = send_s;
    push["messages_per_s"] = lmtp.delivered / std::max(send_s, 1e-3);
    push["notifications"] = static_cast<int64_t>(lat.size());
    push["notifications_missed"] = missed;
    push["notifications_before_acceptance"] = early;
    const double window_s =
        static_cast<double>(std::max(last_receipt, lmtp.last_us) - lmtp.first_us) / 1e6;
    push["window_s"] = window_s;
    push["pushes_per_s"] = static_cast<double>(lat.size()) / std::max(window_s, 1e-3);
    const double k = static_cast<double>(std::max<size_t>(lat.size(), 1)) / 1000.0;
    if (cpu_before.gateway.ok && cpu_after.gateway.ok)
      push["gateway_cpu_s_per_1000_pushes"] = (cpu_after.gateway.cpu_s - cpu_before.gateway.cpu_s) / k;
    if (cpu_before.store.ok && cpu_after.store.ok)
      push["store_cpu_s_per_1000_pushes"] = (cpu_after.store.cpu_s - cpu_before.store.cpu_s) / k;
    push["latency"] = SummarizeLatency(&lat);
    // The same notifications timed from the end of DATA (sent), and the store's LMTP
    // answer time (end of DATA -> 250): with push_notification the store POSTs to the
    // gateway before its 250, so a device may see EXISTS before the 250 (counted in
    // notifications_before_acceptance, latency 0 then).
    push["latency_from_data_end"] = SummarizeLatency(&lat_data);
    push["lmtp_accept_latency"] = SummarizeLatency(&accept_us);
    j["push"] = push;
    if (missed > 0)
      add_error("push notification missed (no EXISTS within --drain)", missed,
                absl::StrCat(missed, " device x message pairs without EXISTS"));
    (void)push_start_us;
    (void)push_end_us;
  }
  if (o.scenario == "relay") {
    std::vector<int64_t> lat;
    Json kinds = Json::Object();
    for (int kind = 0; kind < Fleet::kRelayKinds; ++kind) {
      int64_t n = 0, sum = 0;
      for (auto& f : fleets) {
        n += f->relay_count[kind];
        sum += f->relay_sum_us[kind];
      }
      Json kj = Json::Object();
      kj["count"] = n;
      kj["mean_ms"] = n ? static_cast<double>(sum) / static_cast<double>(n) / 1000.0 : 0.0;
      kinds[RelayKindName(kind)] = kj;
    }
    for (auto& f : fleets) lat.insert(lat.end(), f->relay_us().begin(), f->relay_us().end());
    j["relay"]["by_command"] = kinds;
    j["relay"]["latency"] = SummarizeLatency(&lat);
  }

  Json counts = Json::Object();
  counts["launched"] = final_totals.launched;
  counts["connected"] = final_totals.connected;
  counts["ready"] = final_totals.ready;
  counts["setup_failed"] = final_totals.setup_failed;
  counts["lost"] = final_totals.lost;
  j["counts"] = counts;
  Json e = Json::Object();
  Json ex = Json::Object();
  for (auto& [k, v] : errors) {
    e[k] = v;
    ex[k] = examples[k];
    result.errors += v;
  }
  j["errors"] = e;
  j["error_examples"] = ex;
  if (!errors.empty()) {
    auto worst = std::max_element(errors.begin(), errors.end(),
                                  [](auto& a, auto& b) { return a.second < b.second; });
    j["limited_by"] = worst->first;
  }
  fleets.clear();
  set.reset();

  // ---- let the target drop the sessions before the next phase measures its baseline
  const int64_t wait_end = NowUs() + 20000000;
  if (with_metrics) {
    while (NowUs() < wait_end) {
      auto m = FetchMetrics(o.metrics);
      auto it = m.find("pimap_device_connections");
      auto se = m.find("pimap_sessions");
      if ((it == m.end() || it->second == 0) && (se == m.end() || se->second == 0)) break;
      SleepMs(100);
    }
    auto m = FetchMetrics(o.metrics);
    for (const char* k : {"pimap_sessions", "pimap_watch_connections", "pimap_upstream_connections"}) {
      auto it = m.find(k);
      if (it != m.end()) j["after_phase"][k] = it->second;
    }
  }
  SleepMs(1000);
  return result;
}

double Get(const Json& j, std::initializer_list<const char*> path, bool* ok) {
  const Json* cur = &j;
  for (const char* p : path) {
    cur = cur->Find(p);
    if (cur == nullptr) { *ok = false; return 0; }
  }
  if (!cur->is_number()) { *ok = false; return 0; }
  return cur->number();
}

void PrintSummary(const Options& o, const Json& phase) {
  bool ok = true;
  auto g = [&](std::initializer_list<const char*> p) { ok = true; return Get(phase, p, &ok); };
  double v;
  const Json* binding = phase.Find("binding");
  const std::string b = binding != nullptr ? binding->Dump() : "";
  const bool http = b == "\"http\"" || b == "\"https\"";
  v = g({"ramp", "ready"}); if (ok) std::printf("  devices ready: %.0f / %d (ramp %.1f s, %.0f dev/s)\n", v, o.devices, g({"ramp", "seconds"}), g({"ramp", "devices_per_s"}));
  const char* ready_at = o.scenario == "resume"  ? "model FETCH done"
                         : o.scenario == "relay" ? "SELECT done"
                         : http                  ? "long poll open"
                                                 : "IDLE";
  v = g({"setup_latency", "p50_ms"});
  if (ok)
    std::printf("  set-up (connect -> %s): p50 %.1f ms p99 %.1f ms\n", ready_at,
                v, g({"setup_latency", "p99_ms"}));
  v = g({"memory", "gateway_rss_per_device_bytes"}); if (ok) std::printf("  gateway RSS per device: %.0f B\n", v);
  v = g({"memory", "store_pss_per_device_bytes"}); if (ok) std::printf("  store PSS per device: %.0f B (RSS %.0f B)\n", v, g({"memory", "store_rss_per_device_bytes"}));
  v = g({"memory", "kernel_slab_per_device_bytes"}); if (ok) std::printf("  kernel slab per device: %.0f B, %.1f TCP sockets per device\n", v, g({"memory", "tcp_sockets_per_device"}));
  v = g({"memory", "upstream_connections"}); if (ok) std::printf("  upstream connections: %.0f (%.2f per active user)\n", v, g({"memory", "upstream_per_active_user"}));
  v = g({"memory", "gateway_heap_in_use_per_device_bytes"}); if (ok) std::printf("  gateway heap in use per device: %.0f B (heap in use %.1f MiB, free %.1f MiB at sample)\n", v, g({"store_links", "at_sample", "heap_in_use_bytes"}) / 1048576.0, g({"store_links", "at_sample", "heap_free_bytes"}) / 1048576.0);
  v = g({"store_links", "at_sample", "store_links_open"}); if (ok) std::printf("  store links at sample: %.0f open (%.0f busy, %.0f idle, %.0f waiters)\n", v, g({"store_links", "at_sample", "store_links_busy"}), g({"store_links", "at_sample", "store_links_idle"}), g({"store_links", "at_sample", "store_link_waiters"}));
  v = g({"store_links", "run", "borrows"}); if (ok) std::printf("  store links over the run: %.0f borrows, %.0f store logins, %.0f evictions, %.0f waits (%.0f timed out)\n", v, g({"store_links", "run", "opens"}), g({"store_links", "run", "evictions"}), g({"store_links", "run", "waits"}), g({"store_links", "run", "wait_timeouts"}));
  v = g({"store_links", "wait", "p50_ms"}); if (ok) std::printf("  store link wait (queued borrows): p50 %.1f ms p99 %.1f ms\n", v, g({"store_links", "wait", "p99_ms"}));
  v = g({"store_links", "run", "auth_cache_hit_ratio"}); if (ok) std::printf("  auth cache: %.1f%% hits (%.0f hits, %.0f misses)\n", v * 100, g({"store_links", "run", "auth_cache_hits"}), g({"store_links", "run", "auth_cache_misses"}));
  v = g({"push", "latency", "p50_ms"}); if (ok) std::printf("  push latency ms: p50 %.1f p99 %.1f p99.9 %.1f max %.1f; %.0f pushes/s\n", v, g({"push", "latency", "p99_ms"}), g({"push", "latency", "p999_ms"}), g({"push", "latency", "max_ms"}), g({"push", "pushes_per_s"}));
  v = g({"resume", "resumes_per_s"}); if (ok) std::printf("  resume: %.0f/%.0f devices resynchronised, %.0f resumes/s, p50 %.2f ms p99 %.2f ms, %.0f bytes per resume, %.0f RESYNC, %.0f mismatched\n", g({"resume", "resumed"}), g({"resume", "devices"}), v, g({"resume", "latency", "p50_ms"}), g({"resume", "latency", "p99_ms"}), g({"resume", "bytes_per_resume"}), g({"resume", "resyncs"}), g({"resume", "mismatched"}));
  v = g({"memory", "watch_connections"}); if (ok) std::printf("  store connections: %.0f watches + %.2f device upstreams per active user\n", v, g({"memory", "device_upstream_per_active_user"}));
  v = g({"wake_latency", "p50_ms"});
  if (ok)
    std::printf(
        "  wake-up (%sDONE + UID FETCH, all devices at once): p50 %.1f ms p99 "
        "%.1f ms\n",
        http ? "second connection + " : "", v, g({"wake_latency", "p99_ms"}));
  v = g({"relay", "commands_per_s"}); if (ok) std::printf("  relay: %.0f commands/s, p50 %.2f ms p99 %.2f ms\n", v, g({"relay", "latency", "p50_ms"}), g({"relay", "latency", "p99_ms"}));
  const Json* errs = phase.Find("errors");
  if (errs != nullptr) std::printf("  errors: %s\n", errs->Dump().c_str());
}

int Main(int argc, char** argv) {
  Options o;
  int code = 0;
  if (!ParseOptions(argc, argv, &o, &code)) return code;
  g_tty = isatty(2);
  SetLogLevel(LogLevel::kWarning);

  // tls: one client context for every phase; https: the gateway's offers ALPN
  // http/1.1, the direct baseline's (IMAP over --direct-tls, when given) none.
  std::shared_ptr<TlsClientContext> tls, gateway_tls;
  if (o.tls()) {
    std::string host = o.tls_verify_host;
    if (host.empty()) host = o.target.set() ? o.target.host : o.direct_tls.host;
    for (bool alpn : {false, true}) {
      if (alpn && !o.http()) break;
      auto ctx =
          TlsClientContext::Create(o.tls_ca, host,
                                   alpn ? std::vector<std::string>{"http/1.1"}
                                        : std::vector<std::string>{});
      if (!ctx.ok()) {
        std::fprintf(stderr, "pimap-bench: %s\n",
                     std::string(ctx.status().message()).c_str());
        return kExitUsage;
      }
      (alpn ? gateway_tls : tls) = *ctx;
    }
    if (!o.http()) gateway_tls = tls;
    if (o.binding == "https" && !o.direct_tls.set())
      tls = nullptr;  // direct: plain IMAP
  }
  // The direct (and nginx) baselines speak IMAP: over TLS when `tls` is set.
  const std::string imap_binding = tls != nullptr ? "tls" : "tcp";

  // ---- limits
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const rlim_t old_soft = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  const int64_t nofile = static_cast<int64_t>(lim.rlim_cur);
  const int64_t table_cap = std::max<int64_t>(64, std::min<int64_t>(19400, nofile - 600));
  int shards = o.shards;
  const int needed_shards = static_cast<int>((o.devices + table_cap - 1) / table_cap);
  if (shards <= 0) shards = std::max(1, needed_shards);
  if (shards < needed_shards) {
    std::fprintf(stderr,
                 "pimap-bench: %d devices need at least %d bench shards: one io_uring file table "
                 "holds at most %lld direct descriptors (RLIMIT_NOFILE %lld); raising --shards\n",
                 o.devices, needed_shards, static_cast<long long>(table_cap),
                 static_cast<long long>(nofile));
    shards = needed_shards;
  }
  if (shards > 64) {
    std::fprintf(stderr, "pimap-bench: more than 64 shards needed; fd limit too low\n");
    return kExitLimit;
  }
  int port_lo = 32768, port_hi = 60999;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%d %d", &port_lo, &port_hi) != 2) { port_lo = 32768; port_hi = 60999; }
    std::fclose(f);
  }
  const int64_t ports = static_cast<int64_t>(port_hi - port_lo + 1) *
                        static_cast<int64_t>(std::max<size_t>(1, o.source_addrs.size()));
  if (o.devices > ports) {
    std::fprintf(stderr,
                 "pimap-bench: LIMIT: %d devices need %d local ports towards one target, but only "
                 "%lld are available (net.ipv4.ip_local_port_range %d-%d x %zu source "
                 "addresses). Pass --source-addrs 127.0.0.2-127.0.0.250.\n",
                 o.devices, o.devices, static_cast<long long>(ports), port_lo, port_hi,
                 std::max<size_t>(1, o.source_addrs.size()));
    return kExitLimit;
  }
  {
    KernelSample k = SampleKernel();
    // Rough need: two loopback sockets per device end to end (four through the gateway)
    // at ~3-5 KiB of slab each, plus buffers while busy.
    const double need = static_cast<double>(o.devices) * 4 * 6 * 1024;
    if (need > static_cast<double>(k.mem_available) * 0.8) {
      std::fprintf(stderr,
                   "pimap-bench: WARNING: %d devices may need ~%.0f MiB of kernel socket memory; "
                   "only %.0f MiB available. The run may stop on ENOMEM.\n",
                   o.devices, need / 1048576.0, static_cast<double>(k.mem_available) / 1048576.0);
    }
  }

  int gateway_pid = o.pimapd_pid;
  if (gateway_pid == 0 && o.target.set()) gateway_pid = FindUniqueProcess("pimapd");

  // ---- the same random recipients for every phase
  const int users = o.effective_users();
  std::mt19937_64 rng(o.seed);
  std::vector<int> recipients;
  if (o.scenario == "push") {
    for (int i = 0; i < o.messages; ++i) recipients.push_back(static_cast<int>(rng() % users));
  }
  // resume: what happens while the devices are away (same plan for every phase).
  std::vector<PlannedEvent> plan;
  if (o.scenario == "resume") {
    for (int i = 0; i < o.messages; ++i) {
      PlannedEvent e;
      e.user = static_cast<int>(rng() % users);
      const int roll = static_cast<int>(rng() % 100);
      e.kind = roll < o.resume_new_pct ? EventKind::kNew
               : roll < o.resume_new_pct + (100 - o.resume_new_pct) * 5 / 8 ? EventKind::kFlags
                                                                            : EventKind::kExpunge;
      plan.push_back(e);
    }
  }

  Json root = Json::Object();
  root["tool"] = "pimap-bench";
  root["version"] = 1;
  root["argv"] = absl::StrJoin(o.argv, " ");
  root["scenario"] = o.scenario;
  root["devices"] = o.devices;
  root["users"] = users;
  root["binding"] = o.binding;
  root["seed"] = o.seed;
  root["rate"] = o.rate;
  root["messages"] = o.messages;
  root["duration_s"] = o.duration_s;
  root["source_addrs"] = o.source_addrs_text;
  root["bench_shards"] = shards;
  root["rlimit_nofile"] = std::to_string(old_soft) + " -> " + std::to_string(nofile);
  root["host"] = HostInfo();
  root["gateway_pid"] = gateway_pid;
  Json store_pids = Json::Array();
  for (int p : o.store_pids) store_pids.Push(p);
  root["store_pids"] = store_pids;
  root["store_restarted_per_phase"] = !o.store_restart.empty();

  if (o.scenario == "resume" && o.seed_messages > 0) {
    Progress(o, absl::StrCat("seeding ", o.seed_messages, " messages per user (APPEND)"), true);
    StoreEventsResult r = SeedMailboxes(o, users, o.seed_messages);
    if (r.failed > 0) {
      std::fprintf(stderr, "pimap-bench: seeding failed: %s\n",
                   r.errors.empty() ? "?" : r.errors[0].c_str());
      return kExitErrors;
    }
  }
  // Relay needs messages to work on: give every user a few first (same store for all phases).
  if (o.scenario == "relay" && o.seed_messages > 0) {
    if (!o.lmtp.set()) {
      std::fprintf(stderr, "pimap-bench: relay: no --lmtp; not seeding mailboxes (FETCH/STORE "
                           "need messages)\n");
    } else {
      std::vector<int> seed;
      for (int k = 0; k < o.seed_messages; ++k)
        for (int u = 0; u < users; ++u) seed.push_back(u);
      Progress(o, absl::StrCat("seeding ", seed.size(), " messages via LMTP"), true);
      LmtpResult r = DeliverMessages(o.lmtp, o.lmtp_conns, users, o.user_prefix, seed, 0, 300,
                                     nullptr);
      if (r.failed > 0) {
        std::fprintf(stderr, "pimap-bench: seeding failed: %s\n",
                     r.errors.empty() ? "?" : r.errors[0].c_str());
        return kExitErrors;
      }
    }
  }

  std::vector<PhaseConfig> phases;
  auto resolve = [](const HostPort& hp, PhaseConfig* c) {
    auto a = engine::ResolveAddress(hp.host, hp.port);
    if (!a.ok()) return false;
    c->addr = a->first;
    c->addr_len = a->second;
    return true;
  };
  if (o.target.set()) {
    PhaseConfig c;
    c.name = "pimap";
    c.device_logins = !o.stock;
    c.idle = o.scenario != "relay" && o.scenario != "resume";
    c.resume = o.scenario == "resume";
    c.binding = o.binding;
    c.tls = gateway_tls;
    c.http = o.http();
    c.compress = o.compress && !c.http;
    c.http_target = HttpTarget{o.target.ToString(), o.http_path};
    c.gateway_pids = {gateway_pid};
    c.target_text = o.target.ToString();
    if (!resolve(o.target, &c)) {
      std::fprintf(stderr, "pimap-bench: cannot resolve %s\n", o.target.ToString().c_str());
      return kExitUsage;
    }
    phases.push_back(c);
  }
  bool direct_wanted = std::find(o.compare.begin(), o.compare.end(), "direct") != o.compare.end() ||
                       !o.target.set();
  if (direct_wanted) {
    PhaseConfig c;
    c.name = "direct";
    c.device_logins = false;
    c.compress = o.compress;
    c.idle = o.scenario != "relay" && o.scenario != "resume";
    c.resume = o.scenario == "resume";
    c.binding = imap_binding;
    c.tls = tls;
    const HostPort& where = tls != nullptr ? o.direct_tls : o.direct;
    c.target_text = where.ToString();
    if (!resolve(where, &c)) {
      std::fprintf(stderr, "pimap-bench: cannot resolve %s\n", where.ToString().c_str());
      return kExitUsage;
    }
    phases.push_back(c);
  }
  // nginx's mail proxy in front of the same store: plain IMAP logins (nginx asks its
  // auth_http endpoint which backend to use, then logs in there with the same
  // credentials and relays bytes). Its memory and CPU: the master and its workers.
  if (std::find(o.compare.begin(), o.compare.end(), "nginx") != o.compare.end()) {
    PhaseConfig c;
    c.name = "nginx";
    c.device_logins = false;
    c.idle = o.scenario != "relay" && o.scenario != "resume";
    c.resume = o.scenario == "resume";
    c.binding = imap_binding;
    c.tls = tls;
    c.gateway_pids = {o.nginx_pid};
    c.gateway_tree = true;
    c.target_text = o.nginx.ToString();
    if (o.nginx_pid == 0) {
      std::fprintf(stderr, "pimap-bench: --compare nginx without --nginx-pid: no nginx memory "
                           "or CPU figures\n");
    }
    if (!resolve(o.nginx, &c)) {
      std::fprintf(stderr, "pimap-bench: cannot resolve %s\n", o.nginx.ToString().c_str());
      return kExitUsage;
    }
    phases.push_back(c);
  }

  Json phases_json = Json::Array();
  int64_t total_errors = 0;
  std::vector<Json> results;
  for (const PhaseConfig& c : phases) {
    if (!o.store_restart.empty()) {
      // A fresh store per phase: Dovecot's imap processes keep the memory of earlier
      // sessions, which would blur the next phase's per-device figure.
      FILE* p = popen(o.store_restart.c_str(), "r");
      std::string out, last;
      char buf[256];
      while (p != nullptr && std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
      const int rc = p != nullptr ? pclose(p) : -1;
      for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipWhitespace()))
        last = std::string(line);
      std::vector<int> pids;
      for (absl::string_view f : absl::StrSplit(last, absl::ByAnyChar(", "), absl::SkipEmpty())) {
        int pid = 0;
        if (absl::SimpleAtoi(f, &pid) && pid > 0) pids.push_back(pid);
      }
      if (rc != 0 || pids.empty()) {
        std::fprintf(stderr, "pimap-bench: --store-restart failed (rc %d): %s\n", rc, out.c_str());
        return kExitErrors;
      }
      o.store_pids = pids;
      g_store_initial = ProcSample();
      SleepMs(500);
    }
    PhaseResult r = RunPhase(o, c, shards, recipients, plan);
    total_errors += r.errors;
    std::printf("== %s (%s, %s) ==\n", c.name.c_str(), c.target_text.c_str(),
                c.binding.c_str());
    PrintSummary(o, r.json);
    results.push_back(r.json);
    phases_json.Push(r.json);
  }
  root["phases"] = phases_json;

  // ---- headline ratios: pimap / direct ("ratios"), pimap / nginx, nginx / direct
  auto find_phase = [&](const std::string& name) -> const Json* {
    for (size_t i = 0; i < phases.size(); ++i)
      if (phases[i].name == name) return &results[i];
    return nullptr;
  };
  auto ratios_of = [&](const Json& a_phase, const Json& b_phase, bool b_has_gateway) {
    Json ratios = Json::Object();
    auto ratio = [&](const std::string& name, std::initializer_list<const char*> path) {
      bool ok1 = true, ok2 = true;
      double a = Get(a_phase, path, &ok1), b = Get(b_phase, path, &ok2);
      if (ok1 && ok2 && b != 0) ratios[name] = a / b;
    };
    ratio("push_p50", {"push", "latency", "p50_ms"});
    ratio("push_p99", {"push", "latency", "p99_ms"});
    ratio("push_p999", {"push", "latency", "p999_ms"});
    ratio("pushes_per_s", {"push", "pushes_per_s"});
    ratio("relay_commands_per_s", {"relay", "commands_per_s"});
    ratio("relay_p50", {"relay", "latency", "p50_ms"});
    ratio("relay_p99", {"relay", "latency", "p99_ms"});
    ratio("store_pss_per_device", {"memory", "store_pss_per_device_bytes"});
    ratio("kernel_slab_per_device", {"memory", "kernel_slab_per_device_bytes"});
    ratio("setup_p50", {"setup_latency", "p50_ms"});
    ratio("wake_p50", {"wake_latency", "p50_ms"});
    ratio("wake_p99", {"wake_latency", "p99_ms"});
    ratio("resumes_per_s", {"resume", "resumes_per_s"});
    ratio("resume_p50", {"resume", "latency", "p50_ms"});
    ratio("resume_p99", {"resume", "latency", "p99_ms"});
    ratio("bytes_per_resume", {"resume", "bytes_per_resume"});
    if (b_has_gateway) ratio("gateway_rss_per_device", {"memory", "gateway_rss_per_device_bytes"});
    // user-space memory per device, all processes involved (gateway + store)
    auto user_space = [&](const Json& p, bool gw, double* out) {
      bool ok = true;
      double g = gw ? Get(p, {"memory", "gateway_rss_per_device_bytes"}, &ok) : 0;
      if (!ok) g = 0;
      ok = true;
      double st = Get(p, {"memory", "store_pss_per_device_bytes"}, &ok);
      *out = g + st;
      return ok;
    };
    double a = 0, b = 0;
    if (user_space(a_phase, true, &a) && user_space(b_phase, b_has_gateway, &b) && b != 0)
      ratios["user_space_per_device"] = a / b;
    return ratios;
  };
  const Json* pimap_r = find_phase("pimap");
  const Json* direct_r = find_phase("direct");
  const Json* nginx_r = find_phase("nginx");
  if (pimap_r != nullptr && direct_r != nullptr) {
    Json ratios = ratios_of(*pimap_r, *direct_r, false);
    std::printf("== ratios pimap/direct ==\n  %s\n", ratios.Dump().c_str());
    root["ratios"] = ratios;
  }
  if (pimap_r != nullptr && nginx_r != nullptr) {
    Json ratios = ratios_of(*pimap_r, *nginx_r, true);
    std::printf("== ratios pimap/nginx ==\n  %s\n", ratios.Dump().c_str());
    root["ratios_pimap_nginx"] = ratios;
  }
  if (nginx_r != nullptr && direct_r != nullptr) {
    Json ratios = ratios_of(*nginx_r, *direct_r, false);
    std::printf("== ratios nginx/direct ==\n  %s\n", ratios.Dump().c_str());
    root["ratios_nginx_direct"] = ratios;
  }
  root["total_errors"] = total_errors;

  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << root.Dump(1) << "\n";
    if (!f) {
      std::fprintf(stderr, "pimap-bench: cannot write %s\n", o.json.c_str());
      return kExitErrors;
    }
    std::printf("JSON written to %s\n", o.json.c_str());
  }
  if (total_errors > 0) {
    std::fprintf(stderr, "pimap-bench: %lld errors (see \"errors\" in the output)\n",
                 static_cast<long long>(total_errors));
    return kExitErrors;
  }
  return 0;
}

}  // namespace
}  // namespace pimap::bench

int main(int argc, char** argv) { return pimap::bench::Main(argc, argv); }
