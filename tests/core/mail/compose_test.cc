// ComposeOutgoing: envelope, sender rule, Bcc removal, the quoted original,
// attachments byte for byte, and the encoders it uses.
#include "core/mail/compose.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/mail/header_fields.h"
#include "core/mail/mime_leaves.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::mail {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kOriginal[] =
    "From: Ann <ann@x.org>\r\n"
    "To: joe@example.org\r\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    "Subject: plans\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: multipart/alternative; boundary=\"b2\"\r\n"
    "\r\n"
    "--b2\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Meet at 3?\r\n"
    "See you.\r\n"
    "--b2\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>Meet at 3?</p>\r\n"
    "--b2--\r\n"
    "--b1\r\n"
    "Content-Type: image/png; name=a.png\r\n"
    "Content-Disposition: attachment; filename=a.png\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw0KGgo=\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; name=notes.txt\r\n"
    "Content-Disposition: attachment; filename=notes.txt\r\n"
    "\r\n"
    "attached text, kept   as is  \r\n"
    "--b1--\r\n";

ComposeRequest Request(DeliverKind kind, absl::string_view message,
                       bool attach = false) {
  ComposeRequest r;
  r.kind = kind;
  r.attach = attach;
  r.message = message;
  r.original = kOriginal;
  r.sender = "joe@example.org";
  r.boundary_seed = "t";
  return r;
}

TEST(ComposeTest, NewKeepsMessageButBcc) {
  const std::string m =
      "From: Joe <joe@EXAMPLE.org>\r\n"
      "To: a@x.org, Bee <b@x.org>\r\n"
      "Cc: c@x.org\r\n"
      "Bcc: hidden@x.org,\r\n secret@x.org\r\n"
      "Subject: hi\r\n"
      "\r\n"
      "Body\r\n";
  absl::StatusOr<OutgoingMail> out =
      ComposeOutgoing(Request(DeliverKind::kNew, m));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->mail_from, "joe@example.org");
  EXPECT_THAT(out->recipients, ElementsAre("a@x.org", "b@x.org", "c@x.org",
                                           "hidden@x.org", "secret@x.org"));
  EXPECT_EQ(out->data,
            "From: Joe <joe@EXAMPLE.org>\r\n"
            "To: a@x.org, Bee <b@x.org>\r\n"
            "Cc: c@x.org\r\n"
            "Subject: hi\r\n"
            "\r\n"
            "Body\r\n");
}

// At most 100 distinct recipients, counted after merging repeats (any case);
// the 101st stops the reading at once (the list is the device's to make long).
TEST(ComposeTest, RecipientsAreMergedThenBounded) {
  std::string to = "To: ";
  for (int i = 0; i < 150; ++i) {
    absl::StrAppend(&to, i == 0 ? "" : ", ",
                    i % 2 ? "SAME@x.org" : "same@x.org");
  }
  absl::StatusOr<OutgoingMail> out = ComposeOutgoing(
      Request(DeliverKind::kNew, absl::StrCat(to, "\r\nSubject: s\r\n\r\nx")));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->recipients, ElementsAre("same@x.org"));
  to = "To: ";
  for (int i = 0; i < 20000; ++i) {
    absl::StrAppend(&to, i == 0 ? "" : ", ", "r", i, "@x.org");
  }
  out = ComposeOutgoing(
      Request(DeliverKind::kNew, absl::StrCat(to, "\r\nSubject: s\r\n\r\nx")));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "More than 100 recipients");
}

