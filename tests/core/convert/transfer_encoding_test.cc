#include "core/convert/transfer_encoding.h"

#include "gtest/gtest.h"

namespace pimap::convert {
namespace {

TEST(TransferEncodingTest, IdentityEncodings) {
  for (const char* e : {"", "7bit", "8BIT", "binary", " 7bit "}) {
    EXPECT_EQ(*DecodeTransferEncoding(e, "a\r\nb"), "a\r\nb") << e;
  }
}

TEST(TransferEncodingTest, Base64SkipsLineBreaksAndStopsAtPadding) {
  EXPECT_EQ(*DecodeTransferEncoding("base64", "SGVs\r\nbG8=\r\n"), "Hello");
  EXPECT_EQ(*DecodeTransferEncoding("BASE64", "AAEC/w=="),
            std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(*DecodeTransferEncoding("base64", ""), "");
}

TEST(TransferEncodingTest, QuotedPrintable) {
  EXPECT_EQ(*DecodeTransferEncoding("quoted-printable", "caf=E9 ok"),
            "caf\xe9 ok");
  // Soft line breaks (with trailing white space) join the lines.
  EXPECT_EQ(*DecodeTransferEncoding("quoted-printable", "ab=  \r\ncd=\nef="),
            "abcdef");
  // A malformed "=" stays as it is.
  EXPECT_EQ(*DecodeTransferEncoding("quoted-printable", "a=zz=4"), "a=zz=4");
}

TEST(TransferEncodingTest, UnknownEncodingIsAnError) {
  EXPECT_FALSE(DecodeTransferEncoding("x-uuencode", "x").ok());
}

}  // namespace
}  // namespace pimap::convert
