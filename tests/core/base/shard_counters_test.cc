// Tests for RenderPrometheus: exact exposition lines, sums over shards,
// HELP/TYPE for every metric, histograms, and concurrent writers while
// rendering.
#include "core/base/shard_counters.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (l == line) return true;
  }
  return false;
}

TEST(ShardCountersTest, RendersPerShardAndSum) {
  ShardCounters a, b, c;
  a.device_connections = 3;
  b.device_connections = 4;
  c.device_connections = -1;  // Gauges are signed.
  a.bytes_out = 1000;
  b.bytes_out = 24;
  CounterAdd(c.bytes_out, 5);
  CounterAdd(a.logins);
  CounterAdd(a.logins);
  GaugeAdd(b.users_logged_in, 2);
  GaugeAdd(b.users_logged_in, -1);
  const ShardCounters* shards[] = {&a, &b, &c};
  const std::string text = RenderPrometheus(shards);

  EXPECT_TRUE(HasLine(text, "# TYPE pimap_shards gauge"));
  EXPECT_TRUE(HasLine(text, "pimap_shards 3"));
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_device_connections gauge"));
  EXPECT_TRUE(HasLine(text, "pimap_device_connections{shard=\"0\"} 3"));
  EXPECT_TRUE(HasLine(text, "pimap_device_connections{shard=\"1\"} 4"));
  EXPECT_TRUE(HasLine(text, "pimap_device_connections{shard=\"2\"} -1"));
  EXPECT_TRUE(HasLine(text, "pimap_device_connections 6"));
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_bytes_out_total counter"));
  EXPECT_TRUE(HasLine(text, "pimap_bytes_out_total{shard=\"2\"} 5"));
  EXPECT_TRUE(HasLine(text, "pimap_bytes_out_total 1029"));
  EXPECT_TRUE(HasLine(text, "pimap_logins_total{shard=\"0\"} 2"));
  EXPECT_TRUE(HasLine(text, "pimap_logins_total 2"));
  EXPECT_TRUE(HasLine(text, "pimap_users_logged_in{shard=\"1\"} 1"));
  EXPECT_TRUE(HasLine(text, "pimap_users_logged_in 1"));
  EXPECT_TRUE(HasLine(text, "pimap_parse_errors_total 0"));
  EXPECT_TRUE(absl::EndsWith(text, "\n"));
}

