#include "core/convert/mime_part.h"

#include "gtest/gtest.h"

namespace pimap::convert {
namespace {

TEST(MimePartTest, ReadsTypeCharsetAndEncoding) {
  const PartType p = ParsePartHeader(
      "Content-Type: Text/HTML;\r\n charset=\"ISO-8859-1\"; format=flowed\r\n"
      "Content-Transfer-Encoding: Quoted-Printable\r\n\r\n");
  EXPECT_EQ(p.media(), "text/html");
  EXPECT_EQ(p.charset, "ISO-8859-1");
  EXPECT_EQ(p.transfer_encoding, "quoted-printable");
}

TEST(MimePartTest, UnquotedCharsetAndOtherParameters) {
  const PartType p = ParsePartHeader(
      "content-type: text/plain; format=flowed; charset=utf-8\n");
  EXPECT_EQ(p.charset, "utf-8");
  EXPECT_EQ(p.transfer_encoding, "");
}

TEST(MimePartTest, DefaultsToTextPlain) {
  EXPECT_EQ(ParsePartHeader("").media(), "text/plain");
  EXPECT_EQ(ParsePartHeader("Content-Type: garbage\r\n").media(), "text/plain");
  const PartType p = ParsePartHeader(
      "Content-Type: image/png; name=\"a;b.png\"\r\n"
      "Content-Transfer-Encoding: base64\r\n");
  EXPECT_EQ(p.media(), "image/png");
  EXPECT_EQ(p.transfer_encoding, "base64");
}

TEST(MimePartTest, SplitMediaType) {
  std::string t, s;
  EXPECT_TRUE(SplitMediaType("Image/JPEG;q=1", &t, &s));
  EXPECT_EQ(t, "image");
  EXPECT_EQ(s, "jpeg");
  EXPECT_FALSE(SplitMediaType("image/", &t, &s));
  EXPECT_FALSE(SplitMediaType("image", &t, &s));
  EXPECT_FALSE(SplitMediaType("im age/x", &t, &s));
}

}  // namespace
}  // namespace pimap::convert
