// Formatting of log records as logfmt, JSON or the plain text of old
// (log_format.h).
#include "core/base/log_format.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/json_string.h"
#include "core/base/log.h"  // LogLevelName

namespace pimap {
namespace {

// Longer values are cut: a runaway message (e.g. a whole literal) must not
// flood the log, and shorter writes stay atomic on more sinks. Peer-given
// names get less room than the message.
constexpr size_t kMaxMessageBytes = 8 * 1024;
constexpr size_t kMaxValueBytes = 1024;
constexpr char kTruncated[] = "...(truncated)";

absl::string_view Cut(absl::string_view s, size_t max, bool* truncated) {
  *truncated = s.size() > max;
  return *truncated ? s.substr(0, max) : s;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

std::string Timestamp(absl::Time when) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", when, absl::UTCTimeZone());
}

// Escapes for text inside logfmt quotes, and for the text format's message
// (which keeps tabs and quotes as they are: it is read by eye).
void AppendEscaped(std::string* out, absl::string_view s, bool quoted) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append(quoted ? "\\t" : "\t");
    } else if (quoted && (c == '"' || c == '\\')) {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(out, "\\x%02x", u);
    } else {
      out->push_back(c);
    }
  }
}

bool NeedsQuotes(absl::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') {
      return true;
    }
  }
  return false;
}

void AppendQuoted(std::string* out, absl::string_view value, size_t max) {
  bool truncated;
  value = Cut(value, max, &truncated);
  out->push_back('"');
  AppendEscaped(out, value, /*quoted=*/true);
  if (truncated) out->append(kTruncated);
  out->push_back('"');
}

void AppendLogfmtCut(std::string* out, absl::string_view value, size_t max) {
  if (value.size() > max || NeedsQuotes(value)) {
    AppendQuoted(out, value, max);
  } else {
    out->append(value.data(), value.size());
  }
}

// Invalid UTF-8 (a name cut in the middle of a character, Latin-1 from an
// old client) becomes U+FFFD so that the line stays valid JSON.
std::string ValidUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      out.push_back(s[i++]);
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = len == 0 ? 0 : (c & (0xff >> (len + 1)));
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3f);
    }
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
  return out;
}

void AppendJson(std::string* out, absl::string_view value, size_t max) {
  bool truncated;
  value = Cut(value, max, &truncated);
  std::string v = ValidUtf8(value);
  if (truncated) v.append(kTruncated);
  AppendJsonString(out, v);
}

std::string FormatLogfmt(const LogRecord& r) {
  std::string line = absl::StrCat("ts=", Timestamp(r.when),
                                  " level=", LogLevelName(r.level), " shard=");
  if (r.shard < 0) {
    line.append("main");
  } else {
    absl::StrAppend(&line, r.shard);
  }
  if (r.conn != 0) absl::StrAppend(&line, " conn=", r.conn);
  if (!r.user.empty()) {
    line.append(" user=");
    AppendLogfmtCut(&line, r.user, kMaxValueBytes);
  }
  if (!r.device.empty()) {
    line.append(" device=");
    AppendLogfmtCut(&line, r.device, kMaxValueBytes);
  }
  if (r.client.known()) absl::StrAppend(&line, " client=", r.client.ToString());
  if (!r.event.empty()) {
    line.append(" event=");
    AppendLogfmtCut(&line, r.event, kMaxValueBytes);
  }
  for (const auto& [key, value] : r.fields) {
    absl::StrAppend(&line, " ", key, "=");
    AppendLogfmtCut(&line, value, kMaxValueBytes);
  }
  line.append(" msg=");
  AppendLogfmtCut(&line, r.message, kMaxMessageBytes);
  line.push_back('\n');
  return line;
}

std::string FormatJson(const LogRecord& r) {
  std::string line =
      absl::StrCat("{\"ts\":\"", Timestamp(r.when), "\",\"level\":\"",
                   LogLevelName(r.level), "\",\"shard\":");
  if (r.shard < 0) {
    line.append("\"main\"");
  } else {
    absl::StrAppend(&line, r.shard);
  }
  if (r.conn != 0) absl::StrAppend(&line, ",\"conn\":", r.conn);
  if (!r.user.empty()) {
    line.append(",\"user\":");
    AppendJson(&line, r.user, kMaxValueBytes);
  }
  if (!r.device.empty()) {
    line.append(",\"device\":");
    AppendJson(&line, r.device, kMaxValueBytes);
  }
  if (r.client.known()) {
    absl::StrAppend(&line, ",\"client\":\"", r.client.ToString(), "\"");
  }
  if (!r.event.empty()) {
    line.append(",\"event\":");
    AppendJson(&line, r.event, kMaxValueBytes);
  }
  for (const auto& [key, value] : r.fields) {
    line.push_back(',');
    AppendJson(&line, key, kMaxValueBytes);
    line.push_back(':');
    AppendJson(&line, value, kMaxValueBytes);
  }
  line.append(",\"msg\":");
  AppendJson(&line, r.message, kMaxMessageBytes);
  line.append("}\n");
  return line;
}

// The format of old, for people who read the log by eye: the fields that used
// to be part of the message are put where they were.
std::string FormatText(const LogRecord& r) {
  std::string line = Timestamp(r.when);
  line.push_back(' ');
  line.push_back(LevelLetter(r.level));
  if (r.shard < 0) {
    line.append(" shard=main ");
  } else {
    absl::StrAppend(&line, " shard=", r.shard, " ");
  }
  if (r.client.known()) {
    absl::StrAppend(&line, "client=", r.client.ToString(), " ");
  }
  bool truncated;
  AppendEscaped(&line, Cut(r.message, kMaxMessageBytes, &truncated),
                /*quoted=*/false);
  if (truncated) line.append(kTruncated);
  if (!r.user.empty()) {
    line.append(" user=");
    AppendQuoted(&line, r.user, kMaxValueBytes);
  }
  if (!r.device.empty()) {
    line.append(" device=");
    AppendQuoted(&line, r.device, kMaxValueBytes);
  }
  for (const auto& [key, value] : r.fields) {
    absl::StrAppend(&line, " ", key, "=");
    AppendLogfmtCut(&line, value, kMaxValueBytes);
  }
  if (r.conn != 0) absl::StrAppend(&line, " conn=", r.conn);
  line.push_back('\n');
  return line;
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "logfmt") return LogFormat::kLogfmt;
  if (lower == "json") return LogFormat::kJson;
  if (lower == "text") return LogFormat::kText;
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid log format \"", name, "\": expected logfmt, json or text"));
}

absl::string_view LogFormatName(LogFormat format) {
  switch (format) {
    case LogFormat::kLogfmt:
      return "logfmt";
    case LogFormat::kJson:
      return "json";
    case LogFormat::kText:
      return "text";
  }
  return "unknown";
}

namespace log_internal {

void AppendLogfmtValue(std::string* out, absl::string_view value) {
  AppendLogfmtCut(out, value, kMaxMessageBytes);
}

std::string FormatRecord(LogFormat format, const LogRecord& record) {
  switch (format) {
    case LogFormat::kJson:
      return FormatJson(record);
    case LogFormat::kText:
      return FormatText(record);
    case LogFormat::kLogfmt:
      break;
  }
  return FormatLogfmt(record);
}

}  // namespace log_internal
}  // namespace pimap
