// Direct-descriptor TCP socket: receive, serialised send, connect, close, detach.
#include "core/engine/socket.h"

#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "core/engine/shard.h"

namespace pimap::engine {

namespace {
// One send carries at most this much: big enough for throughput, small enough that
// a slow peer does not pin a huge buffer.
constexpr size_t kMaxSendBytes = 256 * 1024;
// A socket asked to Close() flushes its output for at most this long.
constexpr int64_t kLingerMs = 5000;
constexpr int64_t kNoBufferRetryMs = 2;
}  // namespace

Socket::Socket(Shard* shard, int slot) : shard_(shard), slot_(slot) {
  shard_->RetainLive();
}

Socket::~Socket() {
  if (retry_timer_ != 0) shard_->timers().Cancel(retry_timer_);
  if (linger_timer_ != 0) shard_->timers().Cancel(linger_timer_);
  shard_->ReleaseLive();
}

Socket* Socket::Adopt(Shard* shard, int slot) { return new Socket(shard, slot); }

void Socket::Connect(Shard* shard, const sockaddr_storage& addr, socklen_t len,
                     ConnectCallback done) {
  auto* s = new Socket(shard, -1);
  s->connecting_ = std::make_unique<Connecting>(s);
  Connecting& c = *s->connecting_;
  c.done = std::move(done);
  c.peer = addr;
  c.peer_len = len;
  // A real socket first, because options can only be set through an fd here
  // (liburing 2.3 has no setsockopt op); it then moves into the direct table
  // (FILES_UPDATE with IORING_FILE_INDEX_ALLOC) and its fd is closed, so
  // outbound connections do not hold process fds either.
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    // Let the completion path report the error from the shard loop.
    io_uring_sqe* sqe = shard->ring().GetSqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, CompletionData(&c.create_op));
    c.real_fd = -errno;
    ++s->ops_in_flight_;
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.install_fd[0] = fd;
  c.real_fd = fd;
  io_uring_sqe* sqe = shard->ring().GetSqe();
  io_uring_prep_files_update(sqe, c.install_fd, 1, IORING_FILE_INDEX_ALLOC);
  io_uring_sqe_set_data64(sqe, CompletionData(&c.create_op));
  ++s->ops_in_flight_;
}

void Socket::OnSocketCreated(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  Connecting& c = *connecting_;
  const int fd = c.real_fd;
  c.real_fd = -1;
  int error = 0;
  if (fd < 0) {
    error = -fd;
  } else if (cqe.res < 0) {
    error = -cqe.res;
  }
  if (fd >= 0) {
    // On success the kernel wrote the allocated slot over the fd in the array;
    // the table holds its own reference, so the real fd goes either way.
    if (error == 0) slot_ = c.install_fd[0];
    close(fd);
  }
  c.install_fd[0] = -1;
  if (error != 0) {
    auto done = std::move(c.done);
    // Freed inside its own op's callback: nothing touches it after this call.
    connecting_.reset();
    final_close_ = true;  // nothing to close
    if (done) done(absl::ErrnoToStatus(error, "socket"));
    MaybeFinish();
    return;
  }
  if (closing_ || final_close_) {  // aborted while the socket op ran
    connecting_.reset();
    StartFinalClose();
    return;
  }
  io_uring_sqe* sqe = shard_->ring().GetSqe();
  io_uring_prep_connect(sqe, slot_, reinterpret_cast<sockaddr*>(&c.peer), c.peer_len);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, CompletionData(&c.connect_op));
  ++ops_in_flight_;
}

void Socket::OnConnected(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  auto done = std::move(connecting_->done);
  connecting_.reset();  // its last op has come back
  if (cqe.res < 0 || final_close_) {
    if (done) {
      done(absl::ErrnoToStatus(cqe.res < 0 ? -cqe.res : ECANCELED, "connect"));
    }
    handler_ = nullptr;
    StartFinalClose();
    return;
  }
  if (done) done(this);
}

void Socket::SetHandler(TransportHandler* handler) {
  handler_ = handler;
  ArmRecvIfWanted();
}

void Socket::SetReading(bool on) {
  reading_ = on;
  ArmRecvIfWanted();
}

