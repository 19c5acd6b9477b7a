// Prometheus rendering of ShardCounters (see shard_counters.h). Adding a
// metric = one field in the struct + one row in kMetrics (kHistograms for a
// LatencyHistogram).
#include "core/base/shard_counters.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pimap {
namespace {

using GaugeField = std::atomic<int64_t> ShardCounters::*;
using CounterField = std::atomic<uint64_t> ShardCounters::*;

struct MetricDef {
  const char* name;
  const char* help;
  std::variant<GaugeField, CounterField> field;  // gauge or counter
};

constexpr MetricDef kMetrics[] = {
    {"pimap_device_connections", "Open device (client) connections.",
     &ShardCounters::device_connections},
    {"pimap_users_logged_in",
     "Distinct users with at least one authenticated connection.",
     &ShardCounters::users_logged_in},
    {"pimap_upstream_connections", "Open connections to the store.",
     &ShardCounters::upstream_connections},
    {"pimap_hibernated_devices",
     "Idle P-IMAP devices kept as a small record (hibernated).",
     &ShardCounters::hibernated_devices},
    {"pimap_hibernations_total", "Idle P-IMAP devices hibernated.",
     &ShardCounters::hibernations},
    {"pimap_wakeups_total",
     "Hibernated devices rebuilt (by their input or an event).",
     &ShardCounters::wakeups},
    {"pimap_connections_accepted_total", "Device connections accepted.",
     &ShardCounters::connections_accepted},
    {"pimap_handovers_out_total",
     "Connections handed over to the user's owner shard.",
     &ShardCounters::handovers_out},
    {"pimap_handovers_in_total",
     "Connections received from another shard by handover.",
     &ShardCounters::handovers_in},
    {"pimap_forwarded_connections",
     "Devices spliced to the cluster node that owns their user.",
     &ShardCounters::forwarded_connections},
    {"pimap_cluster_users_owned",
     "Users this node holds in the cluster (their owner keys).",
     &ShardCounters::cluster_users_owned},
    {"pimap_cluster_leases_granted_total",
     "Cluster leases this node took (1, plus one per lease lost).",
     &ShardCounters::cluster_leases_granted},
    {"pimap_cluster_leases_lost_total",
     "Times this node lost its cluster lease (and dropped its users).",
     &ShardCounters::cluster_leases_lost},
    {"pimap_cluster_users_moved_total",
     "Users let go to the node the hashing now prefers.",
     &ShardCounters::cluster_users_moved},
    {"pimap_cluster_forwards_total",
     "Devices forwarded to the cluster node that owns their user.",
     &ShardCounters::cluster_forwards},
    {"pimap_cluster_forwards_in_total",
     "Forwarded devices received from other cluster nodes.",
     &ShardCounters::cluster_forwards_in},
    {"pimap_cluster_claims_total",
     "Users claimed by this node (owner keys created in etcd).",
     &ShardCounters::cluster_claims},
    {"pimap_cluster_fenced_sessions_total",
     "Sessions dropped because this node lost its cluster lease.",
     &ShardCounters::cluster_fenced_sessions},
    {"pimap_cluster_intake_forwards_total",
     "Store notifications passed on to the node that serves their user.",
     &ShardCounters::cluster_intake_forwards},
    {"pimap_cluster_intake_dropped_total",
     "Store notifications for another node's user not passed on.",
     &ShardCounters::cluster_intake_dropped},
    {"pimap_cluster_intake_unowned_total",
     "Store notifications for users no node serves (nothing to tell).",
     &ShardCounters::cluster_intake_unowned},
    {"pimap_commands_relayed_total", "IMAP commands relayed to the store.",
     &ShardCounters::commands_relayed},
    {"pimap_bytes_in_total", "Bytes received from devices.",
     &ShardCounters::bytes_in},
    {"pimap_bytes_out_total", "Bytes sent to devices.",
     &ShardCounters::bytes_out},
    {"pimap_parse_errors_total", "IMAP protocol parse errors from devices.",
     &ShardCounters::parse_errors},
    {"pimap_auth_failures_total", "Failed authentication attempts.",
     &ShardCounters::auth_failures},
    {"pimap_logins_total", "Successful logins.", &ShardCounters::logins},
    {"pimap_sessions", "Live P-IMAP device sessions (connected or not).",
     &ShardCounters::pimap_sessions},
    {"pimap_watch_connections",
     "Store watches: one per user with live P-IMAP sessions.",
     &ShardCounters::watch_connections},
    {"pimap_events_pushed_total", "Store events rendered to devices.",
     &ShardCounters::events_pushed},
    {"pimap_session_resumes_total", "P-IMAP logins that resumed a session.",
     &ShardCounters::session_resumes},
    {"pimap_resyncs_total", "RESYNC responses sent.", &ShardCounters::resyncs},
    {"pimap_rebuilds_total",
     "Resumes reconciled with the store exactly (CONDSTORE/QRESYNC) instead of "
     "a "
     "journal replay or a RESYNC.",
     &ShardCounters::rebuilds},
    {"pimap_events_deduplicated_total",
     "Store events dropped because the other source had reported them already.",
     &ShardCounters::events_deduplicated},
    {"pimap_store_links_open",
     "Logged-in store links owned by the link pool (busy + idle).",
     &ShardCounters::store_links_open},
    {"pimap_store_links_busy", "Pooled store links lent to a device.",
     &ShardCounters::store_links_busy},
    {"pimap_store_links_idle", "Pooled store links waiting for a borrower.",
     &ShardCounters::store_links_idle},
    {"pimap_store_link_waiters",
     "Borrowers queued for a store link (the pool is at its cap).",
     &ShardCounters::store_link_waiters},
    {"pimap_store_link_borrows_total", "Store links lent by the pool.",
     &ShardCounters::store_link_borrows},
    {"pimap_store_link_opens_total", "Store logins made by the link pool.",
     &ShardCounters::store_link_opens},
    {"pimap_store_link_evictions_total",
     "Idle pooled store links closed to make room for another user's login.",
     &ShardCounters::store_link_evictions},
    {"pimap_store_link_wait_timeouts_total",
     "Borrowers that got no store link within their time limit.",
     &ShardCounters::store_link_wait_timeouts},
    {"pimap_relay_parked",
     "Stock IMAP clients in IDLE held by the gateway without a store link.",
     &ShardCounters::relay_parked},
    {"pimap_relay_parks_total", "Stock IMAP clients parked.",
     &ShardCounters::relay_parks},
    {"pimap_relay_park_failures_total",
     "Park attempts given up (the client stayed on its store link).",
     &ShardCounters::relay_park_failures},
    {"pimap_relay_unparks_total",
     "Parked clients resynchronised to a store link after their IDLE.",
     &ShardCounters::relay_unparks},
    {"pimap_relay_parked_events_total",
     "Store changes told to parked clients by the gateway.",
     &ShardCounters::relay_parked_events},
    {"pimap_http_connections", "Open HTTP(S) binding connections.",
     &ShardCounters::http_connections},
    {"pimap_http_sessions",
     "Open P-IMAP sessions of the HTTP binding (cookies, and requests before "
     "login).",
     &ShardCounters::http_sessions},
    {"pimap_http_requests_total", "HTTP binding requests read.",
     &ShardCounters::http_requests},
    {"pimap_http_errors_total",
     "HTTP binding requests answered with an HTTP error status (4xx, 5xx).",
     &ShardCounters::http_errors},
    {"pimap_http_long_polls_total",
     "HTTP requests that became long polls (a batch ending in IDLE).",
     &ShardCounters::http_long_polls},
    {"pimap_http_handovers_total",
     "HTTP connections moved to the shard that owns the request's user.",
     &ShardCounters::http_handovers},
    {"pimap_compress_connections",
     "Device connections with COMPRESS=DEFLATE active.",
     &ShardCounters::compress_connections},
    {"pimap_compress_state_bytes",
     "zlib state held by compressed connections (inflate windows, deflaters "
     "of connections with output in flight).",
     &ShardCounters::compress_state_bytes},
    {"pimap_compress_out_raw_bytes_total",
     "Bytes to compressed devices before compression.",
     &ShardCounters::compress_out_raw},
    {"pimap_compress_out_wire_bytes_total",
     "Bytes to compressed devices after compression.",
     &ShardCounters::compress_out_wire},
    {"pimap_compress_in_wire_bytes_total", "Compressed bytes from devices.",
     &ShardCounters::compress_in_wire},
    {"pimap_compress_in_raw_bytes_total",
     "Bytes from compressed devices after decompression.",
     &ShardCounters::compress_in_raw},
    {"pimap_xzip_commands_total", "XZIP commands run.",
     &ShardCounters::xzip_commands},
    {"pimap_xzip_raw_bytes_total", "Bytes of XZIP answers before compression.",
     &ShardCounters::xzip_raw_bytes},
    {"pimap_xzip_wire_bytes_total", "Bytes of XZIP answers after gzip.",
     &ShardCounters::xzip_wire_bytes},
    {"pimap_xzip_too_large_total",
     "XZIP answers refused as too large (NO [LIMIT]).",
     &ShardCounters::xzip_too_large},
    {"pimap_outband_wakeups_total",
     "Out-of-band wake-ups handed to their channel.",
     &ShardCounters::outband_wakeups},
    {"pimap_outband_coalesced_total",
     "Events folded into a device's wake-up (--outband-min-interval).",
     &ShardCounters::outband_coalesced},
    {"pimap_outband_overflow_total",
     "Out-of-band wake-ups dropped: the shard's queue was full.",
     &ShardCounters::outband_overflow},
    {"pimap_outband_no_channel_total",
     "Wake-ups for a channel this server does not serve.",
     &ShardCounters::outband_no_channel},
    {"pimap_webpush_sent_total", "Web Push messages the push service accepted.",
     &ShardCounters::webpush_sent},
    {"pimap_webpush_failed_total",
     "Web Push messages refused for good (4xx, bad subscription).",
     &ShardCounters::webpush_failed},
    {"pimap_webpush_retried_total",
     "Web Push attempts repeated (5xx, 429, timeout, connection failure).",
     &ShardCounters::webpush_retried},
    {"pimap_webpush_dropped_total",
     "Web Push messages given up (--outband-max-age, or the channel full).",
     &ShardCounters::webpush_dropped},
    {"pimap_webpush_gone_total",
     "Web Push subscriptions removed (the push service said 404/410).",
     &ShardCounters::webpush_gone},
    {"pimap_webpush_keys_ahead_total",
     "Web Push messages encrypted with a key agreement made ahead, while "
     "the device was away.",
     &ShardCounters::webpush_keys_ahead},
    {"pimap_udp_sent_total", "EMN datagrams sent (UDP channel).",
     &ShardCounters::udp_sent},
    {"pimap_udp_failed_total",
     "UDP wake-ups not sent (bad or refused address, lookup, socket).",
     &ShardCounters::udp_failed},
    {"pimap_emn_sent_total",
     "EMN wake-ups (SMS, WAP_PUSH) the operator's webhook accepted.",
     &ShardCounters::emn_sent},
    {"pimap_emn_failed_total",
     "EMN wake-ups refused for good (4xx, bad address, refused webhook).",
     &ShardCounters::emn_failed},
    {"pimap_emn_retried_total",
     "EMN webhook attempts repeated (5xx, 429, timeout, connection failure).",
     &ShardCounters::emn_retried},
    {"pimap_emn_dropped_total",
     "EMN wake-ups given up (--outband-max-age, or the channel full).",
     &ShardCounters::emn_dropped},
    {"pimap_auth_cache_hits_total",
     "Logins verified from the auth cache without asking the store.",
     &ShardCounters::auth_cache_hits},
    {"pimap_auth_cache_misses_total",
     "Logins the auth cache could not verify (asked the store).",
     &ShardCounters::auth_cache_misses},
    {"pimap_logins_delayed_total",
     "Logins held back after failed ones (--login-fail-delay).",
     &ShardCounters::logins_delayed},
    {"pimap_logins_refused_total",
     "Logins refused after too many failures, without asking the store.",
     &ShardCounters::logins_refused},
    {"pimap_preauth_refused_total",
     "Connections closed at once: too many not logged in on the shard or "
     "from the IP (--max-preauth-per-shard, --max-preauth-per-ip).",
     &ShardCounters::preauth_refused},
    {"pimap_store_intake_requests_total",
     "HTTP requests received by the store-event intake.",
     &ShardCounters::intake_requests},
    {"pimap_store_notifications_received_total",
     "Authorised store notifications received (by accepting shard).",
     &ShardCounters::intake_received},
    {"pimap_store_notifications_routed_total",
     "Store notifications enqueued to the owner shard (by accepting shard).",
     &ShardCounters::intake_routed},
    {"pimap_store_notifications_delivered_total",
     "Store notifications handed to the owner shard's sink (by owner shard).",
     &ShardCounters::intake_delivered},
    {"pimap_store_notifications_bad_total",
     "Malformed intake requests (bad HTTP or JSON), answered 4xx.",
     &ShardCounters::intake_bad},
    {"pimap_store_notifications_rejected_total",
     "Intake requests refused: 401, 404, 405, 503.",
     &ShardCounters::intake_rejected},
    {"pimap_store_notifications_unauthorized_total",
     "Intake requests without the right X-Pimap-Secret (401).",
     &ShardCounters::intake_unauthorized},
    {"pimap_store_notifications_overloaded_total",
     "Intake requests or connections refused with 503 (owner queue full).",
     &ShardCounters::intake_overloaded},
    {"pimap_store_notifications_unrouted_total",
     "Store notifications dropped because the owner shard had no sink.",
     &ShardCounters::intake_unrouted},
    {"pimap_store_notifications_lost_total",
     "Store notifications for users of this shard that were refused or dropped "
     "(a "
     "gap to reconcile; by owner shard).",
     &ShardCounters::intake_lost},
    {"pimap_store_notification_events_total",
     "Typed store events delivered to sinks (by owner shard).",
     &ShardCounters::intake_events},
    {"pimap_store_notification_events_ignored_total",
     "Notification events ignored on purpose (noise, unused kinds).",
     &ShardCounters::intake_ignored_events},
    {"pimap_store_notification_flag_deltas_total",
     "Flag changes without a full flag list (by owner shard).",
     &ShardCounters::intake_flag_deltas},
    {"pimap_store_notification_flag_deltas_unresolved_total",
     "Flag changes without a full flag list that no sink took.",
     &ShardCounters::intake_flag_deltas_unresolved},
    {"pimap_store_intake_queued",
     "Store notifications waiting in the owner shard's inbox.",
     &ShardCounters::intake_queued},
    {"pimap_store_intake_connections", "Open store-event intake connections.",
     &ShardCounters::intake_connections},
};

struct SummaryDef {
  const char* name;
  const char* help;
  NsSummary ShardCounters::*field;
};

constexpr SummaryDef kSummaries[] = {
    {"pimap_store_intake_handling_seconds",
     "Time from a complete intake request to its answer being queued.",
     &ShardCounters::intake_handling},
    {"pimap_store_intake_queue_seconds",
     "Time from enqueue to delivery on the owner shard (by owner shard).",
     &ShardCounters::intake_queue},
};

void RenderSummary(std::string& out, const SummaryDef& def,
                   absl::Span<const ShardCounters* const> shards) {
  absl::StrAppend(&out, "# HELP ", def.name, " ", def.help, "\n# TYPE ",
                  def.name, " summary\n");
  uint64_t sum_ns = 0, sum_count = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    const NsSummary& s = shards[i]->*def.field;
    const uint64_t ns = s.sum_ns.load(std::memory_order_relaxed);
    const uint64_t n = s.count.load(std::memory_order_relaxed);
    sum_ns += ns;
    sum_count += n;
    absl::StrAppend(&out, def.name, "_sum{shard=\"", i, "\"} ", ns / 1e9, "\n",
                    def.name, "_count{shard=\"", i, "\"} ", n, "\n");
  }
  absl::StrAppend(&out, def.name, "_sum ", sum_ns / 1e9, "\n", def.name,
                  "_count ", sum_count, "\n");
}

