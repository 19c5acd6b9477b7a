// Logging implementation (see log.h): formatting and the single write(2).
#include "core/base/log.h"

#include <errno.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pimap {
namespace {

thread_local int t_shard = -1;

// Longer messages are truncated: a runaway message (e.g. a whole literal)
// must not flood the log, and shorter writes stay atomic on more sinks.
constexpr size_t kMaxMessageBytes = 8 * 1024;

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

void AppendEscaped(std::string& out, absl::string_view message) {
  bool truncated = false;
  if (message.size() > kMaxMessageBytes) {
    message = message.substr(0, kMaxMessageBytes);
    truncated = true;
  }
  for (char c : message) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t' || (u >= 0x20 && u != 0x7f)) {
      out += c;
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    }
  }
  if (truncated) out += "...(truncated)";
}

void WriteAll(int fd, absl::string_view data) {
  // One write(2) normally suffices and keeps the line atomic with respect
  // to other threads (fully for O_APPEND files and for pipes up to
  // PIPE_BUF). Retry only on EINTR / partial writes; give up on errors
  // because there is nowhere left to report them.
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

namespace log_internal {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

std::string FormatLine(LogLevel level, int shard, absl::Time when,
                       absl::string_view message) {
  std::string line =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", when, absl::UTCTimeZone());
  line += ' ';
  line += LevelLetter(level);
  if (shard < 0) {
    line += " shard=main ";
  } else {
    absl::StrAppend(&line, " shard=", shard, " ");
  }
  AppendEscaped(line, message);
  line += '\n';
  return line;
}

LogMessage::~LogMessage() {
  const std::string line =
      FormatLine(level_, t_shard, absl::Now(), stream_.str());
  WriteAll(STDERR_FILENO, line);
}

}  // namespace log_internal

void SetLogLevel(LogLevel level) {
  log_internal::g_min_level.store(static_cast<int>(level),
                                  std::memory_order_relaxed);
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(
      log_internal::g_min_level.load(std::memory_order_relaxed));
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid log level \"", name,
                   "\": expected debug, info, warning or error"));
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

void SetThreadShard(int shard) { t_shard = shard < 0 ? -1 : shard; }

int GetThreadShard() { return t_shard; }

}  // namespace pimap
