#include "core/base/preauth_gate.h"

#include "gtest/gtest.h"

namespace pimap {
namespace {

Endpoint Ip(uint8_t last) {
  Endpoint e;
  e.family = 4;
  e.ip[0] = 127;
  e.ip[3] = last;
  e.port = 1000;
  return e;
}

TEST(PreAuthGateTest, BoundsPerIpAndInAll) {
  PreAuthGate gate(/*max_total=*/5, /*max_per_ip=*/3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(gate.Admit(Ip(2)));
  EXPECT_FALSE(gate.Admit(Ip(2)));  // per IP
  Endpoint other_port = Ip(2);
  other_port.port = 2000;
  EXPECT_FALSE(gate.Admit(other_port));  // the port does not matter
  EXPECT_TRUE(gate.Admit(Ip(3)));
  EXPECT_TRUE(gate.Admit(Endpoint{}));  // unknown: the total only
  EXPECT_FALSE(gate.Admit(Ip(4)));      // in all
  EXPECT_EQ(gate.count(), 5u);
  EXPECT_EQ(gate.count(Ip(2)), 3u);
  gate.Leave(Ip(2));
  EXPECT_TRUE(gate.Admit(Ip(4)));
  EXPECT_FALSE(gate.Admit(Ip(5)));
}

TEST(PreAuthGateTest, LeavingForgetsTheIp) {
  PreAuthGate gate(0, 1);  // no total bound
  EXPECT_TRUE(gate.Admit(Ip(2)));
  EXPECT_FALSE(gate.Admit(Ip(2)));
  gate.Leave(Ip(2));
  EXPECT_EQ(gate.count(Ip(2)), 0u);
  EXPECT_EQ(gate.count(), 0u);
  EXPECT_TRUE(gate.Admit(Ip(2)));
}

}  // namespace
}  // namespace pimap
