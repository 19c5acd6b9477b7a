// Endpoint and ClientAddress (client_address.h).
#include "core/base/client_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <ostream>

#include "absl/strings/str_cat.h"

namespace pimap {

Endpoint Endpoint::From(const sockaddr* address, socklen_t length) {
  Endpoint e;
  if (address == nullptr) return e;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(e.ip.data(), &in->sin_addr, 4);
    e.port = ntohs(in->sin_port);
    e.family = 4;
  } else if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    e.port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      std::memcpy(e.ip.data(), in6->sin6_addr.s6_addr + 12, 4);
      e.family = 4;
    } else {
      std::memcpy(e.ip.data(), in6->sin6_addr.s6_addr, 16);
      e.family = 6;
    }
  }
  return e;
}

bool Endpoint::unspecified() const {
  const size_t n = family == 4 ? 4 : 16;
  return known() && std::all_of(ip.begin(), ip.begin() + n,
                                [](uint8_t b) { return b == 0; });
}

std::string Endpoint::Ip() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (!known() || inet_ntop(family == 4 ? AF_INET : AF_INET6, ip.data(), text,
                            sizeof(text)) == nullptr) {
    return "";
  }
  return text;
}

std::string Endpoint::ToString() const {
  if (!known()) return "unknown";
  return family == 4 ? absl::StrCat(Ip(), ":", port)
                     : absl::StrCat("[", Ip(), "]:", port);
}

std::ostream& operator<<(std::ostream& out, const ClientAddress& address) {
  return out << "client=" << address.peer.ToString();
}

}  // namespace pimap
