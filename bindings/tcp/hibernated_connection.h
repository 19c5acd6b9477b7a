// A P-IMAP device hibernated in the gateway's own IDLE (core/session/
// hibernation.h): the socket (and its TLS or DEFLATE layer), the session's
// hibernated state and one timer, instead of an ImapConnection with its
// framer, session driver and engine. The device's next byte, or the session's
// next event, wakes it: the connection is rebuilt exactly as it was and gets
// the call. Meanwhile it keeps what a live IDLE owes the device: keepalives,
// the autologout, the goodbye at shutdown and the session's detach when the
// device goes away.
#ifndef PIMAP_BINDINGS_TCP_HIBERNATED_CONNECTION_H_
#define PIMAP_BINDINGS_TCP_HIBERNATED_CONNECTION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bindings/tcp/imap_server.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/session/hibernation.h"
#include "core/session/session_driver.h"
#include "core/session/session_registry.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::tcp {

class ImapConnection;

// What the connection object keeps of itself while hibernated.
struct HibernatedTransport {
  engine::Socket* socket = nullptr;  // under transport (same or wrapped)
  engine::Transport* transport = nullptr;
  bool tls_active = false;
  bool compressed = false;  // COMPRESS=DEFLATE is on
  std::string user;  // counted logged in at the server: the count travels
  int64_t last_activity_ms = 0;  // the device's last input (autologout)
};

class HibernatedConnection final : private engine::TransportHandler,
                                   private session::DeviceLink,
                                   public ServedConnection {
 public:
  // Takes over the transport (its handler is set here: buffered input may
  // wake the device at once) and the session of `driver`, which must be
  // Hibernatable() and is left detached (the caller releases it).
  static void Start(ImapServer* server, HibernatedTransport transport,
                    session::SessionDriver* driver);

  // ServedConnection: "* BYE" and close.
  void Shutdown(absl::string_view reason) override;

 private:
  HibernatedConnection(ImapServer* server, HibernatedTransport transport);
  ~HibernatedConnection() override;

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportClosed(absl::Status reason) override;
  // session::DeviceLink: every call wakes the device and goes to its engine.
  void OnEventsPending() override;
  void OnTakenOver(absl::string_view reason) override;
  std::string Binding() const override { return "imap hibernated"; }
  void Kick(absl::string_view reason) override;
  void OnFolderEvent(const session::StoreEvent& event) override;
  bool Selecting(absl::string_view) const override { return false; }

  // Rebuilds the live connection (which takes the transport, the session and
  // the user's login count) and frees this record. Null when it closed at
  // once.
  ImapConnection* Wake();
  // `keepalive_sent`: one went out now (session::KeepaliveDelayMs).
  void ArmTimer(bool keepalive_sent = false);
  void OnTimer();
  // The device is gone or said goodbye to: the session lives on, detached.
  void End();

  ImapServer* server_;
  HibernatedTransport transport_;
  session::HibernatedIdle state_;
  TimerWheel::TimerId timer_ = 0;
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_HIBERNATED_CONNECTION_H_
