// CommandAssembler / ParseCommandHead tests, fed through the real Framer.
#include "core/imap/command.h"

#include <string>

#include "absl/status/status.h"
#include "core/imap/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::imap {
namespace {

using ::pimap::imap::testing::ArgsDebug;
using ::pimap::imap::testing::ParseCommandBytes;
using ::testing::HasSubstr;

struct GoodCase {
  std::string input;
  std::string tag;
  std::string name;
  std::string args;  // ArgsDebug rendering
};

void PrintTo(const GoodCase& c, std::ostream* os) {
  *os << QuoteForLog(c.input);
}

class GoodCommandTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(GoodCommandTest, Parses) {
  const GoodCase& c = GetParam();
  absl::StatusOr<Command> cmd = ParseCommandBytes(c.input);
  ASSERT_TRUE(cmd.ok()) << cmd.status() << " for " << c.input;
  EXPECT_EQ(cmd->tag, c.tag);
  EXPECT_EQ(cmd->name, c.name);
  EXPECT_EQ(ArgsDebug(cmd->args), c.args);
}

INSTANTIATE_TEST_SUITE_P(
    All, GoodCommandTest,
    ::testing::Values(
        GoodCase{"a1 NOOP\r\n", "a1", "NOOP", ""},
        GoodCase{"a1 noop\n", "a1", "NOOP", ""},
        GoodCase{"x]y capability\r\n", "x]y", "CAPABILITY", ""},
        GoodCase{"A001 LOGIN \"joe\" \"p\\\\a\\\"ss\"\r\n", "A001", "LOGIN",
                 "\"joe\" \"p\\a\"ss\""},
        GoodCase{"a LOGIN joe \"\"\r\n", "a", "LOGIN", "joe \"\""},
        GoodCase{"a LOGIN \"j\xc3\xb6rg\" x\r\n", "a", "LOGIN",
                 "\"j\xc3\xb6rg\" x"},
        GoodCase{
            "a2 UID FETCH 1:*,5 (FLAGS "
            "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n",
            "a2", "UID",
            "FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)"},
        GoodCase{"a FETCH 1 BODY[]\r\n", "a", "FETCH", "1 BODY[]"},
        GoodCase{"a FETCH 1 (BODY[1.MIME] BINARY.PEEK[1]<0.10>)\r\n", "a",
                 "FETCH", "1 (BODY[1.MIME] BINARY.PEEK[1]<0.10>)"},
        GoodCase{"a3 APPEND INBOX (\\Seen) {5}\r\nhello\r\n", "a3", "APPEND",
                 "INBOX (\\Seen) {5}hello"},
        GoodCase{"a3 APPEND INBOX {5+}\r\nhe\r\no {0}\r\n\r\n", "a3", "APPEND",
                 "INBOX {5}he\r\no {0}"},
        GoodCase{std::string("a APPEND INBOX ~{3}\r\n\0\1\2\r\n", 26), "a",
                 "APPEND", "INBOX ~{3}" + std::string("\0\1\2", 3)},
        GoodCase{"a LOGIN {3}\r\njoe {4}\r\np ss\r\n", "a", "LOGIN",
                 "{3}joe {4}p ss"},
        GoodCase{"a X ({1}\r\n)) ({2}\r\nab)\r\n", "a", "X", "({1})) ({2}ab)"},
        GoodCase{"a4 LIST \"\" *\r\n", "a4", "LIST", "\"\" *"},
        GoodCase{"a4 LIST \"\" %/[Gmail]/x\r\n", "a4", "LIST",
                 "\"\" %/[Gmail]/x"},
        GoodCase{"a4 SELECT foo[bar\r\n", "a4", "SELECT", "foo[bar"},
        GoodCase{"a5 STORE 1:3 +FLAGS.SILENT (\\Deleted \\Seen)\r\n", "a5",
                 "STORE", "1:3 +FLAGS.SILENT (\\Deleted \\Seen)"},
        GoodCase{"a6 X NIL nil (NIL)\r\n", "a6", "X", "NIL NIL (NIL)"},
        GoodCase{"a7 X ((a) (b (c))) ()\r\n", "a7", "X", "((a) (b (c))) ()"},
        GoodCase{"a8 SEARCH CHARSET UTF-8 SUBJECT {2}\r\n\xc3\xa9\r\n", "a8",
                 "SEARCH", "CHARSET UTF-8 SUBJECT {2}\xc3\xa9"},
        GoodCase{"a9 ID (\"name\" \"x\\\\y\")\r\n", "a9", "ID",
                 "(\"name\" \"x\\y\")"}));

struct BadCase {
  std::string input;
  std::string error;  // substring of the message
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << QuoteForLog(c.input);
}

class BadCommandTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadCommandTest, Rejects) {
  const BadCase& c = GetParam();
  absl::StatusOr<Command> cmd = ParseCommandBytes(c.input);
  ASSERT_FALSE(cmd.ok()) << c.input;
  EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(cmd.status().message()), HasSubstr(c.error))
      << c.input;
}

