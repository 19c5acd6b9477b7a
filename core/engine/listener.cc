// Listening sockets accepting into direct descriptors, with the peer's address.
#include "core/engine/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/base/log.h"
#include "core/engine/inherited_sockets.h"
#include "core/engine/shard.h"

namespace pimap::engine {

namespace {
constexpr int kBacklog = 4096;
constexpr int64_t kTableFullRetryMs = 100;

// The socket's name in LISTEN_FDNAMES, where ':' separates names.
std::string SocketName(absl::string_view kind, absl::string_view where) {
  return absl::StrReplaceAll(absl::StrCat(kind, "@", where), {{":", "_"}});
}
}  // namespace

absl::StatusOr<std::pair<sockaddr_storage, socklen_t>> ResolveAddress(
    const std::string& host, uint16_t port) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::pair<sockaddr_storage, socklen_t> out;
  std::memset(&out.first, 0, sizeof(out.first));
  std::memcpy(&out.first, result->ai_addr, result->ai_addrlen);
  out.second = result->ai_addrlen;
  freeaddrinfo(result);
  return out;
}

absl::Status CheckNothingListens(const std::string& host, uint16_t port) {
  auto addr = ResolveAddress(host, port);
  if (!addr.ok()) return addr.status();
  const int fd = socket(addr->first.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc =
      bind(fd, reinterpret_cast<sockaddr*>(&addr->first), addr->second);
  const int err = errno;
  close(fd);
  if (rc == 0) return absl::OkStatus();
  if (err == EADDRINUSE) {
    return absl::FailedPreconditionError(
        absl::StrCat(host, ":", port,
                     " is in use (another gateway or server listens there)"));
  }
  return absl::ErrnoToStatus(err, absl::StrCat("bind ", host, ":", port));
}

absl::StatusOr<Listener*> Listener::Start(Shard* shard, const std::string& host,
                                          uint16_t port, AcceptCallback on_accept) {
  return Start(
      shard, host, port,
      [on_accept = std::move(on_accept)](
          int slot, const ClientAddress&) mutable { on_accept(slot); });
}

absl::StatusOr<Listener*> Listener::Start(Shard* shard, const std::string& host,
                                          uint16_t port,
                                          AddressedAcceptCallback on_accept) {
  auto addr = ResolveAddress(host, port);
  if (!addr.ok()) return addr.status();
  // One handed over by the previous process (or systemd): already bound and
  // listening, with connections perhaps queued on it.
  int fd = TakeInheritedSocket(reinterpret_cast<sockaddr*>(&addr->first),
                               addr->second);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  } else if (absl::StatusOr<int> bound = BindTcp(*addr, host, port);
             bound.ok()) {
    fd = *bound;
  } else if (fd = DupTakenSocket(reinterpret_cast<sockaddr*>(&addr->first),
                                 addr->second);
             fd < 0) {
    return bound.status();
  }
  RegisterListeningSocket(fd, SocketName("tcp", absl::StrCat(host, ":", port)));
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  auto* listener = new Listener(
      shard, fd, Endpoint::From(reinterpret_cast<sockaddr*>(&bound), bound_len),
      std::move(on_accept));
  listener->Arm();
  return listener;
}

absl::StatusOr<int> Listener::BindTcp(
    const std::pair<sockaddr_storage, socklen_t>& address,
    const std::string& host, uint16_t port) {
  int fd = socket(address.first.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  // Accepted sockets inherit it: IMAP is request/response with small writes,
  // and Nagle plus delayed ACKs would add ~40 ms to each exchange.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.first),
           address.second) != 0) {
    int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("bind ", host, ":", port));
  }
  if (listen(fd, kBacklog) != 0) {
    int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, "listen");
  }
  return fd;
}

absl::StatusOr<Listener*> Listener::StartUnix(Shard* shard,
                                              const std::string& path,
                                              uint32_t mode,
                                              AcceptCallback on_accept) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unix socket path too long or empty: ", path));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  const socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  if (const int inherited =
          TakeInheritedSocket(reinterpret_cast<sockaddr*>(&address), length);
      inherited >= 0) {
    return StartUnixOn(shard, inherited, path, std::move(on_accept));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists and is not a socket"));
    }
    // A live socket (another gateway) is not taken over; a stale one is.
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 &&
        connect(probe, reinterpret_cast<sockaddr*>(&address), length) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is in use (another process listens there)"));
    }
    unlink(path.c_str());
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    const int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("bind ", path));
  }
  // Before listen(): nobody can connect until the mode is the one asked for
  // (between bind and here the umask's mode applies, and nothing listens).
  if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0 ||
      listen(fd, kBacklog) != 0) {
    const int err = errno;
    close(fd);
    unlink(path.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("chmod/listen ", path));
  }
  return StartUnixOn(shard, fd, path, std::move(on_accept));
}

