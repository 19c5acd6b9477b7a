// CIDR ranges (core/base/cidr.h).
#include "core/base/cidr.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

namespace pimap {
namespace {

Endpoint Ip(const char* text) {
  Endpoint e;
  if (inet_pton(AF_INET, text, e.ip.data()) == 1) {
    e.family = 4;
  } else if (inet_pton(AF_INET6, text, e.ip.data()) == 1) {
    e.family = 6;
  }
  return e;
}

TEST(CidrTest, RangesAndHosts) {
  absl::StatusOr<std::vector<CidrRange>> list =
      ParseCidrList("10.0.0.0/8, 192.0.2.7,2001:db8::/32 ");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[1].ToString(), "192.0.2.7/32");
  EXPECT_TRUE(AnyContains(*list, Ip("10.200.3.4")));
  EXPECT_TRUE(AnyContains(*list, Ip("192.0.2.7")));
  EXPECT_FALSE(AnyContains(*list, Ip("192.0.2.8")));
  EXPECT_TRUE(AnyContains(*list, Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(AnyContains(*list, Ip("2001:db9::1")));
  EXPECT_FALSE(AnyContains(*list, Endpoint{}));  // unknown: never trusted
  EXPECT_TRUE(ParseCidrList("")->empty());
}

TEST(CidrTest, OddPrefixesAndTheWholeSpace) {
  absl::StatusOr<CidrRange> r = ParseCidr("172.16.0.0/12");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(r->Contains(Ip("172.32.0.0")));
  r = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Contains(Ip("203.0.113.9")));
  EXPECT_FALSE(r->Contains(Ip("::1")));  // IPv4 ranges hold IPv4 peers only
}

TEST(CidrTest, MappedIpv4RangesHoldIpv4Peers) {
  absl::StatusOr<CidrRange> r = ParseCidr("::ffff:10.0.0.0/104");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ToString(), "10.0.0.0/8");
  EXPECT_TRUE(r->Contains(Ip("10.9.8.7")));
}

TEST(CidrTest, BadRangesAreRefused) {
  EXPECT_FALSE(ParseCidr("10.1.2.3/8").ok());  // host bits set
  EXPECT_NE(ParseCidr("10.1.2.3/8").status().message().find("10.0.0.0/8"),
            absl::string_view::npos);
  EXPECT_FALSE(ParseCidr("10.0.0.0/33").ok());
  EXPECT_FALSE(ParseCidr("10.0.0.0/").ok());
  EXPECT_FALSE(ParseCidr("example.org").ok());
  EXPECT_FALSE(ParseCidrList("10.0.0.0/8,nope").ok());
}

}  // namespace
}  // namespace pimap