INSTANTIATE_TEST_SUITE_P(
    All, BadCommandTest,
    ::testing::Values(
        BadCase{"\r\n", "empty command"}, BadCase{"a1\r\n", "missing command"},
        BadCase{"a1 \r\n", "missing command"},
        BadCase{"a1  NOOP\r\n", "extra space"},
        BadCase{" NOOP\r\n", "invalid tag"},
        BadCase{"a+1 NOOP\r\n", "invalid tag"},
        BadCase{"* NOOP\r\n", "invalid tag"},
        BadCase{"a1 NO\"OP\r\n", "invalid command name"},
        BadCase{"a1 LOGIN \"joe\r\n", "unterminated quoted string"},
        BadCase{"a1 LOGIN \"jo\\e\"\r\n", "invalid escape"},
        BadCase{"a1 X \"a\" \"b\\\"\r\n", "unterminated quoted string"},
        BadCase{"a1 X (a b\r\n", "missing ')'"},
        BadCase{"a1 X ((a) b\r\n", "missing ')'"},
        BadCase{"a1 X a)\r\n", "unbalanced ')'"},
        BadCase{"a1 X )\r\n", "unexpected ')'"},
        BadCase{"a1 X a  b\r\n", "extra space"},
        BadCase{"a1 X a \r\n", "trailing space"},
        BadCase{"a1 NOOP \r\n", "trailing space"},
        BadCase{"a1 X ( a)\r\n", "space after '('"},
        BadCase{"a1 X (a )\r\n", "space before ')'"},
        BadCase{"a1 X \"a\"b\r\n", "expected space"},
        BadCase{"a1 X (a)b\r\n", "expected space"},
        BadCase{"a1 X {1}\r\naxyz\r\n", "expected space"},
        BadCase{"a1 X a{1}\r\nb\r\n", "expected space before literal"},
        BadCase{std::string("a1 X a\0b\r\n", 10), "expected space"},
        BadCase{std::string("a1 X \"a\0b\"\r\n", 12), "invalid character"},
        BadCase{"a1 X {abc}\r\n", "invalid literal"},
        BadCase{"a1 X a\rb\r\n", "expected space"}));

TEST(CommandAssemblerTest, DepthLimit) {
  ParserLimits limits;
  limits.max_depth = 32;
  const std::string ok =
      "a X " + std::string(32, '(') + "x" + std::string(32, ')') + "\r\n";
  EXPECT_TRUE(ParseCommandBytes(ok, limits).ok());
  const std::string deep =
      "a X " + std::string(33, '(') + "x" + std::string(33, ')') + "\r\n";
  absl::StatusOr<Command> cmd = ParseCommandBytes(deep, limits);
  ASSERT_FALSE(cmd.ok());
  EXPECT_THAT(std::string(cmd.status().message()),
              HasSubstr("nesting too deep"));
  limits.max_depth = 2;
  EXPECT_FALSE(ParseCommandBytes("a X (((x)))\r\n", limits).ok());
  EXPECT_TRUE(ParseCommandBytes("a X ((x))\r\n", limits).ok());
}

