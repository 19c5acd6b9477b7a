// Tests for logging: level parsing, filtering (including that disabled
// messages are not even evaluated), line format, escaping, and that each
// message is one line on stderr.
#include "core/base/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

TEST(LogTest, ParseLogLevel) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("info"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(*ParseLogLevel("INFO"), LogLevel::kInfo);
  for (const char* bad : {"", "verbose", "fatal", "inf", "info "}) {
    auto s = ParseLogLevel(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_NE(ParseLogLevel("verbose").status().message().find("verbose"),
            std::string::npos);
}

TEST(LogTest, LevelNamesRoundTrip) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                     LogLevel::kError}) {
    EXPECT_EQ(*ParseLogLevel(LogLevelName(l)), l);
  }
}

TEST(LogTest, FormatLine) {
  const absl::Time t = absl::FromUnixMillis(1795881662123);  // 2026-11-28
  EXPECT_EQ(log_internal::FormatLine(LogLevel::kInfo, 1, t, "text"),
            "2026-11-28T16:01:02.123Z I shard=1 text\n");
  EXPECT_EQ(log_internal::FormatLine(LogLevel::kError, -1, t, "x"),
            "2026-11-28T16:01:02.123Z E shard=main x\n");
  EXPECT_EQ(log_internal::FormatLine(LogLevel::kDebug, 0, t, ""),
            "2026-11-28T16:01:02.123Z D shard=0 \n");
  EXPECT_EQ(log_internal::FormatLine(LogLevel::kWarning, 3, t, "w"),
            "2026-11-28T16:01:02.123Z W shard=3 w\n");
}

TEST(LogTest, FormatLineEscapesControlCharacters) {
  const absl::Time t = absl::FromUnixMillis(0);
  EXPECT_EQ(
      log_internal::FormatLine(LogLevel::kInfo, 0, t, "a\r\nFAKE LINE\x01\tz"),
      "1970-01-01T00:00:00.000Z I shard=0 a\\r\\nFAKE LINE\\x01\tz\n");
}

TEST(LogTest, FormatLineTruncatesHugeMessages) {
  const std::string line = log_internal::FormatLine(
      LogLevel::kInfo, 0, absl::FromUnixMillis(0), std::string(100000, 'a'));
  EXPECT_LT(line.size(), 9000u);
  EXPECT_NE(line.find("...(truncated)\n"), std::string::npos);
}

// Redirects fd 2 to a temporary file for the lifetime of the object.
class StderrCapture {
 public:
  StderrCapture() {
    char path[] = "/tmp/pimap_log_test_XXXXXX";
    fd_ = mkstemp(path);
    path_ = path;
    fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    dup2(fd_, STDERR_FILENO);
  }
  ~StderrCapture() {
    Restore();
    close(fd_);
    unlink(path_.c_str());
  }
  std::string Finish() {
    Restore();
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  void Restore() {
    if (saved_ >= 0) {
      dup2(saved_, STDERR_FILENO);
      close(saved_);
      saved_ = -1;
    }
  }
  int fd_ = -1;
  int saved_ = -1;
  std::string path_;
};

class LogOutputTest : public ::testing::Test {
 protected:
  // These tests read the text format; log_format_test.cc covers the others.
  void SetUp() override {
    saved_level_ = GetLogLevel();
    SetLogFormat(LogFormat::kText);
  }
  void TearDown() override {
    SetLogLevel(saved_level_);
    SetLogFormat(LogFormat::kLogfmt);
    SetThreadShard(-1);
  }
  LogLevel saved_level_;
};

int CountedValue(int* counter) {
  ++*counter;
  return 7;
}

TEST_F(LogOutputTest, FiltersByLevelWithoutEvaluatingArguments) {
  SetLogLevel(LogLevel::kWarning);
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarning);
  int evaluated = 0;
  StderrCapture capture;
  PIMAP_LOG(DEBUG) << "dbg " << CountedValue(&evaluated);
  PIMAP_LOG(INFO) << "info " << CountedValue(&evaluated);
  PIMAP_LOG(WARNING) << "warn " << CountedValue(&evaluated);
  PIMAP_LOG(ERROR) << "err " << CountedValue(&evaluated);
  const std::string out = capture.Finish();
  EXPECT_EQ(evaluated, 2);  // Disabled messages cost no argument evaluation.
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_NE(lines[0].find(" W shard=main warn 7"), std::string::npos);
  EXPECT_NE(lines[1].find(" E shard=main err 7"), std::string::npos);
  EXPECT_EQ(out.find("dbg"), std::string::npos);
  EXPECT_EQ(out.find("info"), std::string::npos);
}

TEST_F(LogOutputTest, DebugEnablesEverything) {
  SetLogLevel(LogLevel::kDebug);
  SetThreadShard(5);
  StderrCapture capture;
  PIMAP_LOG(DEBUG) << "d";
  PIMAP_LOG(INFO) << "i";
  const std::string out = capture.Finish();
  EXPECT_NE(out.find("Z D shard=5 d\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Z I shard=5 i\n"), std::string::npos) << out;
}

TEST_F(LogOutputTest, UsableInUnbracedIfElse) {
  SetLogLevel(LogLevel::kInfo);
  StderrCapture capture;
  bool flag = false;
  if (flag)
    PIMAP_LOG(INFO) << "then";
  else
    PIMAP_LOG(INFO) << "else";
  const std::string out = capture.Finish();
  EXPECT_EQ(out.find("then"), std::string::npos);
  EXPECT_NE(out.find("else"), std::string::npos);
}

