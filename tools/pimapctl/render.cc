// pimapctl's human output (render.h).
#include "tools/pimapctl/render.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/json_string.h"
#include "rapidjson/document.h"

namespace pimap::ctl {

namespace {

using Value = rapidjson::Value;

std::string Str(const Value& v, const char* name) {
  if (!v.IsObject() || !v.HasMember(name) || !v[name].IsString()) return "";
  return std::string(v[name].GetString(), v[name].GetStringLength());
}

int64_t Int(const Value& v, const char* name) {
  if (!v.IsObject() || !v.HasMember(name)) return 0;
  const Value& x = v[name];
  if (x.IsInt64()) return x.GetInt64();
  if (x.IsUint64()) return static_cast<int64_t>(x.GetUint64());
  return 0;
}

bool Bool(const Value& v, const char* name) {
  return v.IsObject() && v.HasMember(name) && v[name].IsBool() &&
         v[name].GetBool();
}

absl::StatusOr<rapidjson::Document> Parse(absl::string_view json,
                                          const char* array) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember(array) ||
      !doc[array].IsArray()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected answer from pimapd: ", json.substr(0, 200)));
  }
  return doc;
}

// The shards that did not answer, and the bound, as trailing notes.
std::string Notes(const rapidjson::Document& doc) {
  std::string out;
  if (doc.HasMember("missing_shards") && doc["missing_shards"].IsArray() &&
      !doc["missing_shards"].Empty()) {
    std::vector<std::string> ids;
    for (const Value& id : doc["missing_shards"].GetArray()) {
      if (id.IsInt()) ids.push_back(absl::StrCat(id.GetInt()));
    }
    absl::StrAppend(&out, "warning: shard(s) ", absl::StrJoin(ids, ", "),
                    " did not answer in time; their sessions are missing\n");
  }
  if (Bool(doc, "truncated")) {
    out += "warning: truncated (more rows than pimapd reports at once)\n";
  }
  return out;
}

std::string Name(const Value& v) {
  return absl::StrCat(Str(v, "user"), "#", Str(v, "device"));
}

// The durable XFILTER / XSETPIMAPPREF lines without their tag and header.
std::vector<std::string> CommandLines(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view line :
       absl::StrSplit(text, "\r\n", absl::SkipEmpty())) {
    const size_t space = line.find(' ');
    absl::string_view rest =
        space == absl::string_view::npos ? line : line.substr(space + 1);
    if (absl::StartsWith(rest, "PIMAP-")) continue;  // the version header
    out.emplace_back(rest);
  }
  return out;
}

}  // namespace

std::string AlignColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out += std::string(absl::StripTrailingAsciiWhitespace(line));
    out += "\n";
  }
  return out;
}

std::string HumanDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return absl::StrCat(ms, "ms");
  const int64_t s = ms / 1000;
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, (s % 86400) / 3600);
}

absl::StatusOr<std::string> RenderWho(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = Parse(json, "devices");
  if (!doc.ok()) return doc.status();
  std::string out;
  const Value& devices = (*doc)["devices"];
  if (devices.Empty()) {
    out += "no P-IMAP device sessions\n";
  } else {
    std::vector<std::vector<std::string>> rows = {{"USER", "DEVICE", "SHARD",
                                                   "BINDING", "STATE", "IDLE",
                                                   "STORE-LINK", "JOURNAL"}};
    for (const Value& d : devices.GetArray()) {
      const bool connected = Bool(d, "connected");
      rows.push_back(
          {Str(d, "user"), Str(d, "device"), absl::StrCat(Int(d, "shard")),
           connected ? Str(d, "binding") : "-",
           connected ? "connected" : "away", HumanDuration(Int(d, "idle_ms")),
           Bool(d, "store_link") ? "yes" : "no",
           absl::StrCat(Int(d, "journal"))});
    }
    out += AlignColumns(rows);
  }
  if (doc->HasMember("users") && (*doc)["users"].IsArray() &&
      !(*doc)["users"].Empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"USER", "SHARD", "PARKED-STOCK-CLIENTS", "STORE-WATCH"}};
    for (const Value& u : (*doc)["users"].GetArray()) {
      rows.push_back({Str(u, "user"), absl::StrCat(Int(u, "shard")),
                      absl::StrCat(Int(u, "parked")),
                      Bool(u, "watch") ? "open" : "none"});
    }
    out += "\n";
    out += AlignColumns(rows);
  }
  out += Notes(*doc);
  return out;
}

