// pimapd's side of systemd's service notification protocol (sd_notify(3),
// Type=notify): readiness once every listener is up, RELOADING/READY around a
// SIGHUP reload, STOPPING at a stop, and the watchdog's keep-alive. Spoken
// directly (one datagram per state to $NOTIFY_SOCKET) rather than through
// libsystemd: it is a few lines, and pimapd then runs the same without
// systemd (no NOTIFY_SOCKET: every call does nothing).
//
// The watchdog keep-alive is sent only while every shard answers: the main
// thread posts a heartbeat task to each shard and sends WATCHDOG=1 when all of
// the previous round's ran. A shard stuck in a loop (or a full inbox) stops
// the keep-alives, and systemd restarts the service (WatchdogSec=).
#ifndef PIMAP_TOOLS_PIMAPD_SYSTEMD_NOTIFY_H_
#define PIMAP_TOOLS_PIMAPD_SYSTEMD_NOTIFY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace pimap::engine {
class ShardSet;
}

namespace pimap {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (honouring WATCHDOG_PID) and
  // removes them from the environment, so that no child inherits them.
  static SystemdNotifier FromEnvironment();

  bool enabled() const { return !socket_path_.empty(); }
  // $NOTIFY_SOCKET as it was (for the process an upgrade starts).
  const std::string& socket_path() const { return socket_path_; }
  // A quarter of the watchdog period systemd asked for (0: no watchdog): how
  // often Beat() should run.
  int64_t beat_interval_ms() const { return beat_interval_ms_; }

  // Sends one state message ("READY=1\nSTATUS=..."). Errors are logged once
  // and otherwise ignored: notification must never stop the service.
  void Notify(absl::string_view state);

  // Main thread, every beat_interval_ms(): WATCHDOG=1 if every shard ran the
  // previous round's heartbeat, then posts the next round.
  void Beat(engine::ShardSet& shards);

 private:
  std::string socket_path_;  // a leading '@' names an abstract socket
  int64_t beat_interval_ms_ = 0;
  // Heartbeats of the current round still to run (shared with the posted
  // tasks, which may outlive their round).
  std::shared_ptr<std::atomic<int>> round_;
  bool round_lost_ = false;  // a heartbeat of the round could not be posted
  bool warned_ = false;
};

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_SYSTEMD_NOTIFY_H_