TEST(ShardCountersTest, EveryMetricHasHelpTypeAndSamples) {
  ShardCounters a;
  const ShardCounters* shards[] = {&a};
  const std::string text = RenderPrometheus(shards);
  const std::vector<std::pair<std::string, std::string>> metrics = {
      {"pimap_shards", "gauge"},
      {"pimap_device_connections", "gauge"},
      {"pimap_users_logged_in", "gauge"},
      {"pimap_upstream_connections", "gauge"},
      {"pimap_hibernated_devices", "gauge"},
      {"pimap_hibernations_total", "counter"},
      {"pimap_wakeups_total", "counter"},
      {"pimap_connections_accepted_total", "counter"},
      {"pimap_handovers_out_total", "counter"},
      {"pimap_handovers_in_total", "counter"},
      {"pimap_forwarded_connections", "gauge"},
      {"pimap_cluster_users_owned", "gauge"},
      {"pimap_cluster_leases_granted_total", "counter"},
      {"pimap_cluster_leases_lost_total", "counter"},
      {"pimap_cluster_users_moved_total", "counter"},
      {"pimap_cluster_forwards_total", "counter"},
      {"pimap_cluster_forwards_in_total", "counter"},
      {"pimap_cluster_claims_total", "counter"},
      {"pimap_cluster_fenced_sessions_total", "counter"},
      {"pimap_cluster_intake_forwards_total", "counter"},
      {"pimap_cluster_intake_dropped_total", "counter"},
      {"pimap_cluster_intake_unowned_total", "counter"},
      {"pimap_commands_relayed_total", "counter"},
      {"pimap_bytes_in_total", "counter"},
      {"pimap_bytes_out_total", "counter"},
      {"pimap_parse_errors_total", "counter"},
      {"pimap_auth_failures_total", "counter"},
      {"pimap_logins_total", "counter"},
      {"pimap_sessions", "gauge"},
      {"pimap_watch_connections", "gauge"},
      {"pimap_events_pushed_total", "counter"},
      {"pimap_session_resumes_total", "counter"},
      {"pimap_resyncs_total", "counter"},
      {"pimap_rebuilds_total", "counter"},
      {"pimap_events_deduplicated_total", "counter"},
      {"pimap_store_links_open", "gauge"},
      {"pimap_store_links_busy", "gauge"},
      {"pimap_store_links_idle", "gauge"},
      {"pimap_store_link_waiters", "gauge"},
      {"pimap_store_link_borrows_total", "counter"},
      {"pimap_store_link_opens_total", "counter"},
      {"pimap_store_link_evictions_total", "counter"},
      {"pimap_store_link_wait_timeouts_total", "counter"},
      {"pimap_auth_cache_hits_total", "counter"},
      {"pimap_auth_cache_misses_total", "counter"},
      {"pimap_logins_delayed_total", "counter"},
      {"pimap_logins_refused_total", "counter"},
      {"pimap_preauth_refused_total", "counter"},
      {"pimap_store_intake_requests_total", "counter"},
      {"pimap_store_notifications_received_total", "counter"},
      {"pimap_store_notifications_routed_total", "counter"},
      {"pimap_store_notifications_delivered_total", "counter"},
      {"pimap_store_notifications_bad_total", "counter"},
      {"pimap_store_notifications_rejected_total", "counter"},
      {"pimap_store_notifications_unauthorized_total", "counter"},
      {"pimap_store_notifications_overloaded_total", "counter"},
      {"pimap_store_notifications_unrouted_total", "counter"},
      {"pimap_store_notifications_lost_total", "counter"},
      {"pimap_store_notification_events_total", "counter"},
      {"pimap_store_notification_events_ignored_total", "counter"},
      {"pimap_store_notification_flag_deltas_total", "counter"},
      {"pimap_store_notification_flag_deltas_unresolved_total", "counter"},
      {"pimap_store_intake_queued", "gauge"},
      {"pimap_store_intake_connections", "gauge"},
      {"pimap_relay_parked", "gauge"},
      {"pimap_relay_parks_total", "counter"},
      {"pimap_relay_park_failures_total", "counter"},
      {"pimap_relay_unparks_total", "counter"},
      {"pimap_relay_parked_events_total", "counter"},
      {"pimap_http_connections", "gauge"},
      {"pimap_http_sessions", "gauge"},
      {"pimap_http_requests_total", "counter"},
      {"pimap_http_errors_total", "counter"},
      {"pimap_http_long_polls_total", "counter"},
      {"pimap_http_handovers_total", "counter"},
      {"pimap_compress_connections", "gauge"},
      {"pimap_compress_state_bytes", "gauge"},
      {"pimap_compress_out_raw_bytes_total", "counter"},
      {"pimap_compress_out_wire_bytes_total", "counter"},
      {"pimap_compress_in_wire_bytes_total", "counter"},
      {"pimap_compress_in_raw_bytes_total", "counter"},
      {"pimap_xzip_commands_total", "counter"},
      {"pimap_xzip_raw_bytes_total", "counter"},
      {"pimap_xzip_wire_bytes_total", "counter"},
      {"pimap_xzip_too_large_total", "counter"},
      {"pimap_outband_wakeups_total", "counter"},
      {"pimap_outband_coalesced_total", "counter"},
      {"pimap_outband_overflow_total", "counter"},
      {"pimap_outband_no_channel_total", "counter"},
      {"pimap_webpush_sent_total", "counter"},
      {"pimap_webpush_failed_total", "counter"},
      {"pimap_webpush_retried_total", "counter"},
      {"pimap_webpush_dropped_total", "counter"},
      {"pimap_webpush_gone_total", "counter"},
      {"pimap_webpush_keys_ahead_total", "counter"},
      {"pimap_udp_sent_total", "counter"},
      {"pimap_udp_failed_total", "counter"},
      {"pimap_emn_sent_total", "counter"},
      {"pimap_emn_failed_total", "counter"},
      {"pimap_emn_retried_total", "counter"},
      {"pimap_emn_dropped_total", "counter"},
  };
  for (const auto& [name, type] : metrics) {
    EXPECT_TRUE(absl::StrContains(text, "# HELP " + name + " ")) << name;
    EXPECT_TRUE(HasLine(text, "# TYPE " + name + " " + type)) << name;
    if (name != "pimap_shards") {
      EXPECT_TRUE(HasLine(text, name + "{shard=\"0\"} 0")) << name;
      EXPECT_TRUE(HasLine(text, name + " 0")) << name;
    }
  }
  // The histograms: HELP, TYPE, then for 1 shard and the sum each 9 buckets +
  // _sum + _count.
  EXPECT_TRUE(absl::StrContains(text, "# HELP pimap_store_link_wait_seconds "));
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_store_link_wait_seconds histogram"));
  EXPECT_TRUE(HasLine(
      text, "pimap_store_link_wait_seconds_bucket{shard=\"0\",le=\"+Inf\"} 0"));
  EXPECT_TRUE(HasLine(text, "pimap_store_link_wait_seconds_count 0"));
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_relay_unpark_seconds histogram"));
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_webpush_latency_seconds histogram"));
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_emn_latency_seconds histogram"));
  constexpr size_t kHistogramLines = 4 * (2 + 2 * (9 + 2));
  // The summaries (intake timings): HELP, TYPE, then _sum and _count for the
  // shard and for the total.
  for (const char* name : {"pimap_store_intake_handling_seconds",
                           "pimap_store_intake_queue_seconds"}) {
    EXPECT_TRUE(HasLine(text, absl::StrCat("# TYPE ", name, " summary")))
        << name;
    EXPECT_TRUE(HasLine(text, absl::StrCat(name, "_count{shard=\"0\"} 0")))
        << name;
    EXPECT_TRUE(HasLine(text, absl::StrCat(name, "_sum 0"))) << name;
  }
  constexpr size_t kSummaryLines = 2 * (2 + 2 * 2);
  // The intake's refusals by reason: HELP, TYPE, then per reason the shard
  // and the sum.
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_intake_rejected_total counter"));
  EXPECT_TRUE(HasLine(
      text, "pimap_intake_rejected_total{shard=\"0\",reason=\"bad_flag\"} 0"));
  EXPECT_TRUE(
      HasLine(text, "pimap_intake_rejected_total{reason=\"bad_flag\"} 0"));
  constexpr size_t kReasonLines =
      2 + 2 * static_cast<size_t>(IntakeReject::kCount);
  // The certificate reloads: HELP, TYPE, then per result the shard and the
  // sum.
  EXPECT_TRUE(HasLine(text, "# TYPE pimap_tls_reloads_total counter"));
  EXPECT_TRUE(HasLine(text, "pimap_tls_reloads_total{result=\"failed\"} 0"));
  constexpr size_t kReloadLines = 2 + 2 * 2;
  // N metrics x (HELP + TYPE) + pimap_shards sample + (N-1) x (1 shard + sum).
  std::vector<absl::string_view> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  const size_t n = metrics.size();
  EXPECT_EQ(lines.size(), n * 2 + 1 + (n - 1) * 2 + kHistogramLines +
                              kSummaryLines + kReasonLines + kReloadLines);
}

