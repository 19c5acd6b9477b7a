// sd_notify(3) over a datagram socket, and the shard heartbeat behind the
// watchdog (systemd_notify.h).
#include "tools/pimapd/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"

namespace pimap {

SystemdNotifier SystemdNotifier::FromEnvironment() {
  SystemdNotifier n;
  if (const char* path = std::getenv("NOTIFY_SOCKET");
      path != nullptr && (path[0] == '/' || path[0] == '@') &&
      std::strlen(path) < sizeof(sockaddr_un::sun_path)) {
    n.socket_path_ = path;
  }
  uint64_t usec = 0;
  uint64_t pid = 0;
  const char* watchdog_usec = std::getenv("WATCHDOG_USEC");
  const char* watchdog_pid = std::getenv("WATCHDOG_PID");
  // WATCHDOG_PID, when set, says which process the watchdog is meant for.
  const bool for_us =
      watchdog_pid == nullptr ||
      (absl::SimpleAtoi(watchdog_pid, &pid) && pid == uint64_t(getpid()));
  if (n.enabled() && for_us && watchdog_usec != nullptr &&
      absl::SimpleAtoi(watchdog_usec, &usec) && usec > 0) {
    // Four times per period (sd_watchdog_enabled(3) advises at least two): a
    // round that a shard is late for costs one interval, and a keep-alive
    // still comes within the period. At least 1 ms.
    n.beat_interval_ms_ = std::max<int64_t>(1, int64_t(usec / 4000));
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  return n;
}

void SystemdNotifier::Notify(absl::string_view state) {
  if (!enabled()) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path_.data(), socket_path_.size());
  socklen_t length = offsetof(sockaddr_un, sun_path) + socket_path_.size();
  if (socket_path_[0] == '@') {
    address.sun_path[0] = '\0';  // abstract namespace: no terminating NUL
  } else {
    length += 1;
  }
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ssize_t sent = -1;
  if (fd >= 0) {
    sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                  reinterpret_cast<const sockaddr*>(&address), length);
    close(fd);
  }
  if (sent < 0 && !warned_) {
    warned_ = true;
    PIMAP_LOG(WARNING) << "cannot notify systemd at " << socket_path_ << ": "
                       << std::strerror(errno);
  }
}

void SystemdNotifier::Beat(engine::ShardSet& shards) {
  if (round_ != nullptr) {
    if (round_->load(std::memory_order_acquire) == 0) {
      Notify("WATCHDOG=1");
    } else if (!round_lost_) {
      // A shard has not run the last round's heartbeat yet: no keep-alive,
      // and no new round on top of it (its inbox is bounded).
      return;
    }
  }
  // A round whose heartbeat could not be posted (an inbox full) never
  // completes: it is replaced by the next one.
  round_ = std::make_shared<std::atomic<int>>(shards.count());
  round_lost_ = false;
  for (int i = 0; i < shards.count(); ++i) {
    if (!shards.shard(i).Post([round = round_](engine::Shard&) {
          round->fetch_sub(1, std::memory_order_acq_rel);
        })) {
      round_lost_ = true;
    }
  }
}

}  // namespace pimap
