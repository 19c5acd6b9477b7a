// CIDR ranges (cidr.h).
#include "core/base/cidr.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pimap {

namespace {
// Whether the first `bits` bits of a and b agree.
bool PrefixMatches(const uint8_t* a, const uint8_t* b, int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}
}  // namespace

bool CidrRange::Contains(const Endpoint& endpoint) const {
  if (endpoint.family != family) return false;
  return PrefixMatches(ip.data(), endpoint.ip.data(), prefix);
}

std::string CidrRange::ToString() const {
  Endpoint e;
  e.ip = ip;
  e.family = family;
  return absl::StrCat(e.Ip(), "/", prefix);
}

absl::StatusOr<CidrRange> ParseCidr(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  absl::string_view address = text;
  absl::string_view bits;
  if (const size_t slash = text.find('/'); slash != text.npos) {
    address = text.substr(0, slash);
    bits = text.substr(slash + 1);
  }
  CidrRange range;
  const std::string host(address);
  if (inet_pton(AF_INET, host.c_str(), range.ip.data()) == 1) {
    range.family = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), range.ip.data()) == 1) {
    range.family = 6;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IP address range: \"", text, "\""));
  }
  const int max_bits = range.family == 4 ? 32 : 128;
  int prefix = max_bits;
  if (!bits.empty() || text.find('/') != text.npos) {
    if (!absl::SimpleAtoi(bits, &prefix) || prefix < 0 || prefix > max_bits) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad prefix length in \"", text, "\""));
    }
  }
  range.prefix = static_cast<uint8_t>(prefix);
  // ::ffff:a.b.c.d/n is the IPv4 range a.b.c.d/(n-96): Endpoint keeps mapped
  // peers as IPv4, so the IPv6 form would never match one.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  if (range.family == 6 && prefix >= 96 &&
      std::memcmp(range.ip.data(), kMapped, 12) == 0) {
    std::memmove(range.ip.data(), range.ip.data() + 12, 4);
    std::memset(range.ip.data() + 4, 0, 12);
    range.family = 4;
    range.prefix = static_cast<uint8_t>(prefix - 96);
    prefix -= 96;
  }
  // Host bits must be zero: "10.1.2.3/8" is more likely a typo than a wish.
  CidrRange masked = range;
  for (int bit = prefix; bit < max_bits; ++bit) {
    masked.ip[static_cast<size_t>(bit / 8)] &=
        static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (masked.ip != range.ip) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" has host bits set (did you mean ",
                     masked.ToString(), "?)"));
  }
  return range;
}

absl::StatusOr<std::vector<CidrRange>> ParseCidrList(absl::string_view text) {
  std::vector<CidrRange> ranges;
  for (absl::string_view item :
       absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::StatusOr<CidrRange> range = ParseCidr(item);
    if (!range.ok()) return range.status();
    ranges.push_back(*range);
  }
  return ranges;
}

bool AnyContains(const std::vector<CidrRange>& ranges,
                 const Endpoint& endpoint) {
  for (const CidrRange& range : ranges) {
    if (range.Contains(endpoint)) return true;
  }
  return false;
}

}  // namespace pimap