TEST(CommandAssemblerTest, TotalBytesBound) {
  EXPECT_TRUE(
      ParseCommandBytes("a APPEND X {10}\r\n0123456789\r\n", ParserLimits(), 40)
          .ok());
  absl::StatusOr<Command> cmd =
      ParseCommandBytes("a APPEND X {30}\r\n012345678901234567890123456789\r\n",
                        ParserLimits(), 40);
  ASSERT_FALSE(cmd.ok());
  EXPECT_THAT(std::string(cmd.status().message()), HasSubstr("too large"));
}

TEST(CommandAssemblerTest, ReusableAfterErrorAndSuccess) {
  CommandAssembler a(ParserLimits(), 1 << 20);
  ASSERT_TRUE(a.AddLine("a1 X (", nullptr).ok());
  EXPECT_FALSE(a.Finish().ok());
  ASSERT_TRUE(a.AddLine("a2 NOOP", nullptr).ok());
  absl::StatusOr<Command> c = a.Finish();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tag, "a2");
  // Out-of-order events are errors, not crashes.
  EXPECT_FALSE(a.AddLiteralData("zz").ok());
  EXPECT_FALSE(a.AddLine("a3 NOOP", nullptr).ok());  // sticky error
  EXPECT_FALSE(a.Finish().ok());
  LiteralHeader h;
  h.size = 3;
  h.header_offset = 5;
  ASSERT_TRUE(a.AddLine("a LOG{3}", &h).ok());
  EXPECT_FALSE(a.AddLiteralData("abcd").ok());  // more than announced
  a.Reset();
  ASSERT_TRUE(a.AddLine("a X {3}", &h).ok());
  ASSERT_TRUE(a.AddLiteralData("ab").ok());
  EXPECT_FALSE(a.Finish().ok());  // incomplete
}

TEST(CommandAssemblerTest, ArgFlags) {
  absl::StatusOr<Command> c =
      ParseCommandBytes("a X atom \"q\" {1}\r\nl NIL (x) ~{1}\r\nb\r\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->args.size(), 6u);
  EXPECT_EQ(c->args[0].type, Arg::Type::kAtom);
  EXPECT_TRUE(c->args[0].is_astring());
  EXPECT_FALSE(c->args[0].is_string());
  EXPECT_EQ(c->args[1].type, Arg::Type::kQuoted);
  EXPECT_TRUE(c->args[1].is_string());
  EXPECT_EQ(c->args[2].type, Arg::Type::kLiteral);
  EXPECT_TRUE(c->args[2].is_string());
  EXPECT_FALSE(c->args[2].binary);
  EXPECT_EQ(c->args[3].type, Arg::Type::kNil);
  EXPECT_EQ(c->args[3].value, "NIL");
  EXPECT_FALSE(c->args[3].is_astring());
  EXPECT_EQ(c->args[4].type, Arg::Type::kList);
  EXPECT_FALSE(c->args[4].is_astring());
  EXPECT_TRUE(c->args[5].binary);
  EXPECT_EQ(c->args[5].value, "b");
}

TEST(ParseCommandHeadTest, Works) {
  absl::StatusOr<CommandHead> h = ParseCommandHead("a1 uid fetch 1 (FLAGS)");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->tag, "a1");
  EXPECT_EQ(h->name, "UID");
  h = ParseCommandHead("tag7 Login {5}");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->name, "LOGIN");
  h = ParseCommandHead("a1 IDLE");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->name, "IDLE");
  EXPECT_THAT(std::string(ParseCommandHead("").status().message()),
              HasSubstr("empty command"));
  EXPECT_THAT(std::string(ParseCommandHead("a1").status().message()),
              HasSubstr("missing command"));
  EXPECT_FALSE(ParseCommandHead("(x NOOP").ok());
  EXPECT_FALSE(ParseCommandHead("a1 {5}").ok());
}

}  // namespace
}  // namespace pimap::imap