struct HistogramDef {
  const char* name;  // the family name, without _bucket/_sum/_count
  const char* help;
  LatencyHistogram ShardCounters::*field;
};

constexpr HistogramDef kHistograms[] = {
    {"pimap_store_link_wait_seconds",
     "Time a borrow queued for a store link because the pool was at its cap "
     "(borrows that got a link).",
     &ShardCounters::store_link_wait},
    {"pimap_relay_unpark_seconds",
     "From a parked client's DONE to its IDLE's tagged OK (link borrowed and "
     "resynchronised).",
     &ShardCounters::relay_unpark},
    {"pimap_webpush_latency_seconds",
     "From the store event to the push service's acceptance of its wake-up.",
     &ShardCounters::webpush_latency},
    {"pimap_emn_latency_seconds",
     "From the store event to the EMN webhook's acceptance of its wake-up.",
     &ShardCounters::emn_latency},
};

template <typename Field>
void RenderOne(std::string& out, const MetricDef& def, Field field,
               absl::Span<const ShardCounters* const> shards) {
  using Value =
      typename std::remove_reference_t<decltype(shards[0]->*field)>::value_type;
  const char* type = std::is_signed_v<Value> ? "gauge" : "counter";
  absl::StrAppend(&out, "# HELP ", def.name, " ", def.help, "\n", "# TYPE ",
                  def.name, " ", type, "\n");
  Value sum = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    // Load once so the per-shard sample and the sum agree.
    const Value v = (shards[i]->*field).load(std::memory_order_relaxed);
    sum += v;
    absl::StrAppend(&out, def.name, "{shard=\"", i, "\"} ", v, "\n");
  }
  absl::StrAppend(&out, def.name, " ", sum, "\n");
}