absl::StatusOr<std::string> RenderSessions(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = Parse(json, "sessions");
  if (!doc.ok()) return doc.status();
  std::string out;
  const Value& sessions = (*doc)["sessions"];
  if (sessions.Empty()) out += "no P-IMAP device sessions\n";
  for (const Value& s : sessions.GetArray()) {
    if (!out.empty()) out += "\n";
    const bool connected = Bool(s, "connected");
    absl::StrAppend(
        &out, Name(s), "  (shard ", Int(s, "shard"), ", session ",
        Int(s, "session_id"), ", ",
        connected ? absl::StrCat("connected via ", Str(s, "binding")) : "away",
        ", idle ", HumanDuration(Int(s, "idle_ms")), ")\n");
    std::vector<std::vector<std::string>> rows;
    const std::string selected = Str(s, "selected");
    rows.push_back(
        {"  selected:",
         selected.empty()
             ? "-"
             : absl::StrCat(selected,
                            Bool(s, "read_only") ? " (read-only)" : "")});
    rows.push_back({"  journal:", absl::StrCat(Int(s, "journal"), " of ",
                                               Int(s, "journal_limit"))});
    if (s.HasMember("checkpoint") && s["checkpoint"].IsObject()) {
      const Value& c = s["checkpoint"];
      rows.push_back(
          {"  checkpoint:",
           absl::StrCat("uidvalidity ", Int(c, "uidvalidity"), ", modseq ",
                        Int(c, "modseq"), ", ", Int(c, "messages"), " messages",
                        Bool(c, "dirty") ? ", dirty" : "",
                        Bool(c, "restored") ? ", restored" : "")});
    }
    rows.push_back({"  store link:", Bool(s, "store_link") ? "yes" : "no"});
    rows.push_back({"  folder events:", absl::StrCat(Int(s, "folder_events"))});
    std::vector<std::string> filters = CommandLines(Str(s, "filters"));
    std::vector<std::string> prefs = CommandLines(Str(s, "prefs"));
    for (size_t i = 0; i < std::max<size_t>(filters.size(), 1); ++i) {
      rows.push_back({i == 0 ? "  filters:" : "",
                      filters.empty() ? "(defaults)" : filters[i]});
    }
    for (size_t i = 0; i < std::max<size_t>(prefs.size(), 1); ++i) {
      rows.push_back(
          {i == 0 ? "  prefs:" : "", prefs.empty() ? "(defaults)" : prefs[i]});
    }
    out += AlignColumns(rows);
  }
  out += Notes(*doc);
  return out;
}

absl::StatusOr<std::string> RenderKick(absl::string_view json) {
  absl::StatusOr<rapidjson::Document> doc = Parse(json, "kicked");
  if (!doc.ok()) return doc.status();
  std::string out;
  for (const Value& k : (*doc)["kicked"].GetArray()) {
    std::vector<std::string> did;
    if (Bool(k, "was_connected")) {
      did.push_back(Bool(k, "closed") ? "connection closed"
                                      : "told to close (still closing)");
    }
    if (Bool(k, "forgotten")) did.push_back("session ended");
    if (did.empty()) did.push_back("not connected; nothing done");
    absl::StrAppend(&out, Name(k), " (shard ", Int(k, "shard"),
                    "): ", absl::StrJoin(did, ", "), "\n");
  }
  out += Notes(*doc);
  return out;
}

absl::StatusOr<std::string> RenderDrain(absl::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject() ||
      !doc.HasMember("drained_connections")) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected answer from pimapd: ", json.substr(0, 200)));
  }
  return absl::StrCat("draining: device listeners closed, ",
                      Int(doc, "drained_connections"),
                      " connection(s) told BYE [UNAVAILABLE]\n", Notes(doc));
}

std::string ErrorMessage(absl::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("error") &&
      doc["error"].IsString()) {
    return doc["error"].GetString();
  }
  return std::string(absl::StripTrailingAsciiWhitespace(body));
}

std::string RenderStats(absl::string_view prometheus, bool json) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(prometheus, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    const absl::string_view name = line.substr(0, space);
    // Per-shard samples and histogram buckets stay in /metrics.
    if (absl::StrContains(name, "{")) continue;
    rows.push_back({std::string(name), std::string(line.substr(space + 1))});
  }
  if (!json) return AlignColumns(rows);
  std::string out = "{";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) out += ",";
    AppendJsonString(&out, rows[i][0]);
    // Prometheus values are numbers (NaN and Inf are not JSON: as strings).
    const std::string& v = rows[i][1];
    double d;
    if (absl::SimpleAtod(v, &d) && std::isfinite(d)) {
      absl::StrAppend(&out, ":", v);
    } else {
      out += ":";
      AppendJsonString(&out, v);
    }
  }
  out += "}\n";
  return out;
}

}  // namespace pimap::ctl
