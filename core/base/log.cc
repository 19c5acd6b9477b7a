// Logging implementation (see log.h): level, format, the single write(2), and
// the background writer of shard threads' lines.
#include "core/base/log.h"

#include <errno.h>
#include <unistd.h>

#include <thread>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/mpsc_queue.h"

namespace pimap {
namespace {

thread_local int t_shard = -1;
thread_local uint64_t t_connections = 0;
std::atomic<int> g_format{static_cast<int>(LogFormat::kLogfmt)};

LogFormat CurrentFormat() {
  return static_cast<LogFormat>(g_format.load(std::memory_order_relaxed));
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

// The background writer (StartAsyncLogWriter). Never freed: a shard that
// loaded the pointer just before Stop may still push into it.
struct AsyncWriter {
  explicit AsyncWriter(size_t capacity) : queue(capacity) {}
  MpscQueue<std::string> queue;
  // Lines pushed and not yet taken, plus one when stopping: what the writer
  // sleeps on (futex-backed atomic wait; a producer wakes it only when it
  // was idle).
  std::atomic<uint32_t> pending{0};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> dropped{0};
  std::thread thread;
};

std::atomic<AsyncWriter*> g_writer{nullptr};
std::atomic<uint64_t> g_dropped_total{0};

void RunWriter(AsyncWriter* w) {
  constexpr size_t kMaxBatchBytes = 64 * 1024;
  uint64_t reported = 0;
  std::string batch;
  for (;;) {
    const uint32_t n = w->pending.load(std::memory_order_acquire);
    if (n == 0) {
      w->pending.wait(0, std::memory_order_acquire);
      continue;
    }
    batch.clear();
    uint32_t taken = 0;
    while (taken < n && batch.size() < kMaxBatchBytes) {
      std::optional<std::string> line = w->queue.TryPop();
      if (!line.has_value()) break;
      batch += *line;
      ++taken;
    }
    if (taken > 0) w->pending.fetch_sub(taken, std::memory_order_acq_rel);
    const uint64_t dropped = w->dropped.load(std::memory_order_relaxed);
    if (dropped != reported) {
      const std::pair<absl::string_view, std::string> count[] = {
          {"dropped", absl::StrCat(dropped - reported)}};
      const std::string message = absl::StrCat(
          dropped - reported, " log lines dropped: the log writer fell behind");
      LogRecord record;
      record.level = LogLevel::kWarning;
      record.when = absl::Now();
      record.event = "log.dropped";
      record.fields = count;
      record.message = message;
      batch += log_internal::FormatRecord(CurrentFormat(), record);
      reported = dropped;
    }
    WriteAll(STDERR_FILENO, batch);
    if (taken == 0) {
      if (w->stopping.load(std::memory_order_acquire)) return;
      // A producer between claiming its slot and publishing it.
      std::this_thread::yield();
    }
  }
}

}  // namespace

void StartAsyncLogWriter(size_t max_queued_lines) {
  if (g_writer.load(std::memory_order_acquire) != nullptr) return;
  auto* w = new AsyncWriter(max_queued_lines);
  w->thread = std::thread(RunWriter, w);
  g_writer.store(w, std::memory_order_release);
}

void StopAsyncLogWriter() {
  AsyncWriter* w = g_writer.exchange(nullptr, std::memory_order_acq_rel);
  if (w == nullptr) return;
  // Lines from now on are written at once; the writer takes what is queued,
  // then sees the extra count with nothing behind it and ends.
  w->stopping.store(true, std::memory_order_release);
  w->pending.fetch_add(1, std::memory_order_acq_rel);
  w->pending.notify_one();
  w->thread.join();
}

uint64_t LogLinesDropped() {
  return g_dropped_total.load(std::memory_order_relaxed);
}

namespace log_internal {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

std::string FormatLine(LogLevel level, int shard, absl::Time when,
                       absl::string_view message) {
  LogRecord record;
  record.level = level;
  record.shard = shard;
  record.when = when;
  record.message = message;
  return FormatRecord(LogFormat::kText, record);
}

LogMessage::~LogMessage() {
  const std::string message = stream_.str();
  LogRecord record;
  record.level = level_;
  record.shard = t_shard;
  record.when = absl::Now();
  record.conn = conn_;
  record.user = user_;
  record.device = device_;
  record.client = client_;
  record.event = event_;
  record.fields = fields_;
  record.message = message;
  std::string line = FormatRecord(CurrentFormat(), record);
  AsyncWriter* w =
      t_shard >= 0 ? g_writer.load(std::memory_order_acquire) : nullptr;
  if (w == nullptr) {
    WriteAll(STDERR_FILENO, line);
    return;
  }
  if (!w->queue.TryPush(std::move(line))) {
    w->dropped.fetch_add(1, std::memory_order_relaxed);
    g_dropped_total.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (w->pending.fetch_add(1, std::memory_order_acq_rel) == 0) {
    w->pending.notify_one();
  }
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

void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format), std::memory_order_relaxed);
}

LogFormat GetLogFormat() { return CurrentFormat(); }

uint64_t NewConnectionId() {
  return ++t_connections * 1000 + static_cast<uint64_t>(t_shard + 1);
}

void SetThreadShard(int shard) { t_shard = shard < 0 ? -1 : shard; }

int GetThreadShard() { return t_shard; }

}  // namespace pimap
