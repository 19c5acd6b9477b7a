// The EMN webhook's pure parts (bindings/emn/emn_notifier.h, webhook_url.h):
// the JSON body, its HMAC-SHA256 signature (RFC 4231 vectors), and the URL.
// Delivery is covered end to end by tests/integration/test_outband_emn.py.
#include "bindings/emn/emn_notifier.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "bindings/emn/emn_document.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::emn {
namespace {

using ::testing::HasSubstr;

TEST(EmnNotifierTest, WebhookBody) {
  session::WakeUp w;
  w.user = "joe@foo.com";
  w.channel = "SMS";
  w.address = "+15551234567";
  const absl::Time t = absl::FromCivil(absl::CivilSecond(2002, 4, 16, 6, 40, 0),
                                       absl::UTCTimeZone());
  EXPECT_EQ(
      WebhookBody(w, /*text=*/false, t),
      absl::StrCat(R"({"channel":"SMS","address":"+15551234567",)",
                   R"("content_type":"application/vnd.wap.emn+wbxml",)",
                   R"("body":")",
                   absl::Base64Escape(EmnWbxml("joe@foo.com", t)), R"("})"));
  w.channel = "WAP_PUSH";
  w.address = "a\"b";
  const std::string text = WebhookBody(w, /*text=*/true, t);
  EXPECT_THAT(text, HasSubstr(R"("channel":"WAP_PUSH","address":"a\"b")"));
  EXPECT_THAT(text, HasSubstr(R"("content_type":"text/vnd.wap.emn+xml")"));
  EXPECT_THAT(text, HasSubstr(absl::Base64Escape(EmnXml("joe@foo.com", t))));
}

TEST(EmnNotifierTest, SignatureIsHmacSha256) {
  // RFC 4231 §4.3 (test case 2).
  EXPECT_EQ(WebhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c7"
            "5a003f089d2739839dec58b964ec3843");
  // RFC 4231 §4.2 (test case 1): a 20-byte key of 0x0b.
  EXPECT_EQ(WebhookSignature(std::string(20, '\x0b'), "Hi There"),
            "sha256=b0344c61d8db38535ca8afceaf0bf12b"
            "881dc200c9833da726e9376c2e32cff7");
}

TEST(EmnNotifierTest, WebhookUrl) {
  absl::StatusOr<WebhookUrl> u =
      ParseWebhookUrl("https://sms.example.net:8443/emn?op=1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "sms.example.net");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->authority, "sms.example.net:8443");
  EXPECT_EQ(u->path, "/emn?op=1");
  u = ParseWebhookUrl("http://127.0.0.1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
  u = ParseWebhookUrl("https://[::1]:9/x");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority, "[::1]:9");
  for (const char* bad :
       {"ftp://x/", "https://", "https://u@h/", "https://h:0/", "https://h:x/",
        "https://h/a b", "https://h/#f", "https://[::1/", "https://h_x/",
        "https://[::1]x/"}) {
    EXPECT_FALSE(ParseWebhookUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pimap::emn