TEST(ComposeTest, SenderRule) {
  EXPECT_EQ(ComposeOutgoing(Request(DeliverKind::kNew,
                                    "From: eve@x.org\r\nTo: a@x.org\r\n\r\nx"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      ComposeOutgoing(
          Request(DeliverKind::kNew,
                  "From: joe@example.org, eve@x.org\r\nTo: a@x.org\r\n\r\nx"))
          .status()
          .code(),
      absl::StatusCode::kPermissionDenied);
  // No From: the user's address is put in.
  absl::StatusOr<OutgoingMail> out =
      ComposeOutgoing(Request(DeliverKind::kNew, "To: a@x.org\n\nlf body\n"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->data,
            "From: <joe@example.org>\r\nTo: a@x.org\r\n\r\nlf body\r\n");
}

TEST(ComposeTest, Refusals) {
  EXPECT_FALSE(
      ComposeOutgoing(Request(DeliverKind::kNew, "Subject: x\r\n\r\nx")).ok());
  EXPECT_FALSE(
      ComposeOutgoing(Request(DeliverKind::kNew, "\r\nbody only")).ok());
  EXPECT_FALSE(
      ComposeOutgoing(Request(DeliverKind::kNew, "To: nobody\r\n\r\nx")).ok());
  std::string many = "To: ";
  for (int i = 0; i <= 100; ++i) many += "a" + std::to_string(i) + "@x.org,";
  EXPECT_FALSE(
      ComposeOutgoing(Request(DeliverKind::kNew, many + "\r\n\r\nx")).ok());
}

TEST(ComposeTest, ReplyQuotesFirstTextPart) {
  absl::StatusOr<OutgoingMail> out = ComposeOutgoing(
      Request(DeliverKind::kReply,
              "To: ann@x.org\r\nBcc: boss@x.org\r\nSubject: Re: plans\r\n"
              "Content-Type: text/plain; charset=us-ascii\r\n\r\nYes.\r\n"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->data,
            "From: <joe@example.org>\r\n"
            "To: ann@x.org\r\n"
            "Subject: Re: plans\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "\r\n"
            "Yes.\r\n"
            "\r\n"
            "On Mon, 7 Feb 1994 21:52:25 -0800, Ann <ann@x.org> wrote:\r\n"
            "> Meet at 3?\r\n"
            "> See you.\r\n");
  EXPECT_THAT(out->recipients, ElementsAre("ann@x.org", "boss@x.org"));
}

TEST(ComposeTest, ForwardAttachesByteForByte) {
  absl::StatusOr<OutgoingMail> out = ComposeOutgoing(
      Request(DeliverKind::kForward,
              "To: b@x.org\r\nSubject: Fwd: plans\r\n\r\nFYI\r\n",
              /*attach=*/true));
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<MimeLeaf> leaves = MimeLeaves(out->data);
  ASSERT_EQ(leaves.size(), 3u) << out->data;
  EXPECT_EQ(leaves[0].media_type, "text/plain");
  const std::string text = DecodeBody(leaves[0]);
  EXPECT_THAT(text, HasSubstr("FYI\r\n\r\n-------- Forwarded Message"));
  EXPECT_THAT(text, HasSubstr("Subject: plans\r\n"));
  EXPECT_THAT(text, HasSubstr("> Meet at 3?\r\n> See you.\r\n"));
  // The attachments: the original's leaves, exactly.
  std::vector<MimeLeaf> original = MimeLeaves(kOriginal);
  EXPECT_EQ(leaves[1].entity, original[2].entity);
  EXPECT_EQ(leaves[2].entity, original[3].entity);
  EXPECT_EQ(
      MediaType(FieldValue(SplitEntity(out->data).header, "Content-Type")),
      "multipart/mixed");
  // Without Y: only the text.
  out = ComposeOutgoing(
      Request(DeliverKind::kForward, "To: b@x.org\r\n\r\nFYI\r\n"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(MimeLeaves(out->data).size(), 1u);
  EXPECT_THAT(out->data, Not(HasSubstr("iVBORw0KGgo=")));
}

TEST(ComposeTest, OwnMultipartStaysWhole) {
  const std::string m =
      "To: b@x.org\r\n"
      "Content-Type: multipart/mixed; boundary=own\r\n"
      "\r\n"
      "--own\r\nContent-Type: text/plain\r\n\r\nmine\r\n"
      "--own\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n"
      "--own--\r\n";
  absl::StatusOr<OutgoingMail> out =
      ComposeOutgoing(Request(DeliverKind::kReply, m, /*attach=*/true));
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<MimeLeaf> leaves = MimeLeaves(out->data);
  ASSERT_EQ(leaves.size(), 5u) << out->data;
  EXPECT_EQ(leaves[0].body, "mine");
  EXPECT_EQ(leaves[1].body, "%PDF");
  EXPECT_THAT(DecodeBody(leaves[2]), HasSubstr("> Meet at 3?"));
  EXPECT_EQ(leaves[3].media_type, "image/png");
}

TEST(ComposeTest, EightBitTextGoesQuotedPrintable) {
  absl::StatusOr<OutgoingMail> out = ComposeOutgoing(
      Request(DeliverKind::kReply,
              "To: ann@x.org\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f"
              "e\r\n"));
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(out->data,
              HasSubstr("Content-Transfer-Encoding: quoted-printable"));
  EXPECT_THAT(out->data, HasSubstr("Gr=C3=BC=C3=9Fe"));
  EXPECT_THAT(out->data, Not(HasSubstr("8bit")));
  std::vector<MimeLeaf> leaves = MimeLeaves(out->data);
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_THAT(DecodeBody(leaves[0]), HasSubstr("Gr\xc3\xbc\xc3\x9f"
                                               "e\r\n"));
}

TEST(ComposeTest, Encoders) {
  EXPECT_EQ(NormalizeCrlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
  EXPECT_EQ(EncodeQuotedPrintable("a=b \r\nx"), "a=3Db=20\r\nx");
  const std::string qp = EncodeQuotedPrintable(std::string(200, 'x'));
  EXPECT_THAT(qp, HasSubstr("=\r\n"));
  for (absl::string_view line : absl::StrSplit(qp, "\r\n")) {
    EXPECT_LE(line.size(), 76u);
  }
}

}  // namespace
}  // namespace pimap::mail
