// RunConverter against real programs as converters, hostile ones included:
// each test also checks that no child is left, reaped or not.
#include "core/convert/converter_runner.h"

#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace pimap::convert {
namespace {

RunLimits Limits(int64_t timeout_ms = 5000, size_t max_output = 1 << 20) {
  RunLimits l;
  l.timeout_ms = timeout_ms;
  l.max_output_bytes = max_output;
  l.max_memory_bytes = 512ull << 20;
  return l;
}

// No child of ours left: neither a zombie nor a running one.
void ExpectNoChildren() {
  errno = 0;
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// Whether any process runs with exactly this command line.
bool ProcessRunning(const std::string& cmdline) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(proc)) {
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline");
    std::stringstream s;
    s << f.rdbuf();
    if (s.str() == cmdline) found = true;
  }
  closedir(proc);
  return found;
}

TEST(ConverterRunnerTest, CatEchoesItsInput) {
  std::string input(300000, 'x');  // more than a pipe holds
  input += "end";
  absl::StatusOr<std::string> out = RunConverter({"/bin/cat"}, input, Limits());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, input);
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, ArgumentsGoWithoutAShell) {
  absl::StatusOr<std::string> out =
      RunConverter({"/bin/echo", "a b", "$HOME;", "*"}, "", Limits());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "a b $HOME; *\n");
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, TimeoutKillsAndReports) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> out =
      RunConverter({"/bin/sleep", "30"}, "input", Limits(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(out.status().message().find("timed out"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(3));
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, TimeoutKillsWhatTheConverterStarted) {
  // A shell here only to start a grandchild: the kill goes to the group.
  absl::StatusOr<std::string> out =
      RunConverter({"/bin/sh", "-c", "/bin/sleep 31.25 & exec /bin/sleep 31.5"},
                   "", Limits(300));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  ExpectNoChildren();
  usleep(100 * 1000);
  EXPECT_FALSE(
      ProcessRunning(std::string("/bin/sleep\0"
                                 "31.25\0",
                                 17)));
}

TEST(ConverterRunnerTest, ClosedStdoutDoesNotEscapeTheDeadline) {
  absl::StatusOr<std::string> out = RunConverter(
      {"/bin/sh", "-c", "exec >&- 2>&-; /bin/sleep 30"}, "", Limits(300));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, OversizeOutputKillsAndReports) {
  absl::StatusOr<std::string> out =
      RunConverter({"/usr/bin/yes"}, "", Limits(5000, 100000));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("100000"), std::string::npos);
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, FailureQuotesStderr) {
  absl::StatusOr<std::string> out =
      RunConverter({"/bin/ls", "/no/such/path"}, "", Limits());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(out.status().message().find("exit status"), std::string::npos);
  EXPECT_NE(out.status().message().find("/no/such/path"), std::string::npos);
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, ConverterThatStopsReadingEarly) {
  // head reads a little and exits: our writes meet a closed pipe.
  absl::StatusOr<std::string> out = RunConverter(
      {"/usr/bin/head", "-c", "3"}, std::string(1 << 20, 'z'), Limits());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "zzz");
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, MemoryLimit) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no python3";
  RunLimits limits = Limits();
  limits.max_memory_bytes = 256ull << 20;
  absl::StatusOr<std::string> out = RunConverter(
      {"/usr/bin/python3", "-c", "x = bytearray(1 << 30); print(len(x))"}, "",
      limits);
  EXPECT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("MemoryError"), std::string::npos)
      << out.status();
  ExpectNoChildren();
}

TEST(ConverterRunnerTest, NotStartable) {
  EXPECT_EQ(RunConverter({"cat"}, "", Limits()).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(RunConverter({"/no/such/program"}, "", Limits()).status().code(),
            absl::StatusCode::kUnavailable);
  ExpectNoChildren();
}

}  // namespace
}  // namespace pimap::convert
