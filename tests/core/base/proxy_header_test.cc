// PROXY protocol headers (core/base/proxy_header.h) as HAProxy sends them
// (send-proxy, send-proxy-v2), cut anywhere, and malformed.
#include "core/base/proxy_header.h"

#include <string>

#include "gtest/gtest.h"

namespace pimap {
namespace {

ProxyParse Parse(absl::string_view data, ProxyHeader* h,
                 std::string* error = nullptr) {
  std::string ignored;
  return ParseProxyHeader(data, h, error == nullptr ? &ignored : error);
}

std::string V2(unsigned char command, unsigned char family,
               const std::string& payload) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(family);
  h += static_cast<char>(payload.size() >> 8);
  h += static_cast<char>(payload.size() & 0xff);
  return h + payload;
}

const std::string kV2Tcp4Payload(
    "\xc0\x00\x02\x01"   // 192.0.2.1
    "\xc6\x33\x64\x07"   // 198.51.100.7
    "\xdc\x04\x03\xe1",  // 56324 -> 993
    12);

TEST(ProxyHeaderTest, V1Tcp4GivesTheClientAndItsLength) {
  const std::string header = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 993\r\n";
  ProxyHeader h;
  ASSERT_EQ(Parse(header + "a1 LOGIN", &h), ProxyParse::kComplete);
  EXPECT_EQ(h.length, header.size());
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.ToString(), "192.0.2.1:56324");
  EXPECT_EQ(h.destination.ToString(), "198.51.100.7:993");
}

TEST(ProxyHeaderTest, V1Tcp6AndUnknown) {
  ProxyHeader h;
  ASSERT_EQ(Parse("PROXY TCP6 2001:db8::1 2001:db8::2 4000 143\r\n", &h),
            ProxyParse::kComplete);
  EXPECT_EQ(h.source.ToString(), "[2001:db8::1]:4000");
  ASSERT_EQ(Parse("PROXY UNKNOWN whatever\r\n", &h), ProxyParse::kComplete);
  EXPECT_FALSE(h.has_address);
  EXPECT_EQ(h.length, 24u);
}

TEST(ProxyHeaderTest, V1MappedIpv4IsKeptAsIpv4) {
  // HAProxy writes this when the client's family and the front's differ.
  ProxyHeader h;
  ASSERT_EQ(Parse("PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 4000 143\r\n", &h),
            ProxyParse::kComplete);
  EXPECT_EQ(h.source.ToString(), "192.0.2.1:4000");
  EXPECT_EQ(h.destination.ToString(), "[2001:db8::2]:143");
}

TEST(ProxyHeaderTest, EveryPrefixNeedsMore) {
  const std::string v1 = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 993\r\n";
  const std::string v2 = V2(1, 0x11, kV2Tcp4Payload);
  for (const std::string& full : {v1, v2}) {
    for (size_t n = 0; n < full.size(); ++n) {
      ProxyHeader h;
      EXPECT_EQ(Parse(full.substr(0, n), &h), ProxyParse::kNeedMore) << n;
    }
  }
}

TEST(ProxyHeaderTest, V2Tcp4WithTlvsAfterTheAddresses) {
  // An ALPN TLV (type 0x01) after the addresses: skipped, counted in length.
  const std::string tlv("\x01\x00\x04imap", 7);
  const std::string header = V2(1, 0x11, kV2Tcp4Payload + tlv);
  ProxyHeader h;
  ASSERT_EQ(Parse(header + "rest", &h), ProxyParse::kComplete);
  EXPECT_EQ(h.length, 16 + 12 + tlv.size());
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.ToString(), "192.0.2.1:56324");
  EXPECT_EQ(h.destination.ToString(), "198.51.100.7:993");
}

TEST(ProxyHeaderTest, V2Tcp6AndMappedIpv4) {
  std::string payload(36, '\0');
  payload[0] = 0x20;
  payload[1] = 0x01;  // 2001:...
  payload[15] = 1;
  payload[16 + 10] = payload[16 + 11] = '\xff';  // ::ffff:10.0.0.9
  payload[16 + 12] = 10;
  payload[16 + 15] = 9;
  payload[32] = 0x0f;
  payload[33] = 0xa0;  // 4000
  payload[35] = 143;
  ProxyHeader h;
  ASSERT_EQ(Parse(V2(1, 0x21, payload), &h), ProxyParse::kComplete);
  EXPECT_EQ(h.source.ToString(), "[2001::1]:4000");
  EXPECT_EQ(h.destination.ToString(), "10.0.0.9:143");
}

TEST(ProxyHeaderTest, V2LocalAndOtherFamiliesKeepTheConnectionsAddress) {
  ProxyHeader h;
  ASSERT_EQ(Parse(V2(0, 0x00, ""), &h), ProxyParse::kComplete);  // LOCAL
  EXPECT_FALSE(h.has_address);
  EXPECT_EQ(h.length, 16u);
  ASSERT_EQ(Parse(V2(1, 0x31, std::string(216, 'u')), &h),
            ProxyParse::kComplete);  // AF_UNIX stream
  EXPECT_FALSE(h.has_address);
  ASSERT_EQ(Parse(V2(1, 0x12, kV2Tcp4Payload), &h),
            ProxyParse::kComplete);  // UDP
  EXPECT_FALSE(h.has_address);
}

TEST(ProxyHeaderTest, MalformedHeadersAreRefusedWithAReason) {
  ProxyHeader h;
  std::string error;
  EXPECT_EQ(Parse("a1 LOGIN alice secret\r\n", &h, &error),
            ProxyParse::kInvalid);
  EXPECT_EQ(error, "no PROXY protocol header");
  for (const char* bad : {
           "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",       // a field short
           "PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n",       // v6 in TCP4
           "PROXY TCP4 192.0.2.1 198.51.100.7 056324 993\r\n",  // leading 0
           "PROXY TCP4 192.0.2.1 198.51.100.7 65536 993\r\n",   // port range
           "PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n",
       }) {
    EXPECT_EQ(Parse(bad, &h, &error), ProxyParse::kInvalid) << bad;
  }
  EXPECT_EQ(Parse("PROXY TCP4 " + std::string(200, '1'), &h, &error),
            ProxyParse::kInvalid);  // no CRLF within 107 bytes
  EXPECT_EQ(Parse(V2(1, 0x11, kV2Tcp4Payload.substr(0, 8)), &h, &error),
            ProxyParse::kInvalid);  // addresses cut short
  EXPECT_EQ(
      Parse(V2(1, 0x11, std::string(2000, 'x')).substr(0, 16), &h, &error),
      ProxyParse::kInvalid);  // longer than we buffer
  EXPECT_EQ(error, "PROXY v2 header too long");
  std::string v3 = V2(1, 0x11, kV2Tcp4Payload);
  v3[12] = 0x31;
  EXPECT_EQ(Parse(v3, &h, &error), ProxyParse::kInvalid);
}

}  // namespace
}  // namespace pimap
