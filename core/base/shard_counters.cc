// Prometheus rendering of ShardCounters (see shard_counters.h). Adding a
// metric = one field in the struct + one row in kMetrics.
#include "core/base/shard_counters.h"

#include <variant>

#include "absl/strings/str_cat.h"

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
    {"pimap_connections_accepted_total", "Device connections accepted.",
     &ShardCounters::connections_accepted},
    {"pimap_handovers_out_total",
     "Connections handed over to the user's owner shard.",
     &ShardCounters::handovers_out},
    {"pimap_handovers_in_total",
     "Connections received from another shard by handover.",
     &ShardCounters::handovers_in},
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
     "Resumes reconciled with the store exactly (CONDSTORE/QRESYNC) instead of a "
     "journal replay or a RESYNC.",
     &ShardCounters::rebuilds},
    {"pimap_events_deduplicated_total",
     "Store events dropped because the other source had reported them already.",
     &ShardCounters::events_deduplicated},
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

}  // namespace

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
  return out;
}

}  // namespace pimap
