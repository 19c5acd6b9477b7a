// XCONVERT's parsing, its store FETCH, reading the store's answer and the
// untagged response (core/session/xconvert.h).
#include "core/session/xconvert.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::session {
namespace {

absl::StatusOr<XConvertRequest> Parse(absl::string_view line, size_t from = 0,
                                      bool uid = false) {
  absl::StatusOr<imap::Command> command =
      imap::testing::ParseCommandBytes(absl::StrCat("a ", line, "\r\n"));
  if (!command.ok()) return command.status();
  return ParseXConvert(command->args, from, uid);
}

TEST(XConvertTest, ParsesTheDraftsSyntax) {
  absl::StatusOr<XConvertRequest> r =
      Parse("XCONVERT 2 BODY[3] as application/pdf");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->number, 2u);
  EXPECT_FALSE(r->uid);
  EXPECT_EQ(r->section, "3");
  EXPECT_EQ(r->to, "application/pdf");
  r = Parse("XUIDCONVERT 120 body.peek[1.2.10] AS Text/Plain;charset=utf-8", 0,
            true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->uid);
  EXPECT_EQ(r->number, 120u);
  EXPECT_EQ(r->section, "1.2.10");
  EXPECT_EQ(r->to, "text/plain");
  // UID XCONVERT (R02): the number after the subcommand.
  r = Parse("UID XCONVERT 7 BODY[1] as \"image/jpeg\"", 1, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->number, 7u);
  EXPECT_EQ(r->to, "image/jpeg");
}

TEST(XConvertTest, RejectsBadSyntax) {
  for (absl::string_view bad :
       {"XCONVERT 2 BODY[3]", "XCONVERT 2 BODY[3] as",
        "XCONVERT 0 BODY[1] as a/b", "XCONVERT -1 BODY[1] as a/b",
        "XCONVERT +1 BODY[1] as a/b", "XCONVERT x BODY[1] as a/b",
        "XCONVERT 1 BODY[] as a/b", "XCONVERT 1 BODY[0] as a/b",
        "XCONVERT 1 BODY[1.] as a/b", "XCONVERT 1 BODY[.1] as a/b",
        "XCONVERT 1 BODY[1..2] as a/b", "XCONVERT 1 BODY[TEXT] as a/b",
        "XCONVERT 1 BODY[1.MIME] as a/b", "XCONVERT 1 BINARY[1] as a/b",
        "XCONVERT 1 BODY[1] to a/b", "XCONVERT 1 BODY[1] as ab",
        "XCONVERT 1 BODY[1] as a/", "XCONVERT 1 BODY[1] as a/b extra",
        "XCONVERT 1 BODY[1] as (a/b)"}) {
    EXPECT_EQ(Parse(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(XConvertTest, FetchCommandAsksForHeaderAndBoundedBody) {
  XConvertRequest r;
  r.section = "2.1";
  r.target_uid = 42;
  EXPECT_EQ(XConvertFetchCommand(r, 1000),
            "UID FETCH 42 (BODY.PEEK[2.1.MIME] BODY.PEEK[2.1]<0.1001>)");
}

TEST(XConvertTest, ReadsTheStoresAnswer) {
  const std::string response =
      "* 3 FETCH (UID 42 BODY[2.MIME] {27}\r\n"
      "Content-Type: image/png\r\n\r\n"
      " BODY[2]<0> {5}\r\n"
      "a)b\"c)\r\n";
  FetchedPart p = ParseXConvertFetch(response, "2");
  EXPECT_TRUE(p.has_body);
  EXPECT_EQ(p.mime_header, "Content-Type: image/png\r\n\r\n");
  EXPECT_EQ(p.body, "a)b\"c");
  // Items in another order, quoted strings, NIL.
  p = ParseXConvertFetch(
      "* 3 FETCH (BODY[1]<0> \"x\\\"y\" FLAGS (\\Seen) BODY[1.MIME] \"\" UID "
      "4)",
      "1");
  EXPECT_TRUE(p.has_body);
  EXPECT_EQ(p.body, "x\"y");
  p = ParseXConvertFetch("* 3 FETCH (UID 4 BODY[1]<0> NIL)", "1");
  EXPECT_FALSE(p.has_body);
  // Dovecot's answer for a part that is not there.
  p = ParseXConvertFetch(
      "* 1 FETCH (UID 1 BODY[9.MIME] {0}\r\n BODY[9]<0> {0}\r\n)", "9");
  EXPECT_FALSE(p.has_body);
  // Cut short: what was read is kept, the rest is missing.
  p = ParseXConvertFetch("* 1 FETCH (UID 1 BODY[1]<0> {10}\r\nabc", "1");
  EXPECT_FALSE(p.has_body);
}

TEST(XConvertTest, RendersLiteralOrLiteral8) {
  EXPECT_EQ(RenderXConvert(2, "abc", false), "* 2 XCONVERT {3}\r\nabc\r\n");
  EXPECT_EQ(RenderXConvert(5, std::string("\0x", 2), true),
            std::string("* 5 XCONVERT ~{2}\r\n\0x\r\n", 23));
}

}  // namespace
}  // namespace pimap::session
