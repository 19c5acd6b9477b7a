// Header sections field by field: splitting, folded fields kept byte for
// byte, unfolded values, MIME parameters.
#include "core/mail/header_fields.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::mail {
namespace {

TEST(HeaderFieldsTest, SplitAndFields) {
  const std::string m =
      "To: a@x.org,\r\n b@x.org\r\nSubject: hi\r\n\r\nbody\r\n";
  EntitySplit s = SplitEntity(m);
  EXPECT_EQ(s.header, "To: a@x.org,\r\n b@x.org\r\nSubject: hi\r\n");
  EXPECT_EQ(s.body, "body\r\n");
  std::vector<HeaderField> f = HeaderFields(s.header);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].name, "To");
  EXPECT_EQ(f[0].raw, "To: a@x.org,\r\n b@x.org\r\n");
  EXPECT_EQ(FieldValue(s.header, "to"), "a@x.org, b@x.org");
  EXPECT_EQ(FieldValue(s.header, "Cc"), "");
}

TEST(HeaderFieldsTest, NoBodyAndNoHeader) {
  EXPECT_EQ(SplitEntity("A: b\r\n").body, "");
  EntitySplit s = SplitEntity("\r\nonly body");
  EXPECT_EQ(s.header, "");
  EXPECT_EQ(s.body, "only body");
  EXPECT_EQ(SplitEntity("A: b\n\nlf body").body, "lf body");
}

TEST(HeaderFieldsTest, Parameters) {
  const std::string ct =
      "Multipart/Mixed; boundary=\"a;b \\\"c\"; charset=UTF-8";
  EXPECT_EQ(MediaType(ct), "multipart/mixed");
  EXPECT_EQ(Parameter(ct, "BOUNDARY"), "a;b \"c");
  EXPECT_EQ(Parameter(ct, "charset"), "UTF-8");
  EXPECT_EQ(Parameter(ct, "name"), "");
  EXPECT_EQ(MediaType(""), "");
}

}  // namespace
}  // namespace pimap::mail
