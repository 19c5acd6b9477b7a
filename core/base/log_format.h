// The three shapes of a log line (--log-format) and the record they are made
// from. One record, one line, with the keys in a fixed order:
//
//   logfmt: ts=2026-12-07T21:00:00.123Z level=info shard=1 conn=42001
//           user=alice device=phone1 client=127.0.0.1:40000 event=login.ok
//           msg=login
//   json: {"ts":"...","level":"info","shard":1,"conn":42001,...,"msg":"login"}
//   text:   2026-12-07T21:00:00.123Z I shard=1 client=127.0.0.1:40000 login
//           user="alice" device="phone1" conn=42001
//
// (logfmt and JSON are one line each; wrapped here.) A key whose value is not
// known is left out (no user before the login). Peer-controlled text (a user
// name, a message quoting a command) can neither end the line nor forge a key:
// logfmt quotes any value with a space, '"', '=', '\' or control character and
// escapes inside the quotes; JSON escapes per RFC 8259 and replaces invalid
// UTF-8 so that every line parses. Kept apart from log.cc so that tests can
// format records without a writer.
#ifndef PIMAP_CORE_BASE_LOG_FORMAT_H_
#define PIMAP_CORE_BASE_LOG_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/base/client_address.h"

namespace pimap {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

enum class LogFormat { kLogfmt = 0, kJson = 1, kText = 2 };

// "logfmt", "json" or "text" (case-insensitive).
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);
absl::string_view LogFormatName(LogFormat format);

// One event, as a PIMAP_LOG statement collected it. Views: valid while the
// line is formatted.
struct LogRecord {
  LogLevel level = LogLevel::kInfo;
  int shard = -1;  // -1: not a shard thread ("main")
  absl::Time when;
  uint64_t conn = 0;         // 0: no connection
  absl::string_view user;    // empty: unknown
  absl::string_view device;  // empty: none
  Endpoint client;           // unknown: left out
  absl::string_view event;   // empty: none ("login.ok", ...)
  // More keys, after event and before msg, in this order ("reason", ...).
  absl::Span<const std::pair<absl::string_view, std::string>> fields;
  absl::string_view message;
};

namespace log_internal {

// The complete line with its trailing '\n'.
std::string FormatRecord(LogFormat format, const LogRecord& record);

// A logfmt value: bare when it can be, else quoted and escaped. Exposed for
// tests.
void AppendLogfmtValue(std::string* out, absl::string_view value);

}  // namespace log_internal
}  // namespace pimap

#endif  // PIMAP_CORE_BASE_LOG_FORMAT_H_
