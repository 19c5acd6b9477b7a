// The admin commands' reports: merging the shards' answers and their JSON.
#include "tools/pimapd/admin_report.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/json_string.h"

namespace pimap {

namespace {

template <typename T, typename Key>
void SortAndBound(std::vector<T>& rows, Key key, bool* truncated) {
  std::sort(rows.begin(), rows.end(),
            [&](const T& a, const T& b) { return key(a) < key(b); });
  if (rows.size() > kAdminMaxRows) {
    rows.resize(kAdminMaxRows);
    *truncated = true;
  }
}

void Field(std::string* out, absl::string_view name, absl::string_view value) {
  AppendJsonString(out, name);
  out->push_back(':');
  AppendJsonString(out, value);
}

template <typename Int>
void Number(std::string* out, absl::string_view name, Int value) {
  AppendJsonString(out, name);
  absl::StrAppend(out, ":", value);
}

void Bool(std::string* out, absl::string_view name, bool value) {
  AppendJsonString(out, name);
  out->append(value ? ":true" : ":false");
}

void DeviceFields(std::string* out, const AdminDevice& d) {
  Field(out, "user", d.user);
  out->push_back(',');
  Field(out, "device", d.device);
  out->push_back(',');
  Number(out, "shard", d.shard);
  out->push_back(',');
  Bool(out, "connected", d.connected);
  out->push_back(',');
  Field(out, "binding", d.binding);
  out->push_back(',');
  Number(out, "idle_ms", d.idle_ms);
  out->push_back(',');
  Bool(out, "store_link", d.store_link);
  out->push_back(',');
  Number(out, "journal", d.journal);
}

// The common tail: the missing shards and the bound.
void Tail(std::string* out, const AdminShardReport& merged,
          const std::vector<int>& missing) {
  out->append(",\"missing_shards\":[");
  for (size_t i = 0; i < missing.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, missing[i]);
  }
  out->append("],");
  Bool(out, "truncated", merged.truncated);
  out->append("}\n");
}

}  // namespace

AdminShardReport MergeReports(std::vector<AdminShardReport> reports) {
  AdminShardReport merged;
  for (AdminShardReport& r : reports) {
    merged.truncated = merged.truncated || r.truncated;
    merged.drained += r.drained;
    for (auto& d : r.devices) merged.devices.push_back(std::move(d));
    for (auto& u : r.users) merged.users.push_back(std::move(u));
    for (auto& s : r.sessions) merged.sessions.push_back(std::move(s));
    for (auto& k : r.kicked) merged.kicked.push_back(std::move(k));
  }
  SortAndBound(
      merged.devices,
      [](const AdminDevice& d) { return std::tie(d.user, d.device); },
      &merged.truncated);
  SortAndBound(
      merged.users, [](const AdminUser& u) { return std::tie(u.user); },
      &merged.truncated);
  SortAndBound(
      merged.sessions,
      [](const AdminSession& s) {
        return std::tie(s.device.user, s.device.device);
      },
      &merged.truncated);
  SortAndBound(
      merged.kicked,
      [](const AdminKicked& k) { return std::tie(k.user, k.device); },
      &merged.truncated);
  return merged;
}

std::string RenderWhoJson(const AdminShardReport& merged,
                          const std::vector<int>& missing) {
  std::string out = "{\"devices\":[";
  for (size_t i = 0; i < merged.devices.size(); ++i) {
    out.append(i > 0 ? ",{" : "{");
    DeviceFields(&out, merged.devices[i]);
    out.push_back('}');
  }
  out.append("],\"users\":[");
  for (size_t i = 0; i < merged.users.size(); ++i) {
    const AdminUser& u = merged.users[i];
    out.append(i > 0 ? ",{" : "{");
    Field(&out, "user", u.user);
    out.push_back(',');
    Number(&out, "shard", u.shard);
    out.push_back(',');
    Number(&out, "parked", u.parked);
    out.push_back(',');
    Bool(&out, "watch", u.watch);
    out.push_back('}');
  }
  out.push_back(']');
  Tail(&out, merged, missing);
  return out;
}

std::string RenderSessionsJson(const AdminShardReport& merged,
                               const std::vector<int>& missing) {
  std::string out = "{\"sessions\":[";
  for (size_t i = 0; i < merged.sessions.size(); ++i) {
    const AdminSession& s = merged.sessions[i];
    out.append(i > 0 ? ",{" : "{");
    DeviceFields(&out, s.device);
    out.push_back(',');
    Number(&out, "session_id", s.session_id);
    out.push_back(',');
    Field(&out, "selected", s.selected);
    out.push_back(',');
    Bool(&out, "read_only", s.read_only);
    out.push_back(',');
    Number(&out, "journal_limit", s.journal_limit);
    out.push_back(',');
    Field(&out, "filters", s.filters);
    out.push_back(',');
    Field(&out, "prefs", s.prefs);
    out.append(",\"checkpoint\":{");
    Number(&out, "uidvalidity", s.uidvalidity);
    out.push_back(',');
    Number(&out, "modseq", s.modseq);
    out.push_back(',');
    Number(&out, "messages", s.view_messages);
    out.push_back(',');
    Bool(&out, "dirty", s.checkpoint_dirty);
    out.push_back(',');
    Bool(&out, "restored", s.restored);
    out.append("},");
    Number(&out, "folder_events", s.folder_events);
    out.push_back('}');
  }
  out.push_back(']');
  Tail(&out, merged, missing);
  return out;
}

std::string RenderKickJson(const AdminShardReport& merged,
                           const std::vector<int>& missing) {
  std::string out = "{\"kicked\":[";
  for (size_t i = 0; i < merged.kicked.size(); ++i) {
    const AdminKicked& k = merged.kicked[i];
    out.append(i > 0 ? ",{" : "{");
    Field(&out, "user", k.user);
    out.push_back(',');
    Field(&out, "device", k.device);
    out.push_back(',');
    Number(&out, "shard", k.shard);
    out.push_back(',');
    Bool(&out, "was_connected", k.was_connected);
    out.push_back(',');
    Bool(&out, "closed", k.closed);
    out.push_back(',');
    Bool(&out, "forgotten", k.forgotten);
    out.push_back('}');
  }
  out.push_back(']');
  Tail(&out, merged, missing);
  return out;
}

std::string RenderDrainJson(const AdminShardReport& merged,
                            const std::vector<int>& missing) {
  std::string out = "{";
  Number(&out, "drained_connections", merged.drained);
  Tail(&out, merged, missing);
  return out;
}

std::string RenderErrorJson(const std::string& message,
                            const std::vector<int>& missing) {
  std::string out = "{";
  Field(&out, "error", message);
  out.append(",\"missing_shards\":[");
  for (size_t i = 0; i < missing.size(); ++i) {
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, missing[i]);
  }
  out.append("]}\n");
  return out;
}

}  // namespace pimap