TEST(ShardCountersTest, HistogramBucketsAreCumulativeAndSummed) {
  ShardCounters a, b;
  HistogramObserve(a.store_link_wait, 0);     // le 0.001
  HistogramObserve(a.store_link_wait, 1);     // le 0.001 (bounds inclusive)
  HistogramObserve(a.store_link_wait, 2);     // le 0.005
  HistogramObserve(a.store_link_wait, 700);   // le 1
  HistogramObserve(b.store_link_wait, 5000);  // le 5
  HistogramObserve(b.store_link_wait, 5001);  // +Inf only
  HistogramObserve(b.store_link_wait, -3);    // clamped to 0
  const ShardCounters* shards[] = {&a, &b};
  const std::string text = RenderPrometheus(shards);
  const std::string m = "pimap_store_link_wait_seconds";
  auto bucket = [&](const std::string& labels, const char* le, int count) {
    return absl::StrCat(m, "_bucket{", labels, "le=\"", le, "\"} ", count);
  };
  const std::string s0 = "shard=\"0\",";
  EXPECT_TRUE(HasLine(text, bucket(s0, "0.001", 2))) << text;
  EXPECT_TRUE(HasLine(text, bucket(s0, "0.005", 3)));
  EXPECT_TRUE(HasLine(text, bucket(s0, "0.5", 3)));
  EXPECT_TRUE(HasLine(text, bucket(s0, "1", 4)));
  EXPECT_TRUE(HasLine(text, bucket(s0, "+Inf", 4)));
  EXPECT_TRUE(HasLine(text, m + "_sum{shard=\"0\"} 0.703"));
  EXPECT_TRUE(HasLine(text, m + "_count{shard=\"0\"} 4"));
  const std::string s1 = "shard=\"1\",";
  EXPECT_TRUE(HasLine(text, bucket(s1, "0.001", 1)));
  EXPECT_TRUE(HasLine(text, bucket(s1, "1", 1)));
  EXPECT_TRUE(HasLine(text, bucket(s1, "5", 2)));
  EXPECT_TRUE(HasLine(text, bucket(s1, "+Inf", 3)));
  EXPECT_TRUE(HasLine(text, m + "_sum{shard=\"1\"} 10.001"));
  // Sum over shards, without a shard label.
  EXPECT_TRUE(HasLine(text, bucket("", "0.001", 3)));
  EXPECT_TRUE(HasLine(text, bucket("", "0.01", 4)));
  EXPECT_TRUE(HasLine(text, bucket("", "5", 6)));
  EXPECT_TRUE(HasLine(text, bucket("", "+Inf", 7)));
  EXPECT_TRUE(HasLine(text, m + "_sum 10.704"));
  EXPECT_TRUE(HasLine(text, m + "_count 7"));
}

