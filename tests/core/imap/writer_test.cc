// Writer tests, including the round trip: what AppendAstring/AppendString
// write is parsed back by the command parser to the same value.
#include "core/imap/writer.h"

#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::imap {
namespace {

using ::pimap::imap::testing::ParseCommandBytes;

std::string Astring(absl::string_view s) {
  std::string out;
  AppendAstring(&out, s);
  return out;
}

std::string String(absl::string_view s) {
  std::string out;
  AppendString(&out, s);
  return out;
}

TEST(WriterTest, AstringForms) {
  EXPECT_EQ(Astring("INBOX"), "INBOX");
  EXPECT_EQ(Astring("Sent.2024-01"), "Sent.2024-01");
  EXPECT_EQ(Astring(""), "\"\"");
  EXPECT_EQ(Astring("NIL"), "\"NIL\"");
  EXPECT_EQ(Astring("nil"), "\"nil\"");
  EXPECT_EQ(Astring("a b"), "\"a b\"");
  EXPECT_EQ(Astring("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Astring("[Gmail]/Sent"), "\"[Gmail]/Sent\"");
  EXPECT_EQ(Astring("50%"), "\"50%\"");
  EXPECT_EQ(Astring("\xc3\xa9"), "{2}\r\n\xc3\xa9");
  EXPECT_EQ(Astring("a\r\nb"), "{4}\r\na\r\nb");
  EXPECT_EQ(Astring(std::string(1025, 'x')), std::string(1025, 'x'));
  EXPECT_EQ(Astring(std::string(1025, ' ')).substr(0, 8), "{1025}\r\n");
}

TEST(WriterTest, StringForms) {
  EXPECT_EQ(String("INBOX"), "\"INBOX\"");
  EXPECT_EQ(String(""), "\"\"");
  EXPECT_EQ(String(std::string("a\0b", 3)), std::string("{3}\r\na\0b", 8));
  std::string out;
  AppendNString(&out, nullptr);
  out.push_back(' ');
  const std::string s = "x";
  AppendNString(&out, &s);
  EXPECT_EQ(out, "NIL \"x\"");
}

TEST(WriterTest, StatusLines) {
  std::string out;
  AppendTaggedStatus(&out, "a1", "OK", "READ-WRITE", "SELECT completed");
  AppendTaggedStatus(&out, "a2", "NO", "", "no such mailbox");
  AppendUntaggedStatus(&out, "OK", "UIDVALIDITY 3", "UIDs valid");
  AppendUntaggedStatus(&out, "BYE", "", "bye\r\n* OK injected");
  EXPECT_EQ(out,
            "a1 OK [READ-WRITE] SELECT completed\r\n"
            "a2 NO no such mailbox\r\n"
            "* OK [UIDVALIDITY 3] UIDs valid\r\n"
            "* BYE bye  * OK injected\r\n");
}

TEST(WriterTest, QuoteForLog) {
  EXPECT_EQ(QuoteForLog("a1 LOGIN x\r\n"), "\"a1 LOGIN x\\r\\n\"");
  EXPECT_EQ(QuoteForLog(std::string("\0\xff\"", 3)), "\"\\x00\\xff\\\"\"");
  const std::string q = QuoteForLog(std::string(1000, 'a'));
  EXPECT_EQ(q, "\"" + std::string(200, 'a') + "\"...(1000 bytes)");
}

void ExpectRoundTrip(const std::string& s) {
  for (bool astring : {true, false}) {
    std::string line = "a1 X ";
    if (astring) {
      AppendAstring(&line, s);
    } else {
      AppendString(&line, s);
    }
    line += " end\r\n";
    absl::StatusOr<Command> cmd = ParseCommandBytes(line);
    ASSERT_TRUE(cmd.ok()) << cmd.status() << " for " << QuoteForLog(line);
    ASSERT_EQ(cmd->args.size(), 2u) << QuoteForLog(line);
    EXPECT_TRUE(cmd->args[0].is_astring()) << QuoteForLog(line);
    if (!astring) {
      EXPECT_TRUE(cmd->args[0].is_string());
    }
    EXPECT_EQ(cmd->args[0].value, s) << QuoteForLog(line);
    EXPECT_EQ(cmd->args[1].value, "end");
  }
}

TEST(WriterTest, RoundTripFixed) {
  for (const char* s :
       {"INBOX",  "",      "NIL", "Nil",    "a b", "\"",  "\\",
        "\\Seen", "[",     "]",   "BODY[]", "a[b", "{5}", "{5+}",
        "~{1}",   "x {3}", "(",   ")",      "*",   "%",   "\t",
        "\x7f",   "\xff",  "\r",  "\n",     "\r\n"}) {
    ExpectRoundTrip(s);
  }
  ExpectRoundTrip(std::string("\0", 1));
  ExpectRoundTrip(std::string(5000, 'q'));
}

TEST(WriterTest, RoundTripRandom) {
  std::mt19937 rng(1234);
  const std::string alphabet =
      std::string("aZ09 \"\\()[]{}<>%*+~.-_#@\r\n\t\x7f\x80\xc3\xa9") +
      std::string(1, '\0');
  for (int i = 0; i < 3000; ++i) {
    const size_t len = rng() % 24;
    std::string s;
    for (size_t k = 0; k < len; ++k)
      s.push_back(alphabet[rng() % alphabet.size()]);
    ExpectRoundTrip(s);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace pimap::imap