// Milliseconds as exact decimal seconds ("0.005", "12.34"): %g would round
// large sums.
std::string MsAsSeconds(uint64_t ms) {
  if (ms % 1000 == 0) return absl::StrCat(ms / 1000);
  std::string s = absl::StrFormat("%d.%03d", ms / 1000, ms % 1000);
  while (s.back() == '0') s.pop_back();
  return s;
}

// One set of cumulative buckets + _sum + _count; `labels` is either empty or
// `shard="i",`.
void RenderHistogramSamples(
    std::string& out, const char* name, absl::string_view labels,
    const uint64_t (&buckets)[LatencyHistogram::kBuckets], uint64_t sum_ms) {
  uint64_t cumulative = 0;
  for (size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    cumulative += buckets[b];
    const std::string le = b < std::size(LatencyHistogram::kBoundsMs)
                               ? MsAsSeconds(LatencyHistogram::kBoundsMs[b])
                               : std::string("+Inf");
    absl::StrAppend(&out, name, "_bucket{", labels, "le=\"", le, "\"} ",
                    cumulative, "\n");
  }
  const std::string plain =
      labels.empty()
          ? std::string()
          : absl::StrCat("{", labels.substr(0, labels.size() - 1), "}");
  absl::StrAppend(&out, name, "_sum", plain, " ", MsAsSeconds(sum_ms), "\n",
                  name, "_count", plain, " ", cumulative, "\n");
}