Listener* Listener::StartUnixOn(Shard* shard, int fd, const std::string& path,
                                AcceptCallback on_accept) {
  RegisterListeningSocket(fd, SocketName("unix", path));
  auto* listener = new Listener(
      shard, fd, Endpoint{},
      [on_accept = std::move(on_accept)](
          int slot, const ClientAddress&) mutable { on_accept(slot); });
  listener->Arm();
  return listener;
}

Listener::Listener(Shard* shard, int fd, Endpoint local,
                   AddressedAcceptCallback on_accept)
    : shard_(shard), fd_(fd), local_(local), on_accept_(std::move(on_accept)) {
  shard_->RetainLive();
}

Listener::~Listener() {
  if (retry_timer_ != 0) shard_->timers().Cancel(retry_timer_);
  UnregisterListeningSocket(fd_);
  close(fd_);
  shard_->ReleaseLive();
}

void Listener::Arm() {
  if (armed_ || stopped_) return;
  io_uring_sqe* sqe = shard_->ring().GetSqe();
  peer_len_ = sizeof(peer_);
  // The slot is allocated by the kernel. The index is encoded +1 in the SQE,
  // and liburing 2.3 does not special-case IORING_FILE_INDEX_ALLOC (~0U + 1
  // would be 0, "no direct descriptor"); ALLOC - 1 encodes to ALLOC with this
  // and later versions alike (as io_uring_prep_multishot_accept_direct does).
  io_uring_prep_accept_direct(sqe, fd_, reinterpret_cast<sockaddr*>(&peer_),
                              &peer_len_, 0, IORING_FILE_INDEX_ALLOC - 1);
  io_uring_sqe_set_data64(sqe, CompletionData(&accept_op_));
  armed_ = true;
  ++ops_in_flight_;
}

void Listener::OnAccept(const io_uring_cqe& cqe) {
  const bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) {
    armed_ = false;
    --ops_in_flight_;
  }
  if (cqe.res >= 0) {
    shard_->counters().connections_accepted.fetch_add(1, std::memory_order_relaxed);
    if (stopped_) {
      io_uring_sqe* sqe = shard_->ring().GetSqe();
      io_uring_prep_close_direct(sqe, cqe.res);
      io_uring_sqe_set_data64(sqe, 0);
    } else {
      on_accept_(cqe.res, {Endpoint::From(reinterpret_cast<sockaddr*>(&peer_),
                                          peer_len_),
                           local_, NewConnectionId()});
    }
  } else if (cqe.res == -ENFILE || cqe.res == -EMFILE) {
    // The direct-descriptor table is full: leave new connections in the backlog
    // and try again shortly instead of spinning on the error.
    PIMAP_LOG(WARNING) << "connection table full; accept paused";
  } else if (cqe.res != -ECANCELED) {
    PIMAP_LOG(WARNING) << "accept failed: " << std::strerror(-cqe.res);
  }
  if (!armed_ && !stopped_ && retry_timer_ == 0) {
    if (cqe.res == -ENFILE || cqe.res == -EMFILE) {
      retry_timer_ = shard_->timers().Schedule(kTableFullRetryMs, [this] {
        retry_timer_ = 0;
        Arm();
      });
    } else {
      Arm();
    }
  }
  MaybeFree();
}

void Listener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (armed_) {
    io_uring_sqe* sqe = shard_->ring().GetSqe();
    io_uring_prep_cancel64(sqe, CompletionData(&accept_op_), 0);
    io_uring_sqe_set_data64(sqe, CompletionData(&cancel_op_));
    ++ops_in_flight_;
  }
  MaybeFree();
}

void Listener::OnCancelled(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  MaybeFree();
}

void Listener::MaybeFree() {
  if (stopped_ && ops_in_flight_ == 0) delete this;
}

}  // namespace pimap::engine
