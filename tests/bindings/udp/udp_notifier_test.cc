// The UDP channel's pure parts (bindings/udp/udp_notifier.h): the address
// form and the EMN text. Sending is covered by tests/integration/
// test_outband.py.
#include "bindings/udp/udp_notifier.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::udp {
namespace {

TEST(UdpNotifierTest, Addresses) {
  absl::StatusOr<UdpTarget> t = ParseUdpAddress("phone.example.net:2948");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "phone.example.net");
  EXPECT_EQ(t->port, 2948);
  t = ParseUdpAddress("[2001:db8::1]:143");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "2001:db8::1");
  EXPECT_EQ(t->port, 143);
  for (const char* bad :
       {"13335559999", "host:", ":143", "host:0", "host:65536",
        "2001:db8::1:143", "[::1]143", "a b:1", "[::1:1", "host:1x"}) {
    EXPECT_FALSE(ParseUdpAddress(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pimap::udp
