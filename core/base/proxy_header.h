// The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load
// balancer in TCP mode sends first on each connection to pass on the client's
// address: "PROXY TCP4 192.0.2.1 198.51.100.1 56324 993\r\n", or the binary v2
// form. Pure parsing of untrusted bytes (fuzzed); who may send one is the
// listener's business (proxy_accept.h, --proxy-protocol-from).
#ifndef PIMAP_CORE_BASE_PROXY_HEADER_H_
#define PIMAP_CORE_BASE_PROXY_HEADER_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/client_address.h"

namespace pimap {

// A v1 header is at most 107 bytes (the spec's bound); a v2 header is 16 bytes
// and its payload: addresses and TLVs (ALPN, authority, TLS details), which we
// bound here. Longer is refused, never buffered.
inline constexpr size_t kMaxProxyHeaderBytes = 16 + 1024;

struct ProxyHeader {
  size_t length = 0;  // bytes of the header, to consume before the client's
  // The client and the address it connected to, for a proxied TCP connection.
  // False for v2 LOCAL (the balancer's own health check), v1 UNKNOWN and v2
  // families other than TCP over IPv4/IPv6: the connection's own addresses
  // stand then.
  bool has_address = false;
  Endpoint source;
  Endpoint destination;
};

enum class ProxyParse {
  kNeedMore,  // a valid prefix: read more (up to kMaxProxyHeaderBytes)
  kComplete,  // *header is set
  kInvalid,   // *error says why
};

ProxyParse ParseProxyHeader(absl::string_view data, ProxyHeader* header,
                            std::string* error);

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_PROXY_HEADER_H_
