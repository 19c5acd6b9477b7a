// ParseXdeliver: the draft's forms (protocol.md §3.6) and what gets BAD.
#include "core/mail/xdeliver_request.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::mail {
namespace {

using ::pimap::imap::testing::ParseCommandBytes;

absl::StatusOr<XdeliverRequest> Parse(const std::string& bytes) {
  absl::StatusOr<imap::Command> c = ParseCommandBytes(bytes);
  if (!c.ok()) return c.status();
  return ParseXdeliver(*c);
}

TEST(XdeliverRequestTest, New) {
  absl::StatusOr<XdeliverRequest> r =
      Parse("a XDELIVER N SAVETO=Sent {5+}\r\nhello\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, DeliverKind::kNew);
  EXPECT_EQ(r->save_to, "Sent");
  EXPECT_EQ(r->message, "hello");
  r = Parse("a XDELIVER n {2}\r\nhi\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->save_to, "");
}

TEST(XdeliverRequestTest, ReplyAndForward) {
  absl::StatusOr<XdeliverRequest> r =
      Parse("a XDELIVER R 203 Y {2+}\r\nhi\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, DeliverKind::kReply);
  EXPECT_EQ(r->mailbox, "");
  EXPECT_EQ(r->uid, 203u);
  EXPECT_TRUE(r->attach);
  r = Parse(
      "a XDELIVER F \"Old Mail\" 7 N SAVETO= \"Sent Items\" {2+}\r\nhi\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, DeliverKind::kForward);
  EXPECT_EQ(r->mailbox, "Old Mail");
  EXPECT_EQ(r->uid, 7u);
  EXPECT_FALSE(r->attach);
  EXPECT_EQ(r->save_to, "Sent Items");
}

TEST(XdeliverRequestTest, Bad) {
  for (const char* bytes : {
           "a XDELIVER N\r\n",
           "a XDELIVER N hello\r\n",
           "a XDELIVER X {2+}\r\nhi\r\n",
           "a XDELIVER N 5 {2+}\r\nhi\r\n",
           "a XDELIVER R 0 Y {2+}\r\nhi\r\n",
           "a XDELIVER R INBOX 5 {2+}\r\nhi\r\n",
           "a XDELIVER R 5 Q {2+}\r\nhi\r\n",
           "a XDELIVER F INBOX x Y {2+}\r\nhi\r\n",
           "a XDELIVER N SAVETO=Sent extra {2+}\r\nhi\r\n",
       }) {
    EXPECT_FALSE(Parse(bytes).ok()) << bytes;
  }
}

}  // namespace
}  // namespace pimap::mail
