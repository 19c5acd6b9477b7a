// PROXY protocol v1/v2 parsing (proxy_header.h). An explicit reading of each
// field; every length is checked before it is used.
#include "core/base/proxy_header.h"

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pimap {

namespace {

constexpr absl::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr absl::string_view kV1Prefix = "PROXY ";
constexpr size_t kV1MaxBytes = 107;

// Whether `data` could still become `prefix` (or starts with it).
bool CouldStartWith(absl::string_view data, absl::string_view prefix) {
  const size_t n = std::min(data.size(), prefix.size());
  return data.substr(0, n) == prefix.substr(0, n);
}

uint16_t Be16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d: the balancer's client and
// front differ in family) is kept as IPv4, as for an accepted socket, so one
// client has one key for throttling and limits whichever header says it.
void FoldMappedIpv4(Endpoint* e) {
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};
  if (e->family != 6 || std::memcmp(e->ip.data(), kMapped, 12) != 0) return;
  std::memmove(e->ip.data(), e->ip.data() + 12, 4);
  std::memset(e->ip.data() + 4, 0, 12);
  e->family = 4;
}

bool ParseV1Endpoint(absl::string_view ip, absl::string_view port, int family,
                     Endpoint* out) {
  const std::string text(ip);
  Endpoint e;
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, text.c_str(), e.ip.data()) !=
      1) {
    return false;
  }
  // The spec: decimal without leading zeros, 0..65535.
  uint32_t p = 0;
  if (port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0') ||
      !absl::SimpleAtoi(port, &p) || p > 65535) {
    return false;
  }
  e.port = static_cast<uint16_t>(p);
  e.family = static_cast<uint8_t>(family);
  FoldMappedIpv4(&e);
  *out = e;
  return true;
}

ProxyParse Invalid(std::string* error, absl::string_view why) {
  *error = std::string(why);
  return ProxyParse::kInvalid;
}

ProxyParse ParseV1(absl::string_view data, ProxyHeader* header,
                   std::string* error) {
  const size_t end = data.find("\r\n");
  if (end == data.npos) {
    if (data.size() >= kV1MaxBytes) {
      return Invalid(error, "PROXY v1 header longer than 107 bytes");
    }
    return ProxyParse::kNeedMore;
  }
  if (end + 2 > kV1MaxBytes) {
    return Invalid(error, "PROXY v1 header longer than 107 bytes");
  }
  const std::vector<absl::string_view> words =
      absl::StrSplit(data.substr(0, end), ' ');
  ProxyHeader h;
  h.length = end + 2;
  if (words.size() >= 2 && words[1] == "UNKNOWN") {
    *header = h;  // the connection's own addresses stand
    return ProxyParse::kComplete;
  }
  if (words.size() != 6 || (words[1] != "TCP4" && words[1] != "TCP6")) {
    return Invalid(error, "malformed PROXY v1 header");
  }
  const int family = words[1] == "TCP4" ? 4 : 6;
  if (!ParseV1Endpoint(words[2], words[4], family, &h.source) ||
      !ParseV1Endpoint(words[3], words[5], family, &h.destination)) {
    return Invalid(error, "malformed address in PROXY v1 header");
  }
  h.has_address = true;
  *header = h;
  return ProxyParse::kComplete;
}

ProxyParse ParseV2(absl::string_view data, ProxyHeader* header,
                   std::string* error) {
  if (data.size() < 16) return ProxyParse::kNeedMore;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const int version = p[12] >> 4;
  const int command = p[12] & 0x0f;
  if (version != 2) return Invalid(error, "PROXY v2 header of another version");
  if (command > 1)
    return Invalid(error, "PROXY v2 header with an unknown command");
  const size_t payload = Be16(p + 14);
  if (16 + payload > kMaxProxyHeaderBytes) {
    return Invalid(error, "PROXY v2 header too long");
  }
  if (data.size() < 16 + payload) return ProxyParse::kNeedMore;
  ProxyHeader h;
  h.length = 16 + payload;
  const int family = p[13] >> 4;
  const int transport = p[13] & 0x0f;
  // LOCAL: the balancer speaks for itself (a health check); other families
  // (UNSPEC, UNIX) and datagrams carry no TCP client to believe.
  if (command == 0 || transport != 1 || (family != 1 && family != 2)) {
    *header = h;
    return ProxyParse::kComplete;
  }
  const unsigned char* a = p + 16;
  if (family == 1) {
    if (payload < 12)
      return Invalid(error, "PROXY v2 IPv4 addresses truncated");
    h.source.family = h.destination.family = 4;
    std::memcpy(h.source.ip.data(), a, 4);
    std::memcpy(h.destination.ip.data(), a + 4, 4);
    h.source.port = Be16(a + 8);
    h.destination.port = Be16(a + 10);
  } else {
    if (payload < 36)
      return Invalid(error, "PROXY v2 IPv6 addresses truncated");
    h.source.family = h.destination.family = 6;
    std::memcpy(h.source.ip.data(), a, 16);
    std::memcpy(h.destination.ip.data(), a + 16, 16);
    h.source.port = Be16(a + 32);
    h.destination.port = Be16(a + 34);
    FoldMappedIpv4(&h.source);
    FoldMappedIpv4(&h.destination);
  }
  h.has_address = true;
  *header = h;
  return ProxyParse::kComplete;
}

}  // namespace

ProxyParse ParseProxyHeader(absl::string_view data, ProxyHeader* header,
                            std::string* error) {
  if (data.empty()) return ProxyParse::kNeedMore;
  if (CouldStartWith(data, kV2Signature)) {
    if (data.size() < kV2Signature.size()) return ProxyParse::kNeedMore;
    return ParseV2(data, header, error);
  }
  if (CouldStartWith(data, kV1Prefix)) {
    if (data.size() < kV1Prefix.size()) return ProxyParse::kNeedMore;
    return ParseV1(data, header, error);
  }
  return Invalid(error, "no PROXY protocol header");
}

}  // namespace pimap
