// The pool of inherited listening sockets and the registry of our own.
#include "core/engine/inherited_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/engine/listener.h"

namespace pimap::engine {
namespace {

// Far more than any configuration listens on (shards x addresses), and a
// bound against a LISTEN_FDS that would have us mark half the fd table.
constexpr int kMaxInherited = 4096;

struct Pools {
  absl::Mutex mu;
  std::vector<NamedSocket> inherited;  // not yet taken
  std::vector<int> taken;              // inherited, taken by a listener
  std::vector<NamedSocket> listening;  // ours, by Listener
};

Pools& pools() {
  static Pools* pools = new Pools;  // never destroyed: used until exit
  return *pools;
}

std::atomic<bool> handed_over{false};

bool SameAddress(const sockaddr_storage& a, socklen_t a_len, const sockaddr* b,
                 socklen_t b_len) {
  if (a.ss_family != b->sa_family) return false;
  if (a.ss_family == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a);
    const auto* y = reinterpret_cast<const sockaddr_in*>(b);
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(b);
    return x->sin6_port == y->sin6_port &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
  }
  if (a.ss_family == AF_UNIX) {
    // The bound path (trailing NULs aside).
    const size_t offset = offsetof(sockaddr_un, sun_path);
    if (a_len < offset || b_len < offset) return false;
    const char* x = reinterpret_cast<const sockaddr_un*>(&a)->sun_path;
    const char* y = reinterpret_cast<const sockaddr_un*>(b)->sun_path;
    return strnlen(x, a_len - offset) == strnlen(y, b_len - offset) &&
           std::memcmp(x, y, strnlen(x, a_len - offset)) == 0;
  }
  return false;
}

// A listening stream socket bound to `address`.
bool Matches(int fd, const sockaddr* address, socklen_t length) {
  int type = 0, accepting = 0;
  socklen_t n = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) != 0 ||
      type != SOCK_STREAM) {
    return false;
  }
  n = sizeof(accepting);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &n) != 0 ||
      !accepting) {
    return false;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return false;
  }
  return SameAddress(bound, bound_len, address, length);
}

}  // namespace

absl::StatusOr<std::vector<NamedSocket>> ParseListenFds(
    const char* listen_fds, const char* listen_pid, const char* listen_fdnames,
    pid_t self) {
  std::vector<NamedSocket> out;
  if (listen_fds == nullptr) return out;
  // For another process (the variables leaked from our parent's environment):
  // not ours to take.
  int64_t pid = 0;
  if (listen_pid == nullptr || !absl::SimpleAtoi(listen_pid, &pid) ||
      pid != self) {
    return out;
  }
  int count = 0;
  if (!absl::SimpleAtoi(listen_fds, &count) || count < 0 ||
      count > kMaxInherited) {
    return absl::InvalidArgumentError(
        absl::StrCat("LISTEN_FDS=", listen_fds, " is not a count of sockets"));
  }
  std::vector<std::string> names;
  if (listen_fdnames != nullptr && *listen_fdnames != '\0') {
    names = absl::StrSplit(listen_fdnames, ':');
  }
  if (names.size() > static_cast<size_t>(count)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LISTEN_FDNAMES names ", names.size(), " sockets, LISTEN_FDS=", count));
  }
  for (int i = 0; i < count; ++i) {
    out.push_back({kListenFdsStart + i,
                   i < static_cast<int>(names.size()) ? names[i] : ""});
  }
  return out;
}

absl::StatusOr<int> AdoptInheritedSocketsFromEnvironment() {
  auto parsed = ParseListenFds(getenv("LISTEN_FDS"), getenv("LISTEN_PID"),
                               getenv("LISTEN_FDNAMES"), getpid());
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDNAMES");
  if (!parsed.ok()) return parsed.status();
  const int count = static_cast<int>(parsed->size());
  for (const NamedSocket& socket : *parsed) {
    // Not passed on to anything we start (only an upgrade passes them, and it
    // chooses which).
    fcntl(socket.fd, F_SETFD, FD_CLOEXEC);
  }
  AdoptInheritedSockets(*std::move(parsed));
  return count;
}

void AdoptInheritedSockets(std::vector<NamedSocket> sockets) {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  for (NamedSocket& socket : sockets) p.inherited.push_back(std::move(socket));
}

int TakeInheritedSocket(const sockaddr* address, socklen_t length) {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  for (auto it = p.inherited.begin(); it != p.inherited.end(); ++it) {
    if (Matches(it->fd, address, length)) {
      const int fd = it->fd;
      p.inherited.erase(it);
      p.taken.push_back(fd);
      return fd;
    }
  }
  return -1;
}

int DupTakenSocket(const sockaddr* address, socklen_t length) {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  for (int fd : p.taken) {
    if (Matches(fd, address, length)) return fcntl(fd, F_DUPFD_CLOEXEC, 0);
  }
  return -1;
}

bool HasInheritedSocket(const std::string& host, uint16_t port) {
  auto address = ResolveAddress(host, port);
  if (!address.ok()) return false;
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  for (const NamedSocket& socket : p.inherited) {
    if (Matches(socket.fd, reinterpret_cast<const sockaddr*>(&address->first),
                address->second)) {
      return true;
    }
  }
  return false;
}

int CloseUnclaimedInheritedSockets() {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  const int count = static_cast<int>(p.inherited.size());
  for (const NamedSocket& socket : p.inherited) close(socket.fd);
  p.inherited.clear();
  p.taken.clear();  // start-up is over: their listeners own them
  return count;
}

void RegisterListeningSocket(int fd, std::string name) {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  p.listening.push_back({fd, std::move(name)});
}

void UnregisterListeningSocket(int fd) {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  for (auto it = p.listening.begin(); it != p.listening.end(); ++it) {
    if (it->fd == fd) {
      p.listening.erase(it);
      return;
    }
  }
}

std::vector<NamedSocket> ListeningSockets() {
  Pools& p = pools();
  absl::MutexLock lock(&p.mu);
  return p.listening;
}

void MarkListenersHandedOver() {
  handed_over.store(true, std::memory_order_release);
}

bool ListenersHandedOver() {
  return handed_over.load(std::memory_order_acquire);
}

}  // namespace pimap::engine