TEST(ShardCountersTest, IntakeRefusalsByReasonAreSummed) {
  ShardCounters a, b;
  auto& bad_flag =
      a.intake_rejected_by_reason[static_cast<size_t>(IntakeReject::kBadFlag)];
  bad_flag.fetch_add(2);
  b.intake_rejected_by_reason[static_cast<size_t>(IntakeReject::kBadFlag)]
      .fetch_add(3);
  b.intake_rejected_by_reason[static_cast<size_t>(IntakeReject::kBodyTooLarge)]
      .fetch_add(1);
  const ShardCounters* shards[] = {&a, &b};
  const std::string text = RenderPrometheus(shards);
  const std::string m = "pimap_intake_rejected_total";
  EXPECT_TRUE(HasLine(text, m + "{shard=\"0\",reason=\"bad_flag\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, m + "{shard=\"1\",reason=\"bad_flag\"} 3"));
  EXPECT_TRUE(HasLine(text, m + "{reason=\"bad_flag\"} 5"));
  EXPECT_TRUE(HasLine(text, m + "{reason=\"body_too_large\"} 1"));
  EXPECT_TRUE(HasLine(text, m + "{reason=\"too_many_events\"} 0"));
}

TEST(ShardCountersTest, TlsReloadsByResult) {
  ShardCounters a, b;
  a.tls_reloads_ok.store(2);
  a.tls_reloads_failed.store(1);
  const ShardCounters* shards[] = {&a, &b};
  const std::string text = RenderPrometheus(shards);
  const std::string m = "pimap_tls_reloads_total";
  EXPECT_TRUE(HasLine(text, "# TYPE " + m + " counter")) << text;
  EXPECT_TRUE(HasLine(text, m + "{shard=\"0\",result=\"ok\"} 2"));
  EXPECT_TRUE(HasLine(text, m + "{shard=\"1\",result=\"failed\"} 0"));
  EXPECT_TRUE(HasLine(text, m + "{result=\"ok\"} 2"));
  EXPECT_TRUE(HasLine(text, m + "{result=\"failed\"} 1"));
}

TEST(ShardCountersTest, NoShards) {
  const std::string text = RenderPrometheus({});
  EXPECT_TRUE(HasLine(text, "pimap_shards 0"));
  EXPECT_TRUE(HasLine(text, "pimap_logins_total 0"));
  EXPECT_FALSE(absl::StrContains(text, "shard=\""));
}

TEST(ShardCountersTest, CountersAreCacheLineSeparated) {
  EXPECT_EQ(alignof(ShardCounters), 64u);
  std::vector<ShardCounters> v(2);
  EXPECT_GE(
      reinterpret_cast<uintptr_t>(&v[1]) - reinterpret_cast<uintptr_t>(&v[0]),
      64u);
}

TEST(ShardCountersTest, SingleWriterPerShardWhileRendering) {
  constexpr int kShards = 2;
  constexpr uint64_t kIncrements = 200000;
  std::vector<std::unique_ptr<ShardCounters>> counters;
  std::vector<const ShardCounters*> ptrs;
  for (int i = 0; i < kShards; ++i) {
    counters.push_back(std::make_unique<ShardCounters>());
    ptrs.push_back(counters.back().get());
  }
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      const std::string text = RenderPrometheus(ptrs);
      ASSERT_TRUE(absl::StrContains(text, "pimap_commands_relayed_total "));
    }
  });
  std::vector<std::thread> writers;
  for (int i = 0; i < kShards; ++i) {
    writers.emplace_back([c = counters[i].get()] {
      for (uint64_t n = 0; n < kIncrements; ++n) {
        CounterAdd(c->commands_relayed);
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  EXPECT_TRUE(HasLine(
      RenderPrometheus(ptrs),
      "pimap_commands_relayed_total " + std::to_string(kShards * kIncrements)));
}

}  // namespace
}  // namespace pimap