void RenderHistogram(std::string& out, const HistogramDef& def,
                     absl::Span<const ShardCounters* const> shards) {
  absl::StrAppend(&out, "# HELP ", def.name, " ", def.help, "\n", "# TYPE ",
                  def.name, " histogram\n");
  uint64_t total[LatencyHistogram::kBuckets] = {};
  uint64_t total_sum = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    const LatencyHistogram& h = shards[i]->*def.field;
    // Load once so the per-shard samples and the sums agree.
    uint64_t buckets[LatencyHistogram::kBuckets];
    for (size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
      buckets[b] = h.buckets[b].load(std::memory_order_relaxed);
      total[b] += buckets[b];
    }
    const uint64_t sum_ms = h.sum_ms.load(std::memory_order_relaxed);
    total_sum += sum_ms;
    RenderHistogramSamples(out, def.name, absl::StrCat("shard=\"", i, "\","),
                           buckets, sum_ms);
  }
  RenderHistogramSamples(out, def.name, "", total, total_sum);
}

// One counter family labelled by reason: every reason is rendered (also at
// 0) so that a rate() over it exists before the first refusal.
void RenderIntakeRejected(std::string& out,
                          absl::Span<const ShardCounters* const> shards) {
  constexpr const char* kName = "pimap_intake_rejected_total";
  absl::StrAppend(&out, "# HELP ", kName,
                  " Store notifications the intake refused as invalid or past "
                  "a bound (400; 413 for the body), by reason.\n# TYPE ",
                  kName, " counter\n");
  for (size_t r = 0; r < static_cast<size_t>(IntakeReject::kCount); ++r) {
    uint64_t sum = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const uint64_t v = shards[i]->intake_rejected_by_reason[r].load(
          std::memory_order_relaxed);
      sum += v;
      absl::StrAppend(&out, kName, "{shard=\"", i, "\",reason=\"",
                      kIntakeRejectNames[r], "\"} ", v, "\n");
    }
    absl::StrAppend(&out, kName, "{reason=\"", kIntakeRejectNames[r], "\"} ",
                    sum, "\n");
  }
}

