// The graceful upgrade (SIGUSR2, issue 17 item 4), the process side: start the
// new binary (/proc/self/exe as it is now, the same argv) with every listening
// socket inherited (LISTEN_FDS, inherited_sockets.h) and a pipe it writes one
// byte to once its listeners accept (PIMAP_UPGRADE_READY_FD); and, in the new
// process, that byte. What the old process then does with its connections
// (stop accepting, a drain spread over --drain-time) is main.cc's.
//
// systemd: the old process sends MAINPID=<new pid> just before it exits, so
// the new one becomes the unit's main process (the unit has
// NotifyAccess=all: the new process's own READY/WATCHDOG/STOPPING come from a
// process that is not yet the main one while the old one drains).
#ifndef PIMAP_TOOLS_PIMAPD_UPGRADE_H_
#define PIMAP_TOOLS_PIMAPD_UPGRADE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/engine/inherited_sockets.h"

namespace pimap {

struct UpgradeChild {
  pid_t pid = -1;
  int ready_fd = -1;  // read end of the readiness pipe (CLOEXEC)
};

// The binary an upgrade starts: the path we were started from, read at
// start-up (/proc/self/exe itself would name our own, possibly replaced and
// deleted, file: a package upgrade renames the new one over the path).
std::string ExecutablePath();

// Forks and execs `exe` with `argv` and our environment plus
// `extra_env` ("NAME=value") and the LISTEN_* variables for `sockets`, which
// become its descriptors 3..3+N-1. Only async-signal-safe calls run in the
// child between fork and exec (no malloc: everything is built before fork).
absl::StatusOr<UpgradeChild> StartNewBinary(
    const std::string& exe, char** argv,
    const std::vector<engine::NamedSocket>& sockets,
    const std::vector<std::string>& extra_env);

// Waits (on the calling thread) for the child's readiness byte, at most
// `timeout_ms`; `tick` runs at least every second meanwhile (the watchdog's
// keep-alive). An error when the child exits, closes the pipe without the
// byte, or is not ready in time (then it is killed and reaped). Closes
// child.ready_fd.
absl::Status WaitUntilReady(UpgradeChild& child, int64_t timeout_ms,
                            absl::FunctionRef<void()> tick);

// Reaps `pid` without blocking if it has exited (a child that failed after
// its readiness is otherwise a zombie until we exit).
void ReapIfExited(pid_t pid);

// The new process's end: PIMAP_UPGRADE_READY_FD, read (and removed) at
// start-up before any thread runs; Send() writes the byte once and closes.
class UpgradeReadySignal {
 public:
  static UpgradeReadySignal FromEnvironment();
  bool enabled() const { return fd_ >= 0; }
  void Send();

 private:
  int fd_ = -1;
};

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_UPGRADE_H_
