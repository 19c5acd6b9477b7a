// Per-shard metrics, Seastar-style: every shard thread owns one
// ShardCounters and is its ONLY writer (relaxed atomics, no locks, no shared
// cache lines between shards); the admin thread reads all shards and sums
// them when rendering /metrics.
//
// Hazards:
//  * Only the owning shard thread may write a ShardCounters. Because there is
//    a single writer, CounterAdd()/GaugeAdd() use a relaxed load + store
//    instead of a locked read-modify-write; a second writer would lose
//    updates.
//  * Sums read while shards are running are not a consistent snapshot (each
//    value is individually atomic). That is normal for Prometheus scrapes.
#ifndef PIMAP_CORE_BASE_SHARD_COUNTERS_H_
#define PIMAP_CORE_BASE_SHARD_COUNTERS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

#include "absl/types/span.h"
#include "core/base/intake_reject.h"

namespace pimap {

// A fixed-bucket histogram of durations in milliseconds, rendered as a
// Prometheus histogram in seconds. Buckets are fixed at compile time so that
// observing is a bounded scan and shards can be summed bucket by bucket.
struct LatencyHistogram {
  // Upper bounds (inclusive) of the finite buckets; one +Inf bucket follows.
  static constexpr int64_t kBoundsMs[] = {1, 5, 10, 50, 100, 500, 1000, 5000};
  static constexpr size_t kBuckets = std::size(kBoundsMs) + 1;
  // Per-bucket (NOT cumulative) counts; the renderer accumulates them, and
  // derives _count from them so that _count always equals the +Inf bucket.
  std::atomic<uint64_t> buckets[kBuckets] = {};
  std::atomic<uint64_t> sum_ms{0};
};

// A Prometheus summary without quantiles: total nanoseconds and observations.
struct NsSummary {
  std::atomic<uint64_t> sum_ns{0};
  std::atomic<uint64_t> count{0};
};

// Aligned to a cache line so that the counters of different shards, when
// allocated side by side, never share a line (false sharing).
struct alignas(64) ShardCounters {
  // gauges
  std::atomic<int64_t> device_connections{0};  // open device (client) conns
  std::atomic<int64_t> users_logged_in{0};     // distinct users with >= 1
                                               // authenticated connection here
  std::atomic<int64_t> upstream_connections{0};  // open conns to the store
  std::atomic<int64_t> pimap_sessions{0};        // live P-IMAP device sessions
  std::atomic<int64_t> watch_connections{0};     // per-user store watches
  // Devices idling as a small record (bindings/tcp/hibernated_connection.h):
  // hibernated now, hibernations, and wake-ups (by the device or an event).
  std::atomic<int64_t> hibernated_devices{0};
  std::atomic<uint64_t> hibernations{0};
  std::atomic<uint64_t> wakeups{0};
  // counters
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> handovers_out{0};  // connections handed to the owner
  std::atomic<uint64_t> handovers_in{0};
  // Cluster (issue 16): devices spliced to their user's node (open now, and
  // in all), forwarded devices received from other nodes, owner keys
  // created, and users dropped when the node lost its lease.
  std::atomic<int64_t> forwarded_connections{0};
  std::atomic<int64_t> cluster_users_owned{0};      // users claimed here
  std::atomic<uint64_t> cluster_leases_granted{0};  // the agent's (shard 0)
  std::atomic<uint64_t> cluster_leases_lost{0};
  std::atomic<uint64_t> cluster_users_moved{0};  // let go to another node
  std::atomic<uint64_t> cluster_forwards{0};
  std::atomic<uint64_t> cluster_forwards_in{0};
  std::atomic<uint64_t> cluster_claims{0};
  std::atomic<uint64_t> cluster_fenced_sessions{0};
  // Store notifications for users another node serves: passed on to it,
  // dropped (queue full, post failed), or for users no node serves.
  std::atomic<uint64_t> cluster_intake_forwards{0};
  std::atomic<uint64_t> cluster_intake_dropped{0};
  std::atomic<uint64_t> cluster_intake_unowned{0};
  std::atomic<uint64_t> commands_relayed{0};
  std::atomic<uint64_t> bytes_in{0};   // from devices
  std::atomic<uint64_t> bytes_out{0};  // to devices
  std::atomic<uint64_t> parse_errors{0};
  std::atomic<uint64_t> auth_failures{0};
  std::atomic<uint64_t> logins{0};
  std::atomic<uint64_t> events_pushed{0};  // store events written to devices
  std::atomic<uint64_t> session_resumes{0};
  std::atomic<uint64_t> resyncs{0};
  std::atomic<uint64_t> rebuilds{0};  // exact CONDSTORE rebuilds (reconciled)
  std::atomic<uint64_t> events_deduplicated{
      0};  // same change from watch and push
  // The per-shard pool of store links (store/link_pool.h). Gauges: logged-in
  // links owned by the pool (= busy + idle; logins in progress excluded),
  // lent ones, idle ones, and borrowers queued for a link.
  std::atomic<int64_t> store_links_open{0};
  std::atomic<int64_t> store_links_busy{0};
  std::atomic<int64_t> store_links_idle{0};
  std::atomic<int64_t> store_link_waiters{0};
  std::atomic<uint64_t> store_link_borrows{0};  // links lent
  std::atomic<uint64_t> store_link_opens{0};    // successful pool logins
  std::atomic<uint64_t> store_link_evictions{
      0};  // idle links closed for a slot
  std::atomic<uint64_t> store_link_wait_timeouts{0};  // borrowers given up
  // Queue time of borrows that had to wait for a link (pool at its cap).
  LatencyHistogram store_link_wait;
  // Stock clients whose IDLE the gateway holds without a store link
  // (core/session/relay_driver_park.cc): parked now (gauge), parks, park
  // attempts given up (the mailbox kept moving, a sticky session...), unparks
  // and their DONE -> relaying latency, store event lines told while parked.
  std::atomic<int64_t> relay_parked{0};
  std::atomic<uint64_t> relay_parks{0};
  std::atomic<uint64_t> relay_park_failures{0};
  std::atomic<uint64_t> relay_unparks{0};
  std::atomic<uint64_t> relay_parked_events{0};
  LatencyHistogram relay_unpark;
  // COMPRESS=DEFLATE (bindings/compress): compressed device connections,
  // zlib state they hold now (gauges), bytes before and after compression.
  // The HTTP binding (bindings/http).
  std::atomic<int64_t> http_connections{0};
  std::atomic<int64_t> http_sessions{
      0};  // open HTTP sessions (cookies + pre-login)
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> http_errors{0};  // answered 4xx/5xx by the HTTP layer
  std::atomic<uint64_t> http_long_polls{0};
  std::atomic<uint64_t> http_handovers{0};
  std::atomic<int64_t> compress_connections{0};
  std::atomic<int64_t> compress_state_bytes{0};
  std::atomic<uint64_t> compress_out_raw{0};
  std::atomic<uint64_t> compress_out_wire{0};
  std::atomic<uint64_t> compress_in_wire{0};
  std::atomic<uint64_t> compress_in_raw{0};
  // XZIP (core/session/xzip.h): commands run, their answers' bytes before and
  // after gzip, and answers refused as too large.
  std::atomic<uint64_t> xzip_commands{0};
  std::atomic<uint64_t> xzip_raw_bytes{0};
  std::atomic<uint64_t> xzip_wire_bytes{0};
  std::atomic<uint64_t> xzip_too_large{0};
  // Login verdicts answered from the per-shard auth cache / asked of the store.
  std::atomic<uint64_t> auth_cache_hits{0};
  std::atomic<uint64_t> auth_cache_misses{0};
  // Login throttling (core/session/login_throttle.h): attempts held on a
  // timer before they went to the store, and attempts refused without one.
  std::atomic<uint64_t> logins_delayed{0};
  std::atomic<uint64_t> logins_refused{0};
  // Connections closed at accept (or at a hand-over's arrival) because the
  // shard or the client's IP had too many not logged in (preauth_gate.h).
  std::atomic<uint64_t> preauth_refused{0};
  // The store-event intake (store/events/event_intake.h). Hazard: unlike the
  // rest, intake_queued and intake_lost are also written by the shards that
  // route to this one, so every intake update is an atomic RMW (fetch_add).
  std::atomic<uint64_t> intake_requests{0};
  std::atomic<uint64_t> intake_received{0};
  std::atomic<uint64_t> intake_routed{0};
  std::atomic<uint64_t> intake_delivered{0};
  std::atomic<uint64_t> intake_bad{0};
  std::atomic<uint64_t> intake_rejected{0};
  std::atomic<uint64_t> intake_unauthorized{0};
  std::atomic<uint64_t> intake_overloaded{0};
  std::atomic<uint64_t> intake_unrouted{0};
  std::atomic<uint64_t> intake_lost{
      0};  // by owner shard: refused or unroutable
  std::atomic<uint64_t> intake_events{0};
  std::atomic<uint64_t> intake_ignored_events{0};
  std::atomic<uint64_t> intake_flag_deltas{0};
  std::atomic<uint64_t> intake_flag_deltas_unresolved{0};
  std::atomic<int64_t> intake_queued{0};  // by owner shard
  std::atomic<int64_t> intake_connections{0};
  // By IntakeReject (the request's shard).
  std::atomic<uint64_t>
      intake_rejected_by_reason[static_cast<size_t>(IntakeReject::kCount)] = {};
  // Out-of-band wake-ups (core/session/outband_notifier.h): handed to a
  // channel, events folded into a wake-up already sent or pending, dropped
  // because the shard's queue was full, for a channel not configured here.
  std::atomic<uint64_t> outband_wakeups{0};
  std::atomic<uint64_t> outband_coalesced{0};
  std::atomic<uint64_t> outband_overflow{0};
  std::atomic<uint64_t> outband_no_channel{0};
  // The Web Push channel (bindings/webpush): accepted by the push service,
  // failed for good, attempts repeated, given up (--outband-max-age, or the
  // channel's own queue full), subscriptions removed (404/410), and the
  // latency from the store event to the push service's 2xx.
  std::atomic<uint64_t> webpush_sent{0};
  std::atomic<uint64_t> webpush_failed{0};
  std::atomic<uint64_t> webpush_retried{0};
  std::atomic<uint64_t> webpush_dropped{0};
  std::atomic<uint64_t> webpush_gone{0};
  // Messages encrypted with a key agreement made while the device was away
  // (bindings/webpush/key_agreement_cache.h); the others made their own.
  std::atomic<uint64_t> webpush_keys_ahead{0};
  LatencyHistogram webpush_latency;
  // The UDP channel (bindings/udp): EMN datagrams sent, and wake-ups not sent
  // (bad address, refused target, name not resolved, socket error).
  std::atomic<uint64_t> udp_sent{0};
  std::atomic<uint64_t> udp_failed{0};
  // The EMN channel (bindings/emn: SMS and WAP_PUSH through the operator's
  // webhook): as for Web Push, accepted (2xx), failed for good, attempts
  // repeated, given up, and the latency from the store event to the 2xx.
  std::atomic<uint64_t> emn_sent{0};
  std::atomic<uint64_t> emn_failed{0};
  std::atomic<uint64_t> emn_retried{0};
  std::atomic<uint64_t> emn_dropped{0};
  LatencyHistogram emn_latency;
  // SIGHUP reloads of the TLS certificates (tools/pimapd/reloader.h), by
  // result; counted on shard 0 only (a reload is process-wide).
  std::atomic<uint64_t> tls_reloads_ok{0};
  std::atomic<uint64_t> tls_reloads_failed{0};
  NsSummary intake_handling;  // request complete -> answer queued
  NsSummary intake_queue;     // enqueued -> delivered on the owner shard
};

// Single-writer increments (see the hazard above). Owning shard thread only.
inline void CounterAdd(std::atomic<uint64_t>& counter, uint64_t delta = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + delta,
                std::memory_order_relaxed);
}
inline void GaugeAdd(std::atomic<int64_t>& gauge, int64_t delta) {
  gauge.store(gauge.load(std::memory_order_relaxed) + delta,
              std::memory_order_relaxed);
}
// Counts one observation of `ms` (negative counts as 0). Owning shard only.
void HistogramObserve(LatencyHistogram& histogram, int64_t ms);

// Prometheus text exposition format 0.0.4. First a `pimap_shards` gauge
// (shards.size()), then for each metric a # HELP and # TYPE line, one sample
// per shard labelled {shard="i"} (i = index in `shards`), and one unlabelled
// sample with the sum over shards. Histograms follow the same scheme with
// _bucket{le="..."}, _sum and _count samples (sum in seconds); summaries with
// _sum (seconds) and _count. Every pointer must be non-null. Safe to
// call from any thread while the shards keep writing.
std::string RenderPrometheus(absl::Span<const ShardCounters* const> shards);

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_SHARD_COUNTERS_H_
