// UdpNotifier (udp_notifier.h).
#include "bindings/udp/udp_notifier.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bindings/emn/emn_document.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/engine/shard.h"

namespace pimap::udp {

absl::StatusOr<UdpTarget> ParseUdpAddress(absl::string_view address) {
  UdpTarget target;
  absl::string_view port;
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError("UDP address: [v6]:port expected");
    }
    target.host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos || colon == 0 ||
        address.find(':') != colon) {
      return absl::InvalidArgumentError("UDP address: host:port expected");
    }
    target.host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
  }
  uint32_t n = 0;
  if (!absl::SimpleAtoi(port, &n) || n == 0 || n > 65535) {
    return absl::InvalidArgumentError("UDP address: invalid port");
  }
  for (char c : target.host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != ':') {
      return absl::InvalidArgumentError("UDP address: invalid host");
    }
  }
  if (target.host.empty()) {
    return absl::InvalidArgumentError("UDP address: no host");
  }
  target.port = static_cast<uint16_t>(n);
  return target;
}

UdpNotifier::UdpNotifier(engine::Shard* shard, engine::Resolver* resolver,
                         bool allow_private)
    : shard_(shard), resolver_(resolver), allow_private_(allow_private) {}

UdpNotifier::~UdpNotifier() {
  if (socket_v4_ >= 0) close(socket_v4_);
  if (socket_v6_ >= 0) close(socket_v6_);
}

bool UdpNotifier::Send(session::WakeUp wake_up) {
  if (resolving_ >= kMaxResolving) return false;
  absl::StatusOr<UdpTarget> target = ParseUdpAddress(wake_up.address);
  if (!target.ok()) {
    Failed(wake_up.user, target.status().message());
    return true;
  }
  ++resolving_;
  std::weak_ptr<bool> alive = alive_;
  resolver_->Resolve(
      target->host, target->port,
      [this, alive, user = wake_up.user](
          absl::StatusOr<std::vector<engine::ResolvedAddress>> a) mutable {
        if (alive.expired()) return;
        --resolving_;
        SendTo(user, std::move(a));
      });
  return true;
}

void UdpNotifier::SendTo(
    const std::string& user,
    absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses) {
  if (!addresses.ok()) {
    Failed(user, addresses.status().message());
    return;
  }
  const engine::ResolvedAddress* to = nullptr;
  for (const engine::ResolvedAddress& a : *addresses) {
    if (allow_private_ || !engine::IsInternalAddress(a.address)) {
      to = &a;
      break;
    }
  }
  if (to == nullptr) {
    Failed(user,
           "the target is on a loopback or private address "
           "(--outband-allow-private)");
    return;
  }
  const int family = to->address.ss_family;
  int& fd = family == AF_INET6 ? socket_v6_ : socket_v4_;
  if (fd < 0) {
    fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Failed(user, absl::StrCat("socket: ", std::strerror(errno)));
      return;
    }
  }
  const std::string emn = emn::EmnElement(user, absl::Now());
  if (sendto(fd, emn.data(), emn.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
             reinterpret_cast<const sockaddr*>(&to->address), to->len) < 0) {
    Failed(user, absl::StrCat("sendto: ", std::strerror(errno)));
    return;
  }
  CounterAdd(shard_->counters().udp_sent);
}

void UdpNotifier::Failed(absl::string_view user, absl::string_view why) {
  CounterAdd(shard_->counters().udp_failed);
  PIMAP_LOG(WARNING) << "UDP wake-up for a device of " << user
                     << " not sent: " << why;
}

}  // namespace pimap::udp
