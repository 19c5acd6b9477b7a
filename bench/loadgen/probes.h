// What the bench measures outside itself: process memory and CPU (/proc), kernel
// socket memory (/proc/net/sockstat, /proc/meminfo), pimapd's /metrics, plus the
// latency summary helper shared by the scenarios.
#ifndef PIMAP_BENCH_LOADGEN_PROBES_H_
#define PIMAP_BENCH_LOADGEN_PROBES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/loadgen/json.h"
#include "bench/loadgen/options.h"

namespace pimap::bench {

int64_t NowUs();  // CLOCK_MONOTONIC, microseconds

struct ProcSample {
  bool ok = false;
  int64_t rss_bytes = 0;
  int64_t pss_bytes = 0;   // from smaps_rollup (0 when unreadable)
  double cpu_s = 0;        // utime + stime
  int processes = 0;
};

// One process.
ProcSample SampleProcess(int pid);
// The given roots and all their descendants (e.g. the Dovecot master and its children).
ProcSample SampleTree(const std::vector<int>& roots);
// The pid of the only running process named `comm`, or 0 if none or several.
int FindUniqueProcess(const std::string& comm);

struct KernelSample {
  int64_t tcp_inuse = 0;
  int64_t tcp_mem_pages = 0;  // sockstat "mem": pages charged to TCP buffers
  int64_t slab_bytes = 0;     // /proc/meminfo Slab
  int64_t mem_available = 0;
};
KernelSample SampleKernel();

// GET /metrics; returns the unlabelled samples (name -> value), i.e. the sums
// over shards, and the summed histograms' buckets as `name_bucket{le="x"}`.
// Empty on failure.
std::map<std::string, double> FetchMetrics(const HostPort& admin);

// A Prometheus histogram `family` (seconds) between two FetchMetrics results:
// count, mean_ms and p50_ms / p99_ms estimated from the buckets as
// histogram_quantile() does (no percentiles when count is 0). Empty when the
// family is absent.
Json HistogramDelta(const std::map<std::string, double>& before,
                    const std::map<std::string, double>& after, const std::string& family);

// Latency summary over microsecond samples: count, p50/p90/p99/p99.9/max (ms) and a
// 101+ point CDF (quantile -> ms) for the report's plots. Sorts `us`.
Json SummarizeLatency(std::vector<int64_t>* us);

Json HostInfo();

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_PROBES_H_
