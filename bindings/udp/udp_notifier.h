// The UDP out-of-band channel (issue 13): one datagram per wake-up, the OMA
// E-Mail Notification in its textual form (<emn mailbox="mailat:USER"
// timestamp="YYYY-MM-DDThh:mm:ssZ"></emn>), to the host:port given as
// PIMAP_OUTBAND_ADDRESS. Names are resolved off the shard (engine::Resolver);
// the datagram leaves through sendto() on a non-blocking socket, which never
// waits (a full socket buffer loses it, counted as failed). Targets on
// loopback or private addresses are refused unless --outband-allow-private.
// No retries: the channel is lossy by nature, and the dispatcher's
// coalescing bounds the rate per device.
#ifndef PIMAP_BINDINGS_UDP_UDP_NOTIFIER_H_
#define PIMAP_BINDINGS_UDP_UDP_NOTIFIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/engine/resolver.h"
#include "core/session/outband_notifier.h"

namespace pimap::engine {
class Shard;
}

namespace pimap::udp {

struct UdpTarget {
  std::string host;  // a name or an IP literal (without brackets)
  uint16_t port = 0;
};

// "host:port" or "[v6 literal]:port"; InvalidArgument otherwise.
absl::StatusOr<UdpTarget> ParseUdpAddress(absl::string_view address);

class UdpNotifier final : public session::OutbandNotifier {
 public:
  // Wake-ups waiting for their name lookup, at most.
  static constexpr size_t kMaxResolving = 1024;

  UdpNotifier(engine::Shard* shard, engine::Resolver* resolver,
              bool allow_private);
  ~UdpNotifier() override;
  UdpNotifier(const UdpNotifier&) = delete;
  UdpNotifier& operator=(const UdpNotifier&) = delete;

  bool Send(session::WakeUp wake_up) override;

 private:
  void SendTo(const std::string& user,
              absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses);
  void Failed(absl::string_view user, absl::string_view why);

  engine::Shard* shard_;
  engine::Resolver* resolver_;
  bool allow_private_;
  int socket_v4_ = -1;  // opened on first use
  int socket_v6_ = -1;
  size_t resolving_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::udp

#endif  // PIMAP_BINDINGS_UDP_UDP_NOTIFIER_H_
