// Address ranges in CIDR notation ("10.0.0.0/8", "2001:db8::/32", or a bare
// address for one host), e.g. the load balancers whose PROXY protocol header
// pimapd believes (--proxy-protocol-from). IPv4 ranges match IPv4-mapped IPv6
// peers too, since Endpoint keeps those as IPv4.
#ifndef PIMAP_CORE_BASE_CIDR_H_
#define PIMAP_CORE_BASE_CIDR_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/client_address.h"

namespace pimap {

struct CidrRange {
  std::array<uint8_t, 16> ip{};  // IPv4: the first 4 bytes; host bits zero
  uint8_t family = 4;            // 4 or 6
  uint8_t prefix = 32;           // bits that must match

  bool Contains(const Endpoint& endpoint) const;
  // "10.0.0.0/8"; "192.0.2.1/32" for a host.
  std::string ToString() const;
  bool operator==(const CidrRange&) const = default;
};

// One range; host bits set ("10.1.2.3/8") are an error, so a typo is not
// silently a wider range than meant.
absl::StatusOr<CidrRange> ParseCidr(absl::string_view text);
// A comma-separated list (spaces allowed); "" is the empty list.
absl::StatusOr<std::vector<CidrRange>> ParseCidrList(absl::string_view text);
bool AnyContains(const std::vector<CidrRange>& ranges,
                 const Endpoint& endpoint);

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_CIDR_H_
