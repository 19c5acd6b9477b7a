// AddrSpecs / SameAddress: the address-list forms XDELIVER meets in To, Cc,
// Bcc and From.
#include "core/mail/address_list.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::mail {
namespace {

using ::testing::ElementsAre;

TEST(AddrSpecsTest, Forms) {
  EXPECT_THAT(*AddrSpecs("a@example.org"), ElementsAre("a@example.org"));
  EXPECT_THAT(*AddrSpecs("Ann <a@example.org>, \"Doe, Bob\" <b@x.org>"),
              ElementsAre("a@example.org", "b@x.org"));
  EXPECT_THAT(*AddrSpecs("c@x.org (Carl, the one), <@relay.org:d@x.org>"),
              ElementsAre("c@x.org", "d@x.org"));
  EXPECT_THAT(*AddrSpecs("Team: e@x.org, f@x.org;, g@x.org"),
              ElementsAre("e@x.org", "f@x.org", "g@x.org"));
  EXPECT_THAT(*AddrSpecs("Empty group:;"), ElementsAre());
  EXPECT_THAT(*AddrSpecs(""), ElementsAre());
  EXPECT_THAT(*AddrSpecs("\"odd local\"@x.org"),
              ElementsAre("\"odd local\"@x.org"));
}

TEST(AddrSpecsTest, Refused) {
  EXPECT_FALSE(AddrSpecs("not an address").ok());
  EXPECT_FALSE(AddrSpecs("a@x.org, nobody").ok());
  EXPECT_FALSE(AddrSpecs("Ann <a@x.org").ok());
  EXPECT_FALSE(AddrSpecs("\"unterminated <a@x.org>").ok());
  EXPECT_FALSE(AddrSpecs("<a@x.org> <b@x.org>").ok());
}

TEST(SameAddressTest, DomainCaseInsensitiveLocalExact) {
  EXPECT_TRUE(SameAddress("joe@Example.ORG", "joe@example.org"));
  EXPECT_FALSE(SameAddress("Joe@example.org", "joe@example.org"));
  EXPECT_FALSE(SameAddress("joe@example.org", "joe@example.net"));
}

}  // namespace
}  // namespace pimap::mail