// The certificate reloads, labelled by result; both rendered from the start.
void RenderTlsReloads(std::string& out,
                      absl::Span<const ShardCounters* const> shards) {
  constexpr const char* kName = "pimap_tls_reloads_total";
  absl::StrAppend(&out, "# HELP ", kName,
                  " Reloads of the TLS certificates (SIGHUP), by result; a "
                  "failed one keeps the certificates in use.\n# TYPE ",
                  kName, " counter\n");
  for (auto [result, field] :
       {std::pair{"ok", &ShardCounters::tls_reloads_ok},
        std::pair{"failed", &ShardCounters::tls_reloads_failed}}) {
    uint64_t sum = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const uint64_t v = (shards[i]->*field).load(std::memory_order_relaxed);
      sum += v;
      absl::StrAppend(&out, kName, "{shard=\"", i, "\",result=\"", result,
                      "\"} ", v, "\n");
    }
    absl::StrAppend(&out, kName, "{result=\"", result, "\"} ", sum, "\n");
  }
}

}  // namespace

void HistogramObserve(LatencyHistogram& histogram, int64_t ms) {
  if (ms < 0) ms = 0;
  size_t b = 0;
  while (b < std::size(LatencyHistogram::kBoundsMs) &&
         ms > LatencyHistogram::kBoundsMs[b]) {
    ++b;
  }
  CounterAdd(histogram.buckets[b]);
  CounterAdd(histogram.sum_ms, static_cast<uint64_t>(ms));
}

std::string RenderPrometheus(absl::Span<const ShardCounters* const> shards) {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP pimap_shards Number of shards (event-loop "
                  "threads).\n# TYPE pimap_shards gauge\npimap_shards ",
                  shards.size(), "\n");
  for (const MetricDef& def : kMetrics) {
    std::visit([&](auto field) { RenderOne(out, def, field, shards); },
               def.field);
  }
  for (const HistogramDef& def : kHistograms) RenderHistogram(out, def, shards);
  for (const SummaryDef& def : kSummaries) RenderSummary(out, def, shards);
  RenderIntakeRejected(out, shards);
  RenderTlsReloads(out, shards);
  return out;
}

}  // namespace pimap
