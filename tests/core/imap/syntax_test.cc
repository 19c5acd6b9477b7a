// core/imap/syntax: atoms, flags, UTF-8 and mailbox names, table-driven, and a
// flag list that can never carry a CR, LF or a closing parenthesis.
#include "core/imap/syntax.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

using namespace std::string_literals;

struct Case {
  std::string in;
  bool want;
};

TEST(SyntaxTest, Atoms) {
  for (const Case& c : std::vector<Case>{
           {"abc", true},
           {"$Forwarded", true},
           {"NonJunk", true},
           {"a.b-c_d+e!#&'", true},
           {"[x", true},  // "[" is an ATOM-CHAR, "]" is not
           {"", false},
           {"a b", false},
           {"a(", false},
           {"a)", false},
           {"{5}", false},
           {"a%", false},
           {"a*", false},
           {"a\"", false},
           {"a\\b", false},
           {"\\Seen", false},
           {"a]", false},
           {"a\r\n", false},
           {"a\x00"s, false},
           {"a\x7f", false},
           {"caf\xc3\xa9", false},  // 8-bit: not a CHAR
       }) {
    EXPECT_EQ(IsAtom(c.in), c.want) << c.in;
  }
}

TEST(SyntaxTest, Flags) {
  for (const Case& c : std::vector<Case>{
           {"\\Seen", true},
           {"\\seen", true},
           {"\\ANSWERED", true},
           {"\\Flagged", true},
           {"\\Deleted", true},
           {"\\Draft", true},
           {"\\Recent", true},
           {"$Label1", true},
           {"Junk", true},
           {"\\Junk", false},  // not a known system flag
           {"\\*", false},
           {"\\", false},
           {"", false},
           {"\\Seen \\Flagged", false},
           {"\\Flagged))", false},
           {"\\Flagged\r\n* 1 EXPUNGE", false},
           {"x)\r\n", false},
           {"\\Seen\x00"s, false},
       }) {
    EXPECT_EQ(IsFlag(c.in), c.want) << c.in;
  }
}

TEST(SyntaxTest, Utf8) {
  for (const Case& c : std::vector<Case>{
           {"", true},
           {"plain", true},
           {"Entw\xc3\xbcrfe", true},    // ü
           {"\xe2\x82\xac", true},       // €
           {"\xf0\x9f\x93\xa7", true},   // 📧
           {"\xef\xbf\xbf", true},       // U+FFFF
           {"\xf4\x8f\xbf\xbf", true},   // U+10FFFF
           {"\xc3", false},              // truncated
           {"\xe2\x82", false},          // truncated
           {"\xc0\xaf", false},          // overlong /
           {"\xc1\xbf", false},          // overlong
           {"\xe0\x80\xaf", false},      // overlong
           {"\xf0\x80\x80\xaf", false},  // overlong
           {"\xed\xa0\x80", false},      // surrogate
           {"\xf4\x90\x80\x80", false},  // past U+10FFFF
           {"\xf5\x80\x80\x80", false},
           {"\x80", false},      // lone continuation
           {"\xc3\x28", false},  // bad continuation
           {"\xff", false},
       }) {
    EXPECT_EQ(IsUtf8(c.in), c.want) << c.in;
  }
}

TEST(SyntaxTest, MailboxNames) {
  for (const Case& c : std::vector<Case>{
           {"INBOX", true},
           {"Work/2024 Reports", true},
           {"Entw&APw-rfe", true},             // mUTF-7
           {"Entw\xc3\xbcrfe", true},          // UTF-8
           {"a \"quoted\" (name) {5}", true},  // quoted on output, never raw
           {"", false},
           {"INBOX\r\n* 1 EXPUNGE", false},
           {"a\nb", false},
           {"a\x00"s, false},
           {"tab\there", false},
           {"del\x7f", false},
           {"bad\xff", false},
           {std::string(64, 'x'), true},
           {std::string(65, 'x'), false},  // the bound below
       }) {
    EXPECT_EQ(IsMailboxName(c.in, 64), c.want) << c.in;
  }
}

TEST(SyntaxTest, FlagListLeavesOutWhatIsNotAFlag) {
  std::string out = "* 1 FETCH (UID 1 FLAGS (";
  // The injection seen in issue 14: a "flag" that closes the list and starts a
  // second response.
  AppendFlagList(&out, {"\\Seen", "\\Flagged))\r\n* 1 EXPUNGE", "$Work", "",
                        "a b", "x)", "\\Junk", "\\Draft"});
  out += "))\r\n";
  EXPECT_EQ(out, "* 1 FETCH (UID 1 FLAGS (\\Seen $Work \\Draft))\r\n");
  std::string none;
  AppendFlagList(&none, {"\r\n", ")"});
  EXPECT_EQ(none, "");
}

}  // namespace
}  // namespace pimap::imap
