// A per-shard listening socket (SO_REUSEPORT: the kernel spreads connections
// over the shards) accepting straight into direct descriptors, so accepted
// connections never occupy the process's 20000-entry fd table. One accept at a
// time, not multishot: a multishot accept writes every peer address into the
// same buffer, and a direct descriptor has no fd for getpeername(); the
// client's address is needed for logs, login throttling and the store's ID.
#ifndef PIMAP_CORE_ENGINE_LISTENER_H_
#define PIMAP_CORE_ENGINE_LISTENER_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/client_address.h"
#include "core/base/timer_wheel.h"
#include "core/engine/completion.h"

namespace pimap::engine {

class Shard;

// Resolves "host" + port (numeric IPv4/IPv6 or a name) to a socket address.
absl::StatusOr<std::pair<sockaddr_storage, socklen_t>> ResolveAddress(
    const std::string& host, uint16_t port);

// Fails (FailedPrecondition, naming the address) when something listens on
// host:port already. Every shard's listener sets SO_REUSEPORT so that the
// shards share one port; the hazard is that a second gateway process started
// by mistake would then join that group silently and take a share of the
// connections. The probe binds once without SO_REUSEPORT (SO_REUSEADDR only,
// so a restart is not refused over the last run's TIME_WAIT connections) and
// lets the socket go. Call it before the first shard binds the address.
absl::Status CheckNothingListens(const std::string& host, uint16_t port);

class Listener {
 public:
  using AcceptCallback = absl::AnyInvocable<void(int slot)>;
  // With the connection's two ends (the local one is the listener's address
  // when it is bound to one; a wildcard listener's is unspecified).
  using AddressedAcceptCallback =
      absl::AnyInvocable<void(int slot, const ClientAddress& address)>;

  // Binds and starts accepting on the shard's thread. Freed by Stop(). A
  // socket for the address inherited from the previous process
  // (inherited_sockets.h) is taken instead of binding a new one.
  static absl::StatusOr<Listener*> Start(Shard* shard, const std::string& host,
                                         uint16_t port, AcceptCallback on_accept);
  static absl::StatusOr<Listener*> Start(Shard* shard, const std::string& host,
                                         uint16_t port,
                                         AddressedAcceptCallback on_accept);
  // A Unix stream socket at `path`, then given `mode` (file permissions are
  // the access control of such a socket). A socket file left by an earlier
  // run is replaced; one something still listens on is not
  // (FailedPrecondition); an inherited one for `path` is taken. The caller
  // unlinks `path` after Stop() unless ListenersHandedOver().
  static absl::StatusOr<Listener*> StartUnix(Shard* shard,
                                             const std::string& path,
                                             uint32_t mode,
                                             AcceptCallback on_accept);
  // Stops accepting (cancels the multishot accept), closes the socket, frees itself.
  void Stop();

 private:
  Listener(Shard* shard, int fd, Endpoint local,
           AddressedAcceptCallback on_accept);
  // A new socket bound to `address` (SO_REUSEPORT), listening.
  static absl::StatusOr<int> BindTcp(
      const std::pair<sockaddr_storage, socklen_t>& address,
      const std::string& host, uint16_t port);
  static Listener* StartUnixOn(Shard* shard, int fd, const std::string& path,
                               AcceptCallback on_accept);
  ~Listener();
  void Arm();
  void OnAccept(const io_uring_cqe& cqe);
  void OnCancelled(const io_uring_cqe& cqe);
  void MaybeFree();

  Shard* shard_;
  int fd_;
  Endpoint local_;
  AddressedAcceptCallback on_accept_;
  // Where the accept in flight writes the client's address.
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
  bool armed_ = false;
  bool stopped_ = false;
  int ops_in_flight_ = 0;
  TimerWheel::TimerId retry_timer_ = 0;
  MemberCompletion<Listener, &Listener::OnAccept> accept_op_{this};
  MemberCompletion<Listener, &Listener::OnCancelled> cancel_op_{this};
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_LISTENER_H_
