// SASL PLAIN codec tests.
#include "core/imap/sasl.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

TEST(SaslPlainTest, DecodesRfc4616Examples) {
  // "\0tim\0tanstaaftanstaaf"
  absl::StatusOr<SaslPlain> p = DecodeSaslPlain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->authzid, "");
  EXPECT_EQ(p->authcid, "tim");
  EXPECT_EQ(p->password, "tanstaaftanstaaf");
  // "Ursel\0Kurt\0xipj3plmq"
  p = DecodeSaslPlain("VXJzZWwAS3VydAB4aXBqM3BsbXE=");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->authzid, "Ursel");
  EXPECT_EQ(p->authcid, "Kurt");
  EXPECT_EQ(p->password, "xipj3plmq");
}

TEST(SaslPlainTest, RoundTrip) {
  const SaslPlain in{"", "joe#P65@foo.com", "p\xc3\xa4ss word"};
  const std::string b64 = EncodeSaslPlain(in);
  EXPECT_EQ(b64, absl::Base64Escape(
                     std::string("\0joe#P65@foo.com\0p\xc3\xa4ss word", 27)));
  absl::StatusOr<SaslPlain> out = DecodeSaslPlain(b64);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->authzid, in.authzid);
  EXPECT_EQ(out->authcid, in.authcid);
  EXPECT_EQ(out->password, in.password);
}

TEST(SaslPlainTest, Rejects) {
  EXPECT_FALSE(DecodeSaslPlain("=").ok());  // empty response
  EXPECT_FALSE(DecodeSaslPlain("").ok());
  EXPECT_FALSE(DecodeSaslPlain("!!!!").ok());
  EXPECT_FALSE(DecodeSaslPlain("AHRp bQB0").ok());
  EXPECT_FALSE(
      DecodeSaslPlain(absl::Base64Escape(std::string("a\0b", 3))).ok());
  EXPECT_FALSE(
      DecodeSaslPlain(absl::Base64Escape(std::string("a\0b\0c\0d", 7))).ok());
  EXPECT_FALSE(
      DecodeSaslPlain(absl::Base64Escape(std::string("a\0\0pw", 5))).ok());
}

}  // namespace
}  // namespace pimap::imap
