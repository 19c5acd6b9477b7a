// Logging for pimap: a global level and format, a per-thread shard id, and
// the PIMAP_LOG(LEVEL) stream macro. Each message becomes exactly one line on
// stderr, in the format of --log-format (log_format.h): logfmt by default,
//
//   ts=2026-12-07T21:00:00.123Z level=info shard=1 conn=42001 user=alice
//   device=phone1 client=127.0.0.1:40000 event=login.ok msg=login
//
// JSON, or the text of old ("2026-11-28T16:01:02.123Z I shard=1 text").
// A line about a connection names it and its client (.Conn), and the user
// and device once known; lines that tools match (logins) name their event:
//
//   PIMAP_LOG(INFO).Conn(client_).User(user).Event("login.ok") << "login";
//
// SECURITY: never log secrets. Passwords, AUTHENTICATE payloads (they are
// base64 credentials), LOGIN arguments, TLS keys and session tickets must not
// reach PIMAP_LOG at any level, including DEBUG. Log the user name and the
// fact that authentication happened, not what was sent.
//
// Control characters and quotes in peer-controlled text are escaped so that
// it cannot forge additional log lines or keys.
//
// Cost when disabled: one relaxed atomic load and a branch; the stream
// operands (and the field calls) are not evaluated.
#ifndef PIMAP_CORE_BASE_LOG_H_
#define PIMAP_CORE_BASE_LOG_H_

#include <atomic>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/base/client_address.h"
#include "core/base/log_format.h"

namespace pimap {

// Messages below `level` are discarded. Thread-safe; default kInfo.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Accepts "debug", "info", "warning" or "warn", "error" (case-insensitive).
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
// "debug", "info", "warning", "error".
absl::string_view LogLevelName(LogLevel level);

// The shape of every line from now on; thread-safe; default logfmt.
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();

// A new connection's id for its log lines ("conn="), unique in the process:
// a counter of the calling thread's own (no shared atomic on the accept path)
// times 1000 plus the shard + 1, so 42003 is shard 2's 42nd connection.
uint64_t NewConnectionId();

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

// The line in the text format (with trailing '\n'). Exposed for tests.
std::string FormatLine(LogLevel level, int shard, absl::Time when,
                       absl::string_view message);

// Collects one message and writes it in its destructor.
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();

  LogMessage& self() { return *this; }
  // The connection the line is about: its id and the client's address.
  LogMessage& Conn(const ClientAddress& client) {
    conn_ = client.conn;
    client_ = client.peer;
    return *this;
  }
  LogMessage& User(absl::string_view user) {
    user_.assign(user.data(), user.size());
    return *this;
  }
  LogMessage& Device(absl::string_view device) {
    device_.assign(device.data(), device.size());
    return *this;
  }
  // What happened, for tools: "login.ok", "conn.close". A literal.
  LogMessage& Event(absl::string_view event) {
    event_ = event;
    return *this;
  }
  // One more key, written after event in call order; `key` is a literal.
  LogMessage& Field(absl::string_view key, absl::string_view value) {
    fields_.emplace_back(key, std::string(value));
    return *this;
  }
  template <typename T>
  LogMessage& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  uint64_t conn_ = 0;
  Endpoint client_;
  std::string user_;
  std::string device_;
  absl::string_view event_;
  std::vector<std::pair<absl::string_view, std::string>> fields_;
  std::ostringstream stream_;
};

// Turns the `stream << ...` expression into void so that both arms of the
// ?: in PIMAP_LOG have the same type. `&` binds looser than `<<`.
struct Voidify {
  void operator&(LogMessage&) {}
};

inline constexpr LogLevel kLevel_DEBUG = LogLevel::kDebug;
inline constexpr LogLevel kLevel_INFO = LogLevel::kInfo;
inline constexpr LogLevel kLevel_WARNING = LogLevel::kWarning;
inline constexpr LogLevel kLevel_ERROR = LogLevel::kError;

}  // namespace log_internal
}  // namespace pimap

// PIMAP_LOG(DEBUG|INFO|WARNING|ERROR)[.Conn(c).User(u)...] << ...;  One
// expression, so it is safe in an unbraced if/else.
#define PIMAP_LOG(severity)                                                   \
  !::pimap::log_internal::IsEnabled(::pimap::log_internal::kLevel_##severity) \
      ? (void)0                                                               \
      : ::pimap::log_internal::Voidify() &                                    \
            ::pimap::log_internal::LogMessage(                                \
                ::pimap::log_internal::kLevel_##severity)                     \
                .self()

#endif  // PIMAP_CORE_BASE_LOG_H_
