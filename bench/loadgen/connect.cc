// Outbound connects of the bench's devices (see connect.h).
#include "bench/loadgen/connect.h"

#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/engine/completion.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace pimap::bench {

namespace {

// The connect, then the move of the fd into the direct-descriptor table (the
// real fd is closed once the slot holds it).
class ConnectOp final : public engine::Completion {
 public:
  ConnectOp(engine::Shard* shard, ConnectClient* client)
      : shard_(shard), client_(client) {
    shard_->RetainLive();
  }
  ~ConnectOp() {
    if (fd_ >= 0) close(fd_);
    shard_->ReleaseLive();
  }

  void Start(const sockaddr_storage& addr, socklen_t len,
             const in_addr* source) {
    addr_ = addr;
    len_ = len;
    fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return FailNow(errno, "socket");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (source != nullptr && addr.ss_family == AF_INET) {
      setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr = *source;
      if (bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0)
        return FailNow(errno, "bind");
    }
    io_uring_sqe* sqe = shard_->ring().GetSqe();
    io_uring_prep_connect(sqe, fd_, reinterpret_cast<sockaddr*>(&addr_), len_);
    io_uring_sqe_set_data64(sqe, engine::CompletionData(this));
  }

  void OnComplete(const io_uring_cqe& cqe) override {
    if (stage_ == 0) {
      if (cqe.res < 0) return FailNow(-cqe.res, "connect");
      stage_ = 1;
      files_[0] = fd_;
      io_uring_sqe* sqe = shard_->ring().GetSqe();
      io_uring_prep_files_update(sqe, files_, 1, IORING_FILE_INDEX_ALLOC);
      io_uring_sqe_set_data64(sqe, engine::CompletionData(this));
      return;
    }
    if (cqe.res < 0) return FailNow(-cqe.res, "files_update");
    const int slot = files_[0];
    close(fd_);
    fd_ = -1;
    engine::Socket* s = engine::Socket::Adopt(shard_, slot);
    ConnectClient* client = client_;
    delete this;
    client->OnConnected(s);
  }

 private:
  void FailNow(int err, const char* what) {
    ConnectClient* client = client_;
    delete this;
    client->OnConnectFailed(err, what);
  }

  engine::Shard* shard_;
  ConnectClient* client_;
  int fd_ = -1;
  int stage_ = 0;
  int files_[1] = {-1};
  sockaddr_storage addr_{};
  socklen_t len_ = 0;
};

}  // namespace

void StartConnect(engine::Shard* shard, const sockaddr_storage& addr,
                  socklen_t len, const in_addr* source, ConnectClient* client) {
  auto* op = new ConnectOp(shard, client);
  op->Start(addr, len, source);
}

std::string ConnectErrorKind(int err) {
  switch (err) {
    case EADDRNOTAVAIL:
      return "out of local ports (EADDRNOTAVAIL): pass --source-addrs "
             "127.0.0.2-127.0.0.250 or widen net.ipv4.ip_local_port_range";
    case EMFILE:
      return "process fd limit reached (EMFILE, RLIMIT_NOFILE)";
    case ENFILE:
      return "io_uring file table or system file limit full (ENFILE): use more "
             "--shards";
    case ENOMEM:
    case ENOBUFS:
      return "out of kernel memory (ENOMEM/ENOBUFS)";
    case ECONNREFUSED:
      return "connection refused (target down?)";
    case ETIMEDOUT:
      return "connect timed out (listen backlog overflow?)";
    case ECONNRESET:
      return "connection reset during connect";
    default:
      return absl::StrCat("connect failed: ", strerror(err));
  }
}

}  // namespace pimap::bench
