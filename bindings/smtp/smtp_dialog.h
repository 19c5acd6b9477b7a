// The client side of one SMTP submission (RFC 5321), as a state machine that
// knows no socket: the server's bytes go in (OnData), the commands to write
// come out, one command at a time (no PIPELINING: a submission is a handful
// of round trips on a local relay). Greeting, EHLO (HELO when the server
// knows no EHLO), optionally STARTTLS (RFC 3207: the caller puts TLS under
// the stream and calls OnTlsStarted) and AUTH PLAIN (RFC 4954), MAIL FROM,
// one RCPT TO per recipient (every one must be accepted: nothing is sent to
// some recipients only), DATA with the message dot-stuffed, QUIT.
// The result is OK only after the server's 250 to the end of the data.
// Replies are bounded (line length, lines per reply). Tested against a
// scripted peer in tests/bindings/smtp/smtp_dialog_test.cc; carried on the
// shard's ring by smtp_submission.h.
#ifndef PIMAP_BINDINGS_SMTP_SMTP_DIALOG_H_
#define PIMAP_BINDINGS_SMTP_SMTP_DIALOG_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pimap::smtp {

struct SmtpOptions {
  std::string helo_name = "localhost";  // our name in EHLO
  bool starttls = false;                // require STARTTLS before MAIL
  std::string auth_user;                // non-empty: AUTH PLAIN
  std::string auth_password;
};

struct SmtpEnvelope {
  std::string mail_from;
  std::vector<std::string> recipients;
  std::string data;  // the message, CRLF line ends, not dot-stuffed
};

// One server reply line is at most this long (RFC 5321 §4.5.3.1.5: 512),
// generously; one reply at most this many lines.
inline constexpr size_t kMaxReplyLine = 4096;
inline constexpr size_t kMaxReplyLines = 256;

class SmtpDialog {
 public:
  enum class Next {
    kContinue,  // write what was appended (if anything), read on
    kStartTls,  // write what was appended, then start TLS; OnTlsStarted
    kDone,      // finished: result() says how
  };

  SmtpDialog(SmtpOptions options, SmtpEnvelope envelope);

  // Bytes from the server; appends to `out` what to write next.
  Next OnData(absl::string_view bytes, std::string* out);
  // TLS is up after kStartTls: EHLO again (appended to `out`).
  void OnTlsStarted(std::string* out);
  // The connection ended before kDone (Unavailable with `why`).
  void OnClosed(absl::string_view why);

  bool done() const { return state_ == State::kDone; }
  // OK: the server accepted the message (250 to the end of DATA). Else the
  // failing reply ("550 5.1.1 <x@y>: no such user"), as Unavailable for a
  // 4xx or a broken connection, FailedPrecondition for a 5xx, and
  // InvalidArgument for a server that does not speak SMTP.
  const absl::Status& result() const { return result_; }

  // `data` dot-stuffed (RFC 5321 §4.5.2), ending in CRLF "." CRLF.
  static std::string DotStuff(absl::string_view data);

 private:
  enum class State {
    kGreeting,
    kEhlo,
    kHelo,
    kStartTls,
    kAuth,
    kMail,
    kRcpt,
    kData,
    kDataEnd,
    kDone,
  };
  struct Reply {
    int code = 0;
    std::string text;  // every line's text, joined by " / "
    std::vector<std::string> lines;
  };

  // Runs the state machine on one whole reply.
  Next OnReply(const Reply& reply, std::string* out);
  // After EHLO/HELO (or TLS, or AUTH): the next step towards MAIL FROM.
  void AfterHello(std::string* out);
  void SendMail(std::string* out);
  Next Fail(absl::Status status);
  Next FailReply(const Reply& reply);

  SmtpOptions options_;
  SmtpEnvelope envelope_;
  State state_ = State::kGreeting;
  absl::Status result_ =
      absl::UnavailableError("no answer from the SMTP server");
  std::string buffer_;  // a reply not yet complete
  Reply partial_;
  size_t next_rcpt_ = 0;
  bool tls_ = false;
  // What EHLO said the server offers.
  bool has_starttls_ = false;
  bool has_auth_plain_ = false;
  bool has_8bitmime_ = false;
  size_t max_size_ = 0;  // SIZE (0: no limit said)
};

}  // namespace pimap::smtp

#endif  // PIMAP_BINDINGS_SMTP_SMTP_DIALOG_H_
