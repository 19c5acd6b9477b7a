// Minimal logging for pimap: a global level, a per-thread shard id, and the
// PIMAP_LOG(LEVEL) stream macro. Each message becomes exactly one line on
// stderr, emitted with a single write(2):
//
//   2026-11-28T16:01:02.123Z I shard=1 text
//
// (UTC timestamp with milliseconds, level letter D/I/W/E, the shard of the
// calling thread or "main" for threads that are not shards.)
//
// SECURITY: never log secrets. Passwords, AUTHENTICATE payloads (they are
// base64 credentials), LOGIN arguments, TLS keys and session tickets must not
// reach PIMAP_LOG at any level, including DEBUG. Log the user name and the
// fact that authentication happened, not what was sent.
//
// Control characters in the message (CR, LF, ...) are escaped as \r, \n,
// \xNN so that peer-controlled text cannot forge additional log lines.
//
// Cost when disabled: one relaxed atomic load and a branch; the stream
// operands are not evaluated.
#ifndef PIMAP_CORE_BASE_LOG_H_
#define PIMAP_CORE_BASE_LOG_H_

#include <atomic>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pimap {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below `level` are discarded. Thread-safe; default kInfo.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Accepts "debug", "info", "warning" or "warn", "error" (case-insensitive).
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
// "debug", "info", "warning", "error".
absl::string_view LogLevelName(LogLevel level);

// Tags subsequent messages from the calling thread with shard=`shard`; -1
// (the default) means the main/admin thread and prints as "shard=main".
void SetThreadShard(int shard);
int GetThreadShard();

// From here on, lines of shard threads go to a background writer through a
// bounded lock-free queue, so that a slow stderr (a full pipe, a stalled disk)
// never stalls a shard; the writer batches them into few write(2)s. A full
// queue drops the line (counted; the writer then says how many it lost).
// Lines of other threads, and all lines before Start and after Stop, are
// written at once. Call Stop before exit: it writes what is queued.
void StartAsyncLogWriter(size_t max_queued_lines = 65536);
void StopAsyncLogWriter();
// Lines dropped because the queue was full, since the start.
uint64_t LogLinesDropped();

namespace log_internal {

extern std::atomic<int> g_min_level;

inline bool IsEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

// Builds the complete line (with trailing '\n'). Exposed for tests.
std::string FormatLine(LogLevel level, int shard, absl::Time when,
                       absl::string_view message);

// Collects one message and writes it in its destructor.
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Turns the `stream << ...` expression into void so that both arms of the
// ?: in PIMAP_LOG have the same type. `&` binds looser than `<<`.
struct Voidify {
  void operator&(std::ostream&) {}
};

inline constexpr LogLevel kLevel_DEBUG = LogLevel::kDebug;
inline constexpr LogLevel kLevel_INFO = LogLevel::kInfo;
inline constexpr LogLevel kLevel_WARNING = LogLevel::kWarning;
inline constexpr LogLevel kLevel_ERROR = LogLevel::kError;

}  // namespace log_internal
}  // namespace pimap

// PIMAP_LOG(DEBUG|INFO|WARNING|ERROR) << ...;  One expression, so it is safe
// in an unbraced if/else.
#define PIMAP_LOG(severity)                                                   \
  !::pimap::log_internal::IsEnabled(::pimap::log_internal::kLevel_##severity) \
      ? (void)0                                                               \
      : ::pimap::log_internal::Voidify() &                                    \
            ::pimap::log_internal::LogMessage(                                \
                ::pimap::log_internal::kLevel_##severity)                     \
                .stream()

#endif  // PIMAP_CORE_BASE_LOG_H_
