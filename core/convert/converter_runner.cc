// fork/exec, pipes and limits of one converter run (converter_runner.h).
//
// fork() rather than posix_spawn: RLIMIT_AS and RLIMIT_CPU must be set in the
// child before exec, which posix_spawn cannot do (a prlimit() after the spawn
// races the converter's first allocations). Between fork and exec the child
// calls only async-signal-safe functions, as a multi-threaded parent
// requires.
#include "core/convert/converter_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pimap::convert {
namespace {

constexpr size_t kStderrKept = 512;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// The child after fork: limits, pipes on 0/1/2, everything else closed,
// default signal handling, its own process group, exec. Never returns.
[[noreturn]] void Child(int in_fd, int out_fd, int err_fd, char* const* argv,
                        char* const* envp, const RunLimits& limits) {
  setpgid(0, 0);  // so that a kill reaches what the converter starts
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);  // pimapd ignores it; a converter not
  if (limits.max_memory_bytes > 0) {
    rlimit as = {limits.max_memory_bytes, limits.max_memory_bytes};
    setrlimit(RLIMIT_AS, &as);
  }
  // CPU seconds: a backstop behind the wall clock, should a kill be missed.
  const rlim_t cpu = static_cast<rlim_t>(limits.timeout_ms / 1000 + 2);
  rlimit cpu_limit = {cpu, cpu};
  setrlimit(RLIMIT_CPU, &cpu_limit);
  rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
    _exit(127);
  }
  syscall(SYS_close_range, 3u, ~0u, 0u);
  execve(argv[0], argv, envp);
  _exit(127);
}

}  // namespace

absl::StatusOr<std::string> RunConverter(const std::vector<std::string>& argv,
                                         absl::string_view input,
                                         const RunLimits& limits) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::UnavailableError("converter is not an absolute path");
  }
  // Everything the child needs is built before fork (no malloc after it).
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  static char kPath[] = "PATH=/usr/bin:/bin";
  char* envp[] = {kPath, nullptr};

  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    return absl::UnavailableError("converter: no pipe");
  }
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return absl::UnavailableError("converter: no pipe");
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) close(fd);
    return absl::UnavailableError("converter: no pipe");
  }
  const pid_t pid = fork();
  if (pid == 0) {
    Child(in_pipe[0], out_pipe[1], err_pipe[1], args.data(), envp, limits);
  }
  // Also here: a kill of the group must not miss a child that has not run
  // its own setpgid yet.
  if (pid > 0) setpgid(pid, pid);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  int to_child = in_pipe[1], from_child = out_pipe[0], errors = err_pipe[0];
  if (pid < 0) {
    CloseFd(&to_child);
    CloseFd(&from_child);
    CloseFd(&errors);
    return absl::UnavailableError("converter could not be started (fork)");
  }
  // The parent's own end: non-blocking, so one poll loop drives all three.
  for (int fd : {to_child, from_child, errors}) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  // Writing to a converter that closed its stdin must not raise SIGPIPE here
  // (pimapd ignores it anyway; a test binary may not).
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

  std::string out, err;
  size_t written = 0;
  if (input.empty()) CloseFd(&to_child);
  const int64_t deadline = NowMs() + limits.timeout_ms;
  absl::Status verdict;
  char buffer[65536];
  while (from_child >= 0 || errors >= 0) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) {
      verdict = absl::DeadlineExceededError(absl::StrCat(
          "converter timed out after ", limits.timeout_ms, " ms (killed)"));
      break;
    }
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (from_child >= 0) {
      out_i = n;
      fds[n++] = {from_child, POLLIN, 0};
    }
    if (errors >= 0) {
      err_i = n;
      fds[n++] = {errors, POLLIN, 0};
    }
    if (to_child >= 0) {
      in_i = n;
      fds[n++] = {to_child, POLLOUT, 0};
    }
    const int ready =
        poll(fds, n, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) {
      verdict = absl::InternalError("converter: poll failed");
      break;
    }
    if (ready <= 0) continue;
    if (in_i >= 0 && fds[in_i].revents != 0) {
      const ssize_t w = write(to_child, input.data() + written,
                              std::min<size_t>(input.size() - written, 65536));
      if (w > 0) written += static_cast<size_t>(w);
      // Done, or the converter stopped reading (EPIPE): its exit tells.
      if (written == input.size() || (w < 0 && errno != EAGAIN)) {
        CloseFd(&to_child);
      }
    }
    if (out_i >= 0 && fds[out_i].revents != 0) {
      const ssize_t r = read(from_child, buffer, sizeof(buffer));
      if (r > 0) {
        out.append(buffer, static_cast<size_t>(r));
        if (out.size() > limits.max_output_bytes) {
          verdict = absl::ResourceExhaustedError(
              absl::StrCat("converter output exceeds ", limits.max_output_bytes,
                           " bytes (killed)"));
          break;
        }
      } else if (r == 0 || errno != EAGAIN) {
        CloseFd(&from_child);
      }
    }
    if (err_i >= 0 && fds[err_i].revents != 0) {
      const ssize_t r = read(errors, buffer, sizeof(buffer));
      if (r > 0) {
        if (err.size() < kStderrKept) {
          err.append(buffer, std::min(static_cast<size_t>(r),
                                      kStderrKept - err.size()));
        }
      } else if (r == 0 || errno != EAGAIN) {
        CloseFd(&errors);
      }
    }
  }
  CloseFd(&to_child);
  CloseFd(&from_child);
  CloseFd(&errors);
  if (!verdict.ok()) {
    kill(-pid, SIGKILL);  // its process group
    kill(pid, SIGKILL);
  }
  // Its output is closed: wait for it to exit, bounded by what is left of the
  // deadline (a converter may close stdout and go on running), then killed.
  // WNOWAIT keeps it a zombie, so that its pid (and process group) cannot be
  // reused before the kill below reaches what it left running.
  for (;;) {
    siginfo_t info = {};
    const int r = waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (NowMs() >= deadline && verdict.ok()) {
      verdict = absl::DeadlineExceededError(absl::StrCat(
          "converter timed out after ", limits.timeout_ms, " ms (killed)"));
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    }
    timespec nap = {0, 2 * 1000 * 1000};
    nanosleep(&nap, nullptr);
  }
  kill(-pid, SIGKILL);  // whatever of its group outlived it
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // A SIGPIPE of our own writes, pending while blocked, is dropped.
  timespec zero = {0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (!verdict.ok()) return verdict;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return out;
  // The last line it wrote to stderr says why, usually (a traceback's end,
  // ImageMagick's one line).
  absl::string_view err_text = absl::StripTrailingAsciiWhitespace(err);
  std::string last_line(absl::StripAsciiWhitespace(
      err_text.substr(err_text.rfind('\n') == absl::string_view::npos
                          ? 0
                          : err_text.rfind('\n') + 1)));
  for (char& c : last_line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  const std::string said =
      last_line.empty() ? "" : absl::StrCat(": \"", last_line, "\"");
  if (WIFSIGNALED(status)) {
    return absl::InternalError(
        absl::StrCat("converter killed by signal ", WTERMSIG(status), said));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && out.empty() &&
      err.empty()) {
    return absl::UnavailableError("converter could not be started");
  }
  return absl::InternalError(
      absl::StrCat("converter failed with exit status ",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, said));
}

}  // namespace pimap::convert
