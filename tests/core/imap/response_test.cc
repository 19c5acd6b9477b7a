// Server response parsing tests (the gateway as a client of the store).
#include "core/imap/response.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::imap {
namespace {

using ::pimap::imap::testing::ArgsDebug;
using ::pimap::imap::testing::ParseResponseBytes;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ResponseTest, Greeting) {
  absl::StatusOr<Response> r = ParseResponseBytes(
      "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
      "LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Response::Kind::kUntagged);
  EXPECT_EQ(r->name, "OK");
  EXPECT_TRUE(r->is_status());
  EXPECT_FALSE(r->number.has_value());
  EXPECT_EQ(r->code,
            "CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
            "LITERAL+ AUTH=PLAIN");
  EXPECT_EQ(r->text, "Dovecot ready.");
  EXPECT_THAT(CapabilitiesFrom(*r),
              ElementsAre("IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID",
                          "ENABLE", "IDLE", "LITERAL+", "AUTH=PLAIN"));
}

TEST(ResponseTest, TaggedOkWithCapability) {
  absl::StatusOr<Response> r = ParseResponseBytes(
      "a1 OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] Logged in\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Response::Kind::kTagged);
  EXPECT_EQ(r->tag, "a1");
  EXPECT_EQ(r->name, "OK");
  EXPECT_EQ(r->text, "Logged in");
  EXPECT_THAT(CapabilitiesFrom(*r),
              ElementsAre("IMAP4REV1", "IDLE", "UIDPLUS"));
}

TEST(ResponseTest, TaggedNo) {
  absl::StatusOr<Response> r = ParseResponseBytes(
      "a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tag, "a2");
  EXPECT_EQ(r->name, "NO");
  EXPECT_EQ(r->code, "AUTHENTICATIONFAILED");
  EXPECT_EQ(r->text, "Authentication failed.");
  EXPECT_THAT(CapabilitiesFrom(*r), IsEmpty());
}

TEST(ResponseTest, StatusTextIsNotTokenized) {
  absl::StatusOr<Response> r =
      ParseResponseBytes("a3 bad Error in IMAP command: \"(unbalanced ] [\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "BAD");
  EXPECT_EQ(r->code, "");
  EXPECT_EQ(r->text, "Error in IMAP command: \"(unbalanced ] [");
  r = ParseResponseBytes("* BYE\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "BYE");
  EXPECT_EQ(r->text, "");
  r = ParseResponseBytes("* OK [UIDVALIDITY 3]\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code, "UIDVALIDITY 3");
  EXPECT_EQ(r->text, "");
  r = ParseResponseBytes("* OK [ALERT no close\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code, "");
  EXPECT_EQ(r->text, "[ALERT no close");
}

TEST(ResponseTest, ListsWithoutASpaceBetweenThem) {
  // RFC 2342's namespace descriptors and RFC 3501's multipart body parts
  // follow one another without a space.
  absl::StatusOr<Response> r = ParseResponseBytes(
      "* NAMESPACE ((\"\" \"/\")(\"Mine/\" \"/\")) NIL "
      "((\"#shared/\" \"/\"))\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->args.size(), 3u);
  EXPECT_EQ(r->args[0].children.size(), 2u);
  r = ParseResponseBytes(
      "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 "
      "1)(\"text\" \"html\" NIL NIL NIL \"7bit\" 1 1) \"alternative\"))\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  // An atom right after a list still needs its space.
  EXPECT_FALSE(
      ParseResponseBytes("* NAMESPACE ((\"\" \"/\"))NIL NIL\r\n").ok());
}

TEST(ResponseTest, Exists) {
  absl::StatusOr<Response> r = ParseResponseBytes("* 3 EXISTS\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Response::Kind::kUntagged);
  ASSERT_TRUE(r->number.has_value());
  EXPECT_EQ(*r->number, 3u);
  EXPECT_EQ(r->name, "EXISTS");
  EXPECT_THAT(r->args, IsEmpty());
  EXPECT_FALSE(r->is_status());
  r = ParseResponseBytes("* 4294967295 expunge\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r->number, 4294967295u);
  EXPECT_EQ(r->name, "EXPUNGE");
  EXPECT_FALSE(ParseResponseBytes("* 4294967296 EXISTS\r\n").ok());
}

TEST(ResponseTest, FetchWithLiteralBody) {
  const std::string body = "From: a@b\r\nSubject: hi\r\n\r\nbody)\r\n";
  absl::StatusOr<Response> r = ParseResponseBytes(
      "* 12 FETCH (UID 77 FLAGS (\\Seen $Junk) BODY[HEADER.FIELDS (FROM)] "
      "{" +
      std::to_string(body.size()) + "}\r\n" + body +
      " INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {0}\r\n)\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r->number, 12u);
  EXPECT_EQ(r->name, "FETCH");
  ASSERT_EQ(r->args.size(), 1u);
  const Arg& list = r->args[0];
  ASSERT_EQ(list.type, Arg::Type::kList);
  ASSERT_EQ(list.children.size(), 10u);
  EXPECT_EQ(list.children[0].value, "UID");
  EXPECT_EQ(list.children[1].value, "77");
  EXPECT_EQ(list.children[3].children[1].value, "$Junk");
  EXPECT_EQ(list.children[4].value, "BODY[HEADER.FIELDS (FROM)]");
  EXPECT_EQ(list.children[5].type, Arg::Type::kLiteral);
  EXPECT_EQ(list.children[5].value, body);
  EXPECT_EQ(list.children[7].value, "17-Jul-1996 02:44:25 -0700");
  EXPECT_EQ(list.children[8].value, "BODY[]");
  EXPECT_EQ(list.children[9].value, "");
}

TEST(ResponseTest, EnvelopeAndBodystructure) {
  absl::StatusOr<Response> r = ParseResponseBytes(
      "* 1 FETCH (ENVELOPE (\"Wed, 17 Jul 1996\" \"a \\\"b\\\" c\" "
      "((\"Terry\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL NIL "
      "\"<B27397-0100000@cac.washington.edu>\") BODYSTRUCTURE ((\"TEXT\" "
      "\"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92) "
      "\"MIXED\"))\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ArgsDebug(r->args),
            "(ENVELOPE (\"Wed, 17 Jul 1996\" \"a \"b\" c\" ((\"Terry\" NIL "
            "\"gray\" \"cac.washington.edu\")) NIL NIL NIL "
            "\"<B27397-0100000@cac.washington.edu>\") BODYSTRUCTURE "
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" "
            "3028 92) \"MIXED\"))");
}

TEST(ResponseTest, DataResponses) {
  absl::StatusOr<Response> r =
      ParseResponseBytes("* CAPABILITY IMAP4rev1 idle AUTH=PLAIN\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(CapabilitiesFrom(*r),
              ElementsAre("IMAP4REV1", "IDLE", "AUTH=PLAIN"));
  r = ParseResponseBytes("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ArgsDebug(r->args), "(\\HasNoChildren) \"/\" \"INBOX\"");
  // Lenient: trailing space (seen from real servers) and extra spaces.
  r = ParseResponseBytes("* SEARCH 2 3  5 \r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ArgsDebug(r->args), "2 3 5");
  r = ParseResponseBytes("* SEARCH\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->args, IsEmpty());
  r = ParseResponseBytes("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ArgsDebug(r->args), "((\"\" \"/\")) NIL NIL");
}

TEST(ResponseTest, Continuation) {
  absl::StatusOr<Response> r = ParseResponseBytes("+ idling\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Response::Kind::kContinuation);
  EXPECT_EQ(r->text, "idling");
  r = ParseResponseBytes("+ \r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Response::Kind::kContinuation);
  EXPECT_EQ(r->text, "");
  r = ParseResponseBytes("+\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Response::Kind::kContinuation);
  EXPECT_EQ(r->text, "");
}

TEST(ResponseTest, Malformed) {
  for (const char* bad :
       {"\r\n", "*\r\n", "* \r\n", "*X OK\r\n", "a1\r\n", "a1 \r\n",
        "a1 FETCH (x)\r\n", "* 1 FETCH (x\r\n", "* 3\r\n", "* LIST \"x\r\n"}) {
    EXPECT_FALSE(ParseResponseBytes(bad).ok()) << bad;
  }
}

TEST(ResponseTest, DepthLimit) {
  ParserLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(ParseResponseBytes("* X (((a)))\r\n", limits).ok());
  EXPECT_FALSE(ParseResponseBytes("* X ((((a))))\r\n", limits).ok());
}

}  // namespace
}  // namespace pimap::imap
