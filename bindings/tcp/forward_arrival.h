// The owner's side of a forwarded device (issue 16 item 2): a connection on
// the internal listener (--cluster-listen) from the node that accepted the
// device. Its first line (core/cluster/forward_record.h) is read here,
// bounded in size and time; a line that does not verify closes the
// connection with nothing said. Then the device's login continues as an
// ImapConnection (its shard hand-over, the user's claim, the store login),
// with what followed the line as its input.
#ifndef PIMAP_BINDINGS_TCP_FORWARD_ARRIVAL_H_
#define PIMAP_BINDINGS_TCP_FORWARD_ARRIVAL_H_

#include <string>

#include "bindings/tcp/imap_server.h"
#include "core/base/client_address.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::tcp {

class ForwardArrival final : private engine::TransportHandler {
 public:
  static constexpr int64_t kLineTimeoutMs = 5000;

  // `secret`: --cluster-secret-file's bytes.
  static void Start(ImapServer* server, int slot, const ClientAddress& peer,
                    const std::string* secret);

 private:
  ForwardArrival(ImapServer* server, engine::Socket* socket,
                 const ClientAddress& peer, const std::string* secret);
  ~ForwardArrival() override;
  void OnTransportData(absl::string_view data) override;
  void OnTransportClosed(absl::Status reason) override;
  void Refuse(absl::string_view why);

  ImapServer* server_;
  engine::Socket* socket_;
  ClientAddress peer_;  // the forwarding node
  const std::string* secret_;
  std::string input_;
  TimerWheel::TimerId timer_ = 0;
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_FORWARD_ARRIVAL_H_
