// SmtpDialog against a scripted server: each step feeds the server's reply
// and checks what the client writes next.
#include "bindings/smtp/smtp_dialog.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::smtp {
namespace {

using ::testing::HasSubstr;

SmtpEnvelope Envelope() {
  SmtpEnvelope e;
  e.mail_from = "joe@example.org";
  e.recipients = {"a@x.org", "b@x.org"};
  e.data = "Subject: hi\r\n\r\n.leading dot\r\nend";
  return e;
}

// Feeds `reply` and returns what the client wrote.
std::string Step(SmtpDialog& d, const std::string& reply,
                 SmtpDialog::Next want = SmtpDialog::Next::kContinue) {
  std::string out;
  EXPECT_EQ(d.OnData(reply, &out), want) << reply;
  return out;
}

TEST(SmtpDialogTest, PlainRelay) {
  SmtpOptions options;
  options.helo_name = "gw.example.org";
  SmtpDialog d(options, Envelope());
  EXPECT_EQ(Step(d, "220 mx ESMTP\r\n"), "EHLO gw.example.org\r\n");
  // A multi-line EHLO split across reads.
  EXPECT_EQ(Step(d, "250-mx hello\r\n250-SIZE 1000\r"), "");
  EXPECT_EQ(Step(d, "\n250 8BITMIME\r\n"),
            "MAIL FROM:<joe@example.org> SIZE=32\r\n");
  EXPECT_EQ(Step(d, "250 ok\r\n"), "RCPT TO:<a@x.org>\r\n");
  EXPECT_EQ(Step(d, "250 ok\r\n"), "RCPT TO:<b@x.org>\r\n");
  EXPECT_EQ(Step(d, "251 forwarded\r\n"), "DATA\r\n");
  EXPECT_EQ(Step(d, "354 go\r\n"),
            "Subject: hi\r\n\r\n..leading dot\r\nend\r\n.\r\n");
  EXPECT_FALSE(d.done());
  EXPECT_EQ(Step(d, "250 2.0.0 queued as X\r\n", SmtpDialog::Next::kDone),
            "QUIT\r\n");
  EXPECT_TRUE(d.result().ok());
}

TEST(SmtpDialogTest, RecipientRefusedFailsWhole) {
  SmtpDialog d(SmtpOptions(), Envelope());
  Step(d, "220 mx\r\n");
  Step(d, "250 mx\r\n");
  Step(d, "250 ok\r\n");
  Step(d, "550 5.1.1 <a@x.org>: no such user\r\n", SmtpDialog::Next::kDone);
  EXPECT_EQ(d.result().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.result().message(), "550 5.1.1 <a@x.org>: no such user");
}

TEST(SmtpDialogTest, TemporaryFailureAtEndOfData) {
  SmtpDialog d(SmtpOptions(), Envelope());
  for (const char* r : {"220 mx\r\n", "250 mx\r\n", "250 ok\r\n", "250 ok\r\n",
                        "250 ok\r\n", "354 go\r\n"}) {
    Step(d, r);
  }
  Step(d, "451-4.3.0 try\r\n451 later\r\n", SmtpDialog::Next::kDone);
  EXPECT_EQ(d.result().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(d.result().message(), "451 4.3.0 try / later");
}

TEST(SmtpDialogTest, StartTlsThenAuthPlain) {
  SmtpOptions options;
  options.starttls = true;
  options.auth_user = "joe";
  options.auth_password = "secret";
  SmtpDialog d(options, Envelope());
  Step(d, "220 mx\r\n");
  EXPECT_EQ(Step(d, "250-mx\r\n250 STARTTLS\r\n"), "STARTTLS\r\n");
  EXPECT_EQ(Step(d, "220 go ahead\r\n", SmtpDialog::Next::kStartTls), "");
  std::string out;
  d.OnTlsStarted(&out);
  EXPECT_EQ(out, "EHLO localhost\r\n");
  // "\0joe\0secret" in base64.
  EXPECT_EQ(Step(d, "250-mx\r\n250 AUTH LOGIN PLAIN\r\n"),
            "AUTH PLAIN AGpvZQBzZWNyZXQ=\r\n");
  EXPECT_EQ(Step(d, "235 ok\r\n"), "MAIL FROM:<joe@example.org>\r\n");
}

TEST(SmtpDialogTest, StartTlsRequiredButMissingOrInjected) {
  SmtpOptions options;
  options.starttls = true;
  SmtpDialog missing(options, Envelope());
  Step(missing, "220 mx\r\n");
  Step(missing, "250 mx\r\n", SmtpDialog::Next::kDone);
  EXPECT_THAT(missing.result().message(), HasSubstr("STARTTLS"));

  SmtpDialog injected(options, Envelope());
  Step(injected, "220 mx\r\n");
  Step(injected, "250-mx\r\n250 STARTTLS\r\n");
  Step(injected, "220 go\r\n250 injected\r\n", SmtpDialog::Next::kDone);
  EXPECT_FALSE(injected.result().ok());
}

TEST(SmtpDialogTest, HeloFallbackAndGarbage) {
  SmtpDialog d(SmtpOptions(), Envelope());
  Step(d, "220 old\r\n");
  EXPECT_EQ(Step(d, "502 what\r\n"), "HELO localhost\r\n");
  EXPECT_EQ(Step(d, "250 hi\r\n"), "MAIL FROM:<joe@example.org>\r\n");

  SmtpDialog g(SmtpOptions(), Envelope());
  Step(g, "HTTP/1.1 400 Bad\r\n", SmtpDialog::Next::kDone);
  EXPECT_EQ(g.result().code(), absl::StatusCode::kInvalidArgument);

  SmtpDialog longline(SmtpOptions(), Envelope());
  Step(longline, std::string(kMaxReplyLine + 10, '2'), SmtpDialog::Next::kDone);
  EXPECT_FALSE(longline.result().ok());

  SmtpDialog closed(SmtpOptions(), Envelope());
  Step(closed, "220 mx\r\n");
  closed.OnClosed("reset");
  EXPECT_TRUE(closed.done());
  EXPECT_EQ(closed.result().code(), absl::StatusCode::kUnavailable);
}

TEST(SmtpDialogTest, DotStuff) {
  EXPECT_EQ(SmtpDialog::DotStuff(".a\r\nb\r\n.\r\n"),
            "..a\r\nb\r\n..\r\n.\r\n");
  EXPECT_EQ(SmtpDialog::DotStuff(""), ".\r\n");
  // Bare CR and LF become CRLF, so "\r.\r\n" cannot end the data at a relay
  // that reads a bare CR as a line end.
  EXPECT_EQ(SmtpDialog::DotStuff("a\r.\r\nb\n.c"),
            "a\r\n..\r\nb\r\n..c\r\n.\r\n");
}

}  // namespace
}  // namespace pimap::smtp