TEST_F(LogOutputTest, ConcurrentMessagesStayWholeLines) {
  SetLogLevel(LogLevel::kInfo);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  StderrCapture capture;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      SetThreadShard(t);
      for (int i = 0; i < kPerThread; ++i) {
        PIMAP_LOG(INFO) << "msg " << std::string(200, 'a' + t) << " end";
      }
    });
  }
  for (auto& th : threads) th.join();
  const std::string out = capture.Finish();
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const std::string& line : lines) {
    // Each line is intact: shard tag matches the payload letter.
    const size_t pos = line.find(" I shard=");
    ASSERT_NE(pos, std::string::npos) << line;
    const int shard = line[pos + 9] - '0';
    ASSERT_EQ(line.substr(pos + 10),
              " msg " + std::string(200, 'a' + shard) + " end");
  }
}

// Shard threads' lines go through the background writer: all of them arrive,
// in order per thread, once the writer stops; other threads write at once.
TEST_F(LogOutputTest, ShardLinesGoThroughTheBackgroundWriter) {
  StderrCapture capture;
  StartAsyncLogWriter(1024);
  std::vector<std::thread> shards;
  for (int s = 0; s < 2; ++s) {
    shards.emplace_back([s] {
      SetThreadShard(s);
      for (int i = 0; i < 200; ++i) PIMAP_LOG(INFO) << "line " << i;
    });
  }
  for (std::thread& t : shards) t.join();
  PIMAP_LOG(INFO) << "from main";
  StopAsyncLogWriter();
  const std::string out = capture.Finish();
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 401u);
  for (int s = 0; s < 2; ++s) {
    int next = 0;
    for (const std::string& line : lines) {
      const std::string tag = absl::StrCat(" shard=", s, " line ");
      const size_t at = line.find(tag);
      if (at == std::string::npos) continue;
      EXPECT_EQ(line.substr(at + tag.size()), absl::StrCat(next)) << line;
      ++next;
    }
    EXPECT_EQ(next, 200);
  }
  EXPECT_NE(out.find("shard=main from main"), std::string::npos);
}

// A writer that falls behind (a tiny queue here) drops lines rather than
// stall the shard, counts them, and says so.
TEST_F(LogOutputTest, AFullQueueDropsLinesAndSaysHowMany) {
  StderrCapture capture;
  const uint64_t before = LogLinesDropped();
  StartAsyncLogWriter(2);
  std::thread shard([] {
    SetThreadShard(0);
    for (int i = 0; i < 20000; ++i) PIMAP_LOG(INFO) << "burst " << i;
  });
  shard.join();
  StopAsyncLogWriter();
  const std::string out = capture.Finish();
  const uint64_t dropped = LogLinesDropped() - before;
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  size_t written = 0;
  for (const std::string& line : lines) {
    if (line.find(" burst ") != std::string::npos) ++written;
  }
  EXPECT_EQ(written + dropped, 20000u);
  if (dropped > 0) {
    EXPECT_NE(out.find("log lines dropped: the log writer fell behind"),
              std::string::npos);
  }
  // After Stop, shard lines are written at once again.
  std::thread late([] {
    SetThreadShard(1);
    PIMAP_LOG(INFO) << "after stop";
  });
  late.join();
}

// The structured calls reach the line, in the configured format, and cost
// nothing when the level is off.
TEST_F(LogOutputTest, FieldsReachTheLine) {
  SetLogLevel(LogLevel::kInfo);
  SetLogFormat(LogFormat::kLogfmt);
  SetThreadShard(2);
  ClientAddress client;
  client.peer.family = 4;
  client.peer.ip = {127, 0, 0, 1};
  client.peer.port = 40000;
  client.conn = NewConnectionId();
  int evaluated = 0;
  StderrCapture capture;
  PIMAP_LOG(DEBUG).User(std::to_string(CountedValue(&evaluated))) << "off";
  PIMAP_LOG(INFO)
          .Conn(client)
          .User("alice")
          .Device("phone1")
          .Event("login.ok")
          .Field("via", "store")
      << "login";
  SetLogFormat(LogFormat::kJson);
  PIMAP_LOG(WARNING).Conn(client) << "bye";
  const std::string out = capture.Finish();
  EXPECT_EQ(evaluated, 0);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out;
  const std::string conn = absl::StrCat(client.conn);
  EXPECT_EQ(client.conn % 1000, 3u);  // shard 2
  EXPECT_NE(lines[0].find(
                absl::StrCat(" level=info shard=2 conn=", conn,
                             " user=alice device=phone1 client=127.0.0.1:40000"
                             " event=login.ok via=store msg=login")),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find(absl::StrCat(
                "\"level\":\"warning\",\"shard\":2,\"conn\":", conn,
                ",\"client\":\"127.0.0.1:40000\",\"msg\":\"bye\"}")),
            std::string::npos)
      << lines[1];
}

TEST(LogTest, ConnectionIdsAreUniquePerThreadAndShard) {
  std::vector<uint64_t> ids[2];
  std::vector<std::thread> threads;
  for (int s = 0; s < 2; ++s) {
    threads.emplace_back([s, &ids] {
      SetThreadShard(s);
      for (int i = 0; i < 100; ++i) ids[s].push_back(NewConnectionId());
    });
  }
  for (std::thread& t : threads) t.join();
  for (int s = 0; s < 2; ++s) {
    for (size_t i = 0; i < ids[s].size(); ++i) {
      EXPECT_EQ(ids[s][i], (i + 1) * 1000 + s + 1);
    }
  }
}

TEST(LogTest, FormatNames) {
  for (LogFormat f : {LogFormat::kLogfmt, LogFormat::kJson, LogFormat::kText}) {
    EXPECT_EQ(*ParseLogFormat(LogFormatName(f)), f);
  }
  EXPECT_EQ(*ParseLogFormat("JSON"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
  EXPECT_FALSE(ParseLogFormat("").ok());
}

}  // namespace
}  // namespace pimap
