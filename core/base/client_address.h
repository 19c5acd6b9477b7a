// The two ends of a device's connection as the gateway accepted it: the
// client's address and port, and the gateway's own address and port the
// client connected to. Kept compact (no strings) because every connection
// holds one; formatted only for log lines and for the store's ID
// ("x-originating-ip", RFC 2971 fields Dovecot honours from trusted proxies).
#ifndef PIMAP_CORE_BASE_CLIENT_ADDRESS_H_
#define PIMAP_CORE_BASE_CLIENT_ADDRESS_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace pimap {

// One IPv4 or IPv6 address and port. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d, from a dual-stack listener) are kept as IPv4.
struct Endpoint {
  std::array<uint8_t, 16> ip{};  // IPv4: the first 4 bytes
  uint16_t port = 0;
  uint8_t family = 0;  // 0: unknown, 4 or 6

  // From a socket address (AF_INET or AF_INET6; anything else: unknown).
  static Endpoint From(const sockaddr* address, socklen_t length);
  bool known() const { return family != 0; }
  // 0.0.0.0 or :: (a wildcard listener's address).
  bool unspecified() const;
  // "192.0.2.1", "2001:db8::1"; empty when unknown.
  std::string Ip() const;
  // "192.0.2.1:993", "[2001:db8::1]:993"; "unknown" when unknown.
  std::string ToString() const;
  bool operator==(const Endpoint&) const = default;
};

struct ClientAddress {
  Endpoint peer;   // the client
  Endpoint local;  // the gateway's address the client connected to
  // The connection's id in log lines (NewConnectionId, log.h), given at the
  // accept and kept wherever the address travels (hand-over, hibernation,
  // the store links a session opens); 0: none.
  uint64_t conn = 0;
};

// "client=IP:PORT" ("client=unknown" when it is not known), which starts
// every log line about a device connection.
std::ostream& operator<<(std::ostream& out, const ClientAddress& address);

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_CLIENT_ADDRESS_H_
