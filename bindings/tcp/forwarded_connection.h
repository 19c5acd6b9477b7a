// A device connection this node accepted for a user another cluster node owns
// (issue 16 item 2): after the login named the user, the device's stream is
// spliced to the owner's internal listener. The owner sees first the forward
// line (core/cluster/forward_record.h: the login, the client's address), then
// whatever the device sent after its LOGIN, then the device's bytes as they
// come; the owner answers the LOGIN and everything after, and those bytes go
// back to the device unchanged. TLS with the device ends here (the owner gets
// plaintext over the internal network).
//
// Cost per forwarded device: this object, the device's socket (and TLS
// state), and one internal socket; no parsing, no session.
//
// Hazard: a peer that does not read would make the other side's bytes pile up
// here. At most kMaxBuffered bytes wait on either side; past that the side
// that sends is not read until the other drains (TCP backpressure end to end).
#ifndef PIMAP_BINDINGS_TCP_FORWARDED_CONNECTION_H_
#define PIMAP_BINDINGS_TCP_FORWARDED_CONNECTION_H_

#include <sys/socket.h>

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bindings/tcp/imap_server.h"
#include "core/base/client_address.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::tcp {

class ForwardedConnection final : public ServedConnection {
 public:
  static constexpr size_t kMaxBuffered = 256 * 1024;
  static constexpr int64_t kConnectTimeoutMs = 5000;

  // Takes `device` (its handler is set to the new object). `first_bytes`: the
  // forward line and the device's input not parsed yet. `tag`: the LOGIN's,
  // for the NO the device gets when the owner cannot be reached.
  static void Start(ImapServer* server, engine::Transport* device,
                    const ClientAddress& client, std::string target_id,
                    const sockaddr_storage& target, socklen_t target_len,
                    std::string first_bytes, std::string tag);

  // Drain, stop: both sides close (the owner keeps the session; the device
  // reconnects).
  void Shutdown(absl::string_view reason) override;
  bool ServesUser() const override { return false; }

 private:
  // One direction's receiving end: forwards what its transport reads to the
  // other side.
  class Side final : public engine::TransportHandler {
   public:
    Side(ForwardedConnection* owner, bool is_device)
        : owner_(owner), is_device_(is_device) {}
    void OnTransportData(absl::string_view data) override {
      owner_->OnData(is_device_, data);
    }
    void OnTransportDrained() override { owner_->OnDrained(is_device_); }
    void OnTransportClosed(absl::Status reason) override {
      owner_->OnClosed(is_device_, std::move(reason));
    }

   private:
    ForwardedConnection* owner_;
    bool is_device_;
  };

  ForwardedConnection(ImapServer* server, engine::Transport* device,
                      const ClientAddress& client, std::string target_id,
                      std::string first_bytes, std::string tag);
  ~ForwardedConnection();
  void OnConnected(absl::StatusOr<engine::Socket*> socket);
  void OnData(bool from_device, absl::string_view data);
  void OnDrained(bool device_drained);
  void OnClosed(bool device_closed, absl::Status reason);
  void Fail(absl::string_view why);
  void Finish();

  ImapServer* server_;
  engine::Transport* device_;
  engine::Transport* upstream_ = nullptr;
  Side device_side_{this, true};
  Side upstream_side_{this, false};
  ClientAddress client_;
  std::string target_id_;
  std::string held_;  // before the owner answers the connect: what goes first
  std::string tag_;
  TimerWheel::TimerId connect_timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_FORWARDED_CONNECTION_H_
