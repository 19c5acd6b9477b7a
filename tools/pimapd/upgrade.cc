// Starting the new binary with our listeners, and its readiness byte.
#include "tools/pimapd/upgrade.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/timer_wheel.h"

extern char** environ;

namespace pimap {
namespace {

constexpr char kReadyFdVariable[] = "PIMAP_UPGRADE_READY_FD";

// Variables we set for the child, dropped from the inherited environment.
bool Replaced(const char* entry) {
  for (absl::string_view name :
       {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET=",
        "WATCHDOG_USEC=", "WATCHDOG_PID=", "PIMAP_UPGRADE_READY_FD="}) {
    if (absl::StartsWith(entry, name)) return true;
  }
  return false;
}

// Writes `value` in decimal at `out` (room for 20 digits), NUL-terminated.
// Async-signal-safe: runs in the forked child.
void FormatPid(char* out, long value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 20);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

}  // namespace

std::string ExecutablePath() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "/proc/self/exe";
  std::string out(path, static_cast<size_t>(n));
  // Replaced since we started: the path is what to run.
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(out, kDeleted)) out.resize(out.size() - kDeleted.size());
  return out;
}

absl::StatusOr<UpgradeChild> StartNewBinary(
    const std::string& exe_path, char** argv,
    const std::vector<engine::NamedSocket>& sockets,
    const std::vector<std::string>& extra_env) {
  const int count = static_cast<int>(sockets.size());
  // Above every target descriptor (3..3+N-1), so that no dup2 in the child
  // overwrites a source it has yet to move.
  const int high = engine::kListenFdsStart + count + 1;
  std::vector<int> sources;
  auto close_sources = [&sources] {
    for (int fd : sources) close(fd);
  };
  for (const engine::NamedSocket& socket : sockets) {
    const int fd = fcntl(socket.fd, F_DUPFD_CLOEXEC, high);
    if (fd < 0) {
      const int err = errno;
      close_sources();
      return absl::ErrnoToStatus(err, "dup of a listening socket");
    }
    sources.push_back(fd);
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    close_sources();
    return absl::ErrnoToStatus(err, "pipe");
  }
  // The write end too must stay clear of the targets.
  const int ready_write = fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, high);
  close(pipe_fds[1]);
  if (ready_write < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close_sources();
    return absl::ErrnoToStatus(err, "dup of the readiness pipe");
  }

  // The child's environment, built now: no malloc after fork.
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!Replaced(*e)) env.emplace_back(*e);
  }
  for (const std::string& e : extra_env) env.push_back(e);
  env.push_back(absl::StrCat(kReadyFdVariable, "=", ready_write));
  if (count > 0) {
    env.push_back(absl::StrCat("LISTEN_FDS=", count));
    std::vector<std::string> names;
    for (const engine::NamedSocket& socket : sockets) {
      names.push_back(socket.name);
    }
    env.push_back(absl::StrCat("LISTEN_FDNAMES=", absl::StrJoin(names, ":")));
    // Filled in by the child with its own pid.
    env.push_back(std::string("LISTEN_PID=") + std::string(24, '\0'));
  }
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* listen_pid =
      count > 0 ? env.back().data() + std::strlen("LISTEN_PID=") : nullptr;
  const char* const exe = exe_path.c_str();

  const pid_t pid = fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // exec keeps the mask
    for (int i = 0; i < count; ++i) {
      // dup2 leaves the copy without FD_CLOEXEC: it survives the exec.
      if (dup2(sources[i], engine::kListenFdsStart + i) < 0) _exit(127);
    }
    if (fcntl(ready_write, F_SETFD, 0) != 0) _exit(127);
    if (listen_pid != nullptr) FormatPid(listen_pid, getpid());
    execve(exe, argv, envp.data());
    _exit(127);
  }
  const int err = errno;
  close_sources();
  close(ready_write);
  if (pid < 0) {
    close(pipe_fds[0]);
    return absl::ErrnoToStatus(err, "fork");
  }
  return UpgradeChild{pid, pipe_fds[0]};
}

absl::Status WaitUntilReady(UpgradeChild& child, int64_t timeout_ms,
                            absl::FunctionRef<void()> tick) {
  const int64_t deadline = MonotonicNowMs() + timeout_ms;
  absl::Status result;
  while (true) {
    const int64_t left = deadline - MonotonicNowMs();
    if (left <= 0) {
      result = absl::DeadlineExceededError(
          absl::StrCat("the new process (pid ", child.pid,
                       ") was not ready in ", timeout_ms / 1000, " s; killed"));
      kill(child.pid, SIGKILL);
      waitpid(child.pid, nullptr, 0);
      break;
    }
    pollfd p{child.ready_fd, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    tick();
    if (n < 0 && errno != EINTR) {
      result = absl::ErrnoToStatus(errno, "poll");
      break;
    }
    if (n <= 0) continue;
    char byte = 0;
    const ssize_t got = read(child.ready_fd, &byte, 1);
    if (got == 1) break;  // ready
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    // The pipe closed without the byte: the child exited (or exec failed).
    int status = 0;
    waitpid(child.pid, &status, 0);
    result = absl::UnavailableError(absl::StrCat(
        "the new process (pid ", child.pid, ") ended before it was ready",
        WIFEXITED(status) ? absl::StrCat(", exit status ", WEXITSTATUS(status))
                          : absl::StrCat(", signal ", WTERMSIG(status))));
    break;
  }
  close(child.ready_fd);
  child.ready_fd = -1;
  return result;
}

void ReapIfExited(pid_t pid) {
  if (pid > 0) waitpid(pid, nullptr, WNOHANG);
}

UpgradeReadySignal UpgradeReadySignal::FromEnvironment() {
  UpgradeReadySignal s;
  int fd = -1;
  if (const char* value = std::getenv(kReadyFdVariable);
      value != nullptr && absl::SimpleAtoi(value, &fd) && fd > 2 &&
      fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) {
    s.fd_ = fd;
  }
  unsetenv(kReadyFdVariable);
  return s;
}

void UpgradeReadySignal::Send() {
  if (fd_ < 0) return;
  const char byte = 'R';
  while (write(fd_, &byte, 1) < 0 && errno == EINTR) {
  }
  close(fd_);
  fd_ = -1;
}

}  // namespace pimap
