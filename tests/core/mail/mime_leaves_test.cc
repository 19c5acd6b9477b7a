// MimeLeaves: nested multiparts to leaves with their exact bytes; transfer
// decoding.
#include "core/mail/mime_leaves.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::mail {
namespace {

constexpr char kNested[] =
    "From: a@x.org\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "caf=C3=A9 =\r\nsoft\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>x</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=a.bin\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "AAEC\r\n/w==\r\n"
    "--outerX is not a delimiter\r\n"
    "--outer--\r\n"
    "epilogue\r\n";

TEST(MimeLeavesTest, Nested) {
  std::vector<MimeLeaf> leaves = MimeLeaves(kNested);
  ASSERT_EQ(leaves.size(), 3u);
  EXPECT_EQ(leaves[0].media_type, "text/plain");
  EXPECT_EQ(leaves[0].charset, "utf-8");
  EXPECT_EQ(DecodeBody(leaves[0]), "caf\xc3\xa9 soft");
  EXPECT_EQ(leaves[1].media_type, "text/html");
  EXPECT_EQ(leaves[1].body, "<p>x</p>");
  EXPECT_EQ(leaves[2].media_type, "application/octet-stream");
  EXPECT_TRUE(leaves[2].attachment);
  EXPECT_EQ(leaves[2].entity,
            "Content-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=a.bin\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n"
            "AAEC\r\n/w==\r\n"
            "--outerX is not a delimiter");
  EXPECT_FALSE(leaves[2].top_level);
}

TEST(MimeLeavesTest, SinglePartAndBrokenMultipart) {
  std::vector<MimeLeaf> one = MimeLeaves("Subject: x\r\n\r\nhello\r\n");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0].top_level);
  EXPECT_EQ(one[0].media_type, "text/plain");
  std::vector<MimeLeaf> broken = MimeLeaves(
      "Content-Type: multipart/mixed; boundary=zz\r\n\r\nno delimiters\r\n");
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_EQ(broken[0].media_type, "multipart/mixed");
}

TEST(MimeLeavesTest, DepthBounded) {
  std::string m;
  for (int i = 0; i < 40; ++i) {
    m += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) +
         "\r\n\r\n--b" + std::to_string(i) + "\r\n";
  }
  m += "\r\nleaf\r\n";
  std::vector<MimeLeaf> leaves = MimeLeaves(m);
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(leaves[0].media_type, "multipart/mixed");
}

TEST(MimeLeavesTest, Base64) {
  MimeLeaf leaf;
  leaf.encoding = "base64";
  leaf.body = "aGVs\r\nbG8=\r\n";
  EXPECT_EQ(DecodeBody(leaf), "hello");
}

}  // namespace
}  // namespace pimap::mail
