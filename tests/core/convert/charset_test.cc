#include "core/convert/charset.h"

#include "gtest/gtest.h"

namespace pimap::convert {
namespace {

TEST(CharsetTest, Latin1ToUtf8) {
  EXPECT_EQ(*ToUtf8("iso-8859-1", "caf\xe9", 100), "caf\xc3\xa9");
  EXPECT_EQ(*ToUtf8("windows-1252", "\x80", 100), "\xe2\x82\xac");
  EXPECT_EQ(*ToUtf8("UTF-8", "\xc3\xa9", 100), "\xc3\xa9");
}

TEST(CharsetTest, NoCharsetIsAscii) {
  EXPECT_EQ(*ToUtf8("", "plain", 100), "plain");
}

TEST(CharsetTest, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(*ToUtf8("utf-8",
                    "a\xff"
                    "b",
                    100),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(*ToUtf8("us-ascii", "a\xe9", 100), "a\xef\xbf\xbd");
}

TEST(CharsetTest, UnknownCharsetIsInvalidArgument) {
  EXPECT_EQ(ToUtf8("x-no-such-charset", "a", 100).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CharsetTest, OutputIsBounded) {
  const std::string big(10000, '\xe9');  // 2 bytes each in UTF-8
  EXPECT_EQ(ToUtf8("iso-8859-1", big, 15000).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ToUtf8("iso-8859-1", big, 20000)->size(), 20000u);
}

TEST(CharsetTest, StatefulCharset) {
  // ISO-2022-JP: ESC $ B <JIS X 0208> ESC ( B. "\x24\x22" is hiragana a.
  EXPECT_EQ(*ToUtf8("iso-2022-jp", "\x1b$B$\"\x1b(B!", 100), "\xe3\x81\x82!");
}

}  // namespace
}  // namespace pimap::convert
