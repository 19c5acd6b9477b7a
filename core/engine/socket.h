// A TCP stream on a direct descriptor of one shard's ring: receives through the
// provided-buffer ring, sends serialised (hazard: two sends in flight on one socket can
// reorder, so exactly one is in flight and the rest wait in a ByteQueue).
// Lifetime: created by Adopt()/Connect(), freed by itself after Close()/Abort()/Detach()
// once its last operation has completed, so that no CQE ever points at freed memory.
#ifndef PIMAP_CORE_ENGINE_SOCKET_H_
#define PIMAP_CORE_ENGINE_SOCKET_H_

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/base/byte_queue.h"
#include "core/base/timer_wheel.h"
#include "core/engine/completion.h"
#include "core/engine/transport.h"

namespace pimap::engine {

class Shard;

class Socket final : public Transport {
 public:
  using ConnectCallback = absl::AnyInvocable<void(absl::StatusOr<Socket*>)>;
  using DetachCallback = absl::AnyInvocable<void(int slot)>;

  // Wraps a direct descriptor (accepted, or handed over from another shard).
  static Socket* Adopt(Shard* shard, int slot);
  // Opens a direct-descriptor TCP socket and connects it to `addr`. `done` runs on
  // the shard thread with the connected socket (reading starts once a handler is set),
  // or with the error (the socket is then already gone).
  static void Connect(Shard* shard, const sockaddr_storage& addr, socklen_t len,
                      ConnectCallback done);

  void SetHandler(TransportHandler* handler) override;
  void Write(absl::string_view bytes) override;
  void Write(std::string&& bytes) override;
  using Transport::Write;
  size_t PendingOutput() const override;
  void SetReading(bool on) override;
  void Close() override;
  void Abort() override;

  // For hand-over: stops reading, waits until nothing is in flight and all output is
  // sent, then calls done(slot) and frees itself WITHOUT closing the descriptor.
  // Data that a receive already in flight delivers meanwhile still reaches the handler.
  void Detach(DetachCallback done);

  int slot() const { return slot_; }

 private:
  Socket(Shard* shard, int slot);
  ~Socket() override;

  void OnSocketCreated(const io_uring_cqe& cqe);
  void OnConnected(const io_uring_cqe& cqe);
  void OnRecv(const io_uring_cqe& cqe);
  void OnSend(const io_uring_cqe& cqe);
  void OnAux(const io_uring_cqe& cqe);

  void ArmRecvIfWanted();
  void SendNext();
  void Fail(absl::Status reason);
  void StartFinalClose();
  void MaybeFinish();

  // An outbound connection being set up (Connect() until OnConnected). Kept apart
  // because most sockets are accepted ones and never need it (~200 bytes per idle
  // device otherwise). Its ops point into it: it lives until their CQEs came back.
  struct Connecting {
    explicit Connecting(Socket* s) : create_op(s), connect_op(s) {}
    ConnectCallback done;  // null once reported (or the socket was aborted)
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    int install_fd[1] = {-1};  // in: the real fd; out (kernel): its direct slot
    int real_fd = -1;          // the real fd, or -errno if socket() failed
    MemberCompletion<Socket, &Socket::OnSocketCreated> create_op;
    MemberCompletion<Socket, &Socket::OnConnected> connect_op;
  };
  bool connecting() const { return connecting_ != nullptr && connecting_->done; }

  Shard* shard_;
  int slot_;
  TransportHandler* handler_ = nullptr;
  std::unique_ptr<Connecting> connecting_;
  DetachCallback detach_done_;

  ByteQueue output_;
  std::string in_flight_;  // bytes of the one send in flight
  bool reading_ = true;
  bool recv_in_flight_ = false;
  bool send_in_flight_ = false;
  bool closing_ = false;      // Close(): flush, then close
  bool final_close_ = false;  // cancel+close submitted
  bool detaching_ = false;
  int ops_in_flight_ = 0;
  TimerWheel::TimerId retry_timer_ = 0;
  TimerWheel::TimerId linger_timer_ = 0;

  MemberCompletion<Socket, &Socket::OnRecv> recv_op_{this};
  MemberCompletion<Socket, &Socket::OnSend> send_op_{this};
  MemberCompletion<Socket, &Socket::OnAux> aux_op_{this};
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_SOCKET_H_