void Socket::ArmRecvIfWanted() {
  if (!reading_ || recv_in_flight_ || handler_ == nullptr || slot_ < 0 ||
      closing_ || final_close_ || detaching_ || retry_timer_ != 0 ||
      connecting()) {
    return;
  }
  io_uring_sqe* sqe = shard_->ring().GetSqe();
  io_uring_prep_recv(sqe, slot_, nullptr, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->buf_group = shard_->ring().buffers().group_id();
  io_uring_sqe_set_data64(sqe, CompletionData(&recv_op_));
  recv_in_flight_ = true;
  ++ops_in_flight_;
}

void Socket::OnRecv(const io_uring_cqe& cqe) {
  recv_in_flight_ = false;
  if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    BufferRing& buffers = shard_->ring().buffers();
    const uint16_t id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
    absl::string_view data = buffers.Data(id, cqe.res);
    // The handler copies what it cannot consume now; the buffer goes back at once.
    // The op still counts as in flight during the call, so that a handler which
    // closes or detaches us cannot free this object under our feet.
    if (handler_ != nullptr && !final_close_) handler_->OnTransportData(data);
    buffers.Recycle(id);
    --ops_in_flight_;
    if (!final_close_) ArmRecvIfWanted();
    MaybeFinish();
    return;
  }
  --ops_in_flight_;
  if (final_close_ || detaching_ || cqe.res == -ECANCELED) {
    MaybeFinish();
    return;
  }
  if (cqe.res == -ENOBUFS) {
    // Every provided buffer is in use this instant; retry shortly rather than spin.
    retry_timer_ = shard_->timers().Schedule(kNoBufferRetryMs, [this] {
      retry_timer_ = 0;
      ArmRecvIfWanted();
    });
    return;
  }
  if (cqe.res == 0) {
    Fail(absl::OkStatus());  // orderly close by the peer
  } else {
    Fail(absl::ErrnoToStatus(-cqe.res, "recv"));
  }
}

void Socket::Write(absl::string_view bytes) {
  if (closing_ || final_close_ || bytes.empty()) return;
  output_.Append(bytes);
  SendNext();
}

void Socket::Write(std::string&& bytes) {
  if (closing_ || final_close_ || bytes.empty()) return;
  output_.Append(std::move(bytes));
  SendNext();
}

size_t Socket::PendingOutput() const {
  return output_.size() + in_flight_.size();
}

void Socket::SendNext() {
  if (send_in_flight_ || final_close_ || slot_ < 0 || connecting()) return;
  if (in_flight_.empty()) {
    if (output_.empty()) return;
    in_flight_ = output_.TakeFront(kMaxSendBytes);
  }
  io_uring_sqe* sqe = shard_->ring().GetSqe();
  io_uring_prep_send(sqe, slot_, in_flight_.data(), in_flight_.size(),
                     MSG_NOSIGNAL);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, CompletionData(&send_op_));
  send_in_flight_ = true;
  ++ops_in_flight_;
}

void Socket::OnSend(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  send_in_flight_ = false;
  if (final_close_) {
    MaybeFinish();
    return;
  }
  if (cqe.res < 0) {
    Fail(absl::ErrnoToStatus(-cqe.res, "send"));
    return;
  }
  in_flight_.erase(0, static_cast<size_t>(cqe.res));
  if (!in_flight_.empty() || !output_.empty()) {
    SendNext();
    return;
  }
  in_flight_.clear();
  in_flight_.shrink_to_fit();
  if (closing_) {
    StartFinalClose();
    return;
  }
  if (detaching_) {
    MaybeFinish();
    return;
  }
  if (handler_ != nullptr) handler_->OnTransportDrained();
}

void Socket::Fail(absl::Status reason) {
  TransportHandler* handler = handler_;
  handler_ = nullptr;
  StartFinalClose();
  if (handler != nullptr) handler->OnTransportClosed(std::move(reason));
}

void Socket::Close() {
  if (closing_ || final_close_) return;
  handler_ = nullptr;
  reading_ = false;
  if (PendingOutput() == 0 || slot_ < 0) {
    StartFinalClose();
    return;
  }
  closing_ = true;
  linger_timer_ = shard_->timers().Schedule(kLingerMs, [this] {
    linger_timer_ = 0;
    StartFinalClose();
  });
}

void Socket::Abort() {
  handler_ = nullptr;
  StartFinalClose();
}

void Socket::StartFinalClose() {
  if (final_close_) {
    MaybeFinish();
    return;
  }
  final_close_ = true;
  handler_ = nullptr;
  // A connect op may still be in flight: keep its state, drop only the callback.
  if (connecting_ != nullptr) connecting_->done = nullptr;
  if (slot_ >= 0) {
    shard_->ring().CancelAndCloseDirect(slot_, &aux_op_);
    ops_in_flight_ += 2;
  }
  MaybeFinish();
}

void Socket::OnAux(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  MaybeFinish();
}

void Socket::Detach(DetachCallback done) {
  detaching_ = true;
  reading_ = false;
  detach_done_ = std::move(done);
  if (retry_timer_ != 0) {
    shard_->timers().Cancel(retry_timer_);
    retry_timer_ = 0;
  }
  if (recv_in_flight_) {
    io_uring_sqe* sqe = shard_->ring().GetSqe();
    io_uring_prep_cancel64(sqe, CompletionData(&recv_op_), 0);
    io_uring_sqe_set_data64(sqe, CompletionData(&aux_op_));
    ++ops_in_flight_;
  }
  MaybeFinish();
}

void Socket::MaybeFinish() {
  if (ops_in_flight_ > 0) return;
  if (final_close_) {
    delete this;
    return;
  }
  if (detaching_ && !send_in_flight_ && output_.empty() && in_flight_.empty() &&
      retry_timer_ == 0) {
    auto done = std::move(detach_done_);
    const int slot = slot_;
    delete this;
    done(slot);
  }
}

}  // namespace pimap::engine
