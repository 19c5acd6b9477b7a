// Header field values as display text (core/imap/header_text.h): the
// Subject/From of a `--outband-payload full` wake-up.
#include "core/imap/header_text.h"

#include <string>

#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

TEST(HeaderFieldValueTest, FindsFieldsCaseInsensitivelyWithFolding) {
  const std::string block =
      "From: Bob <bob@example.org>\r\n"
      "subject: part one\r\n\tpart two\r\n"
      "\r\n";
  EXPECT_EQ(HeaderFieldValue(block, "From"), "Bob <bob@example.org>");
  EXPECT_EQ(HeaderFieldValue(block, "Subject"), "part one\r\n\tpart two");
  EXPECT_EQ(HeaderFieldValue(block, "To"), "");
  EXPECT_EQ(HeaderFieldValue("Subject:x", "Subject"), "x");
  // A field whose name only starts like it is another field.
  EXPECT_EQ(HeaderFieldValue("Subjects: no\r\n", "Subject"), "");
}

TEST(DecodeEncodedWordsTest, BAndQOfUtf8Latin1Ascii) {
  EXPECT_EQ(DecodeEncodedWords("=?UTF-8?B?R3LDvMOfZQ==?="), "Grüße");
  EXPECT_EQ(DecodeEncodedWords("=?utf-8?q?J=C3=BCrgen?= <j@example.org>"),
            "Jürgen <j@example.org>");
  EXPECT_EQ(DecodeEncodedWords("=?ISO-8859-1?Q?Gr=FC=DFe_aus_Bonn?="),
            "Grüße aus Bonn");
  EXPECT_EQ(DecodeEncodedWords("=?iso-8859-1?b?R3L8/GU=?="), "Grüüe");
  EXPECT_EQ(DecodeEncodedWords("=?US-ASCII*en?Q?plain?="), "plain");
  // Blanks between adjacent encoded-words go; others stay.
  EXPECT_EQ(DecodeEncodedWords("=?UTF-8?Q?a?= =?UTF-8?Q?b?= c =?UTF-8?Q?d?="),
            "ab c d");
}

TEST(DecodeEncodedWordsTest, OthersStayRaw) {
  // Another charset, a bad encoding, bad Q and B text, an unterminated word.
  for (const char* raw :
       {"=?KOI8-R?B?8NLJ18XU?=", "=?UTF-8?X?abc?=", "=?UTF-8?Q?a=ZZ?=",
        "=?UTF-8?B?!!!?=", "=?UTF-8?Q?never ends", "a =? b",
        "=?UTF-8?Q?a b?="}) {
    EXPECT_EQ(DecodeEncodedWords(raw), raw) << raw;
  }
  EXPECT_EQ(DecodeEncodedWords("x =?KOI8-R?B?8NLJ18XU?= =?UTF-8?Q?y?="),
            "x =?KOI8-R?B?8NLJ18XU?= y");
}

TEST(CutUtf8Test, NeverSplitsACharacter) {
  const std::string s = "aé€😀";  // 1 + 2 + 3 + 4 bytes
  EXPECT_EQ(CutUtf8(s, 100), s);
  EXPECT_EQ(CutUtf8(s, 10), s);
  EXPECT_EQ(CutUtf8(s, 9), "aé€");
  EXPECT_EQ(CutUtf8(s, 6), "aé€");
  EXPECT_EQ(CutUtf8(s, 5), "aé");
  EXPECT_EQ(CutUtf8(s, 2), "a");
  EXPECT_EQ(CutUtf8(s, 1), "a");
  EXPECT_EQ(CutUtf8(s, 0), "");
}

TEST(HeaderDisplayTextTest, UnfoldsDecodesAndStripsControls) {
  EXPECT_EQ(HeaderDisplayText(
                "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?Q?_dir?=", 256),
            "Grüße dir");
  // CR/LF, also when an encoded-word smuggles them in, and other controls.
  EXPECT_EQ(HeaderDisplayText("a\r\nb\rc\nd\te\x01"
                              "f",
                              256),
            "a b c d e f");
  EXPECT_EQ(HeaderDisplayText("=?UTF-8?Q?x=0D=0AInjected:_1?=", 256),
            "x Injected: 1");
  EXPECT_EQ(HeaderDisplayText("  padded  ", 256), "padded");
  EXPECT_EQ(HeaderDisplayText("\xC2\x85next", 256), "next");  // C1 NEL
  // Not decoded when the source decoded already.
  EXPECT_EQ(HeaderDisplayText("=?UTF-8?Q?a?=", 256, /*decode=*/false),
            "=?UTF-8?Q?a?=");
}

TEST(HeaderDisplayTextTest, InvalidUtf8Replaced) {
  EXPECT_EQ(HeaderDisplayText("caf\xE9", 256), "caf\xEF\xBF\xBD");
  EXPECT_EQ(HeaderDisplayText("\xED\xA0\x80", 256),  // a surrogate
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(HeaderDisplayTextTest, LongTextCutAtACharacterBoundary) {
  std::string subject;
  for (int i = 0; i < 200; ++i) subject += "ü";  // 400 bytes
  const std::string shown = HeaderDisplayText(subject, 255);
  EXPECT_EQ(shown.size(), 254u);
  EXPECT_EQ(shown, subject.substr(0, 254));
  // A huge value costs only its start.
  const std::string huge(8 << 20, 'x');
  EXPECT_EQ(HeaderDisplayText(huge, 256), std::string(256, 'x'));
}

}  // namespace
}  // namespace pimap::imap
