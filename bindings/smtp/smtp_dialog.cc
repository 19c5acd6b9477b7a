// SMTP client state machine (smtp_dialog.h).
#include "bindings/smtp/smtp_dialog.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace pimap::smtp {

SmtpDialog::SmtpDialog(SmtpOptions options, SmtpEnvelope envelope)
    : options_(std::move(options)), envelope_(std::move(envelope)) {}

std::string SmtpDialog::DotStuff(absl::string_view data) {
  std::string out;
  out.reserve(data.size() + data.size() / 64 + 5);
  // Every line ends in CRLF (RFC 5321 §2.3.8: no bare CR or LF in DATA):
  // an original's attachment is copied as it is and may hold them, and a
  // relay that reads a bare CR as a line end would see "\r.\r\n" end the
  // data early (SMTP smuggling). Then a line's leading "." is doubled.
  bool line_start = true;
  for (size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == '\r' || c == '\n') {
      out += "\r\n";
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out.push_back('.');
    out.push_back(c);
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

SmtpDialog::Next SmtpDialog::OnData(absl::string_view bytes, std::string* out) {
  if (state_ == State::kDone) return Next::kDone;
  buffer_.append(bytes.data(), bytes.size());
  size_t pos = 0;
  Next next = Next::kContinue;
  while (state_ != State::kDone) {
    const size_t eol = buffer_.find('\n', pos);
    if (eol == std::string::npos) {
      if (buffer_.size() - pos > kMaxReplyLine) {
        return Fail(absl::InvalidArgumentError(
            "the SMTP server's reply line is too long"));
      }
      break;
    }
    absl::string_view line(buffer_.data() + pos, eol - pos);
    pos = eol + 1;
    absl::ConsumeSuffix(&line, "\r");
    if (line.size() > kMaxReplyLine) {
      return Fail(absl::InvalidArgumentError(
          "the SMTP server's reply line is too long"));
    }
    int code = 0;
    if (line.size() < 3 || !absl::SimpleAtoi(line.substr(0, 3), &code) ||
        code < 200 || code > 599 ||
        (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "not an SMTP reply: ", absl::CHexEscape(line.substr(0, 80)))));
    }
    if (partial_.code != 0 && partial_.code != code) {
      return Fail(absl::InvalidArgumentError(
          "the SMTP server's reply lines disagree on the code"));
    }
    partial_.code = code;
    partial_.lines.emplace_back(line.size() > 4 ? line.substr(4) : "");
    if (partial_.lines.size() > kMaxReplyLines) {
      return Fail(
          absl::InvalidArgumentError("the SMTP server's reply is too long"));
    }
    if (line.size() > 3 && line[3] == '-') continue;  // more lines follow
    Reply reply = std::move(partial_);
    partial_ = Reply();
    reply.text = absl::StrJoin(reply.lines, " / ");
    next = OnReply(reply, out);
    if (next == Next::kStartTls) {
      // Anything after the 220 would be plaintext injected before TLS
      // (CVE-2011-0411 and kin): refused.
      if (pos != buffer_.size()) {
        return Fail(absl::InvalidArgumentError(
            "the SMTP server sent data after its STARTTLS reply"));
      }
      break;
    }
  }
  buffer_.erase(0, pos);
  return state_ == State::kDone ? Next::kDone : next;
}

void SmtpDialog::OnTlsStarted(std::string* out) {
  tls_ = true;
  state_ = State::kEhlo;
  has_starttls_ = has_auth_plain_ = has_8bitmime_ = false;
  max_size_ = 0;
  absl::StrAppend(out, "EHLO ", options_.helo_name, "\r\n");
}

void SmtpDialog::OnClosed(absl::string_view why) {
  if (state_ == State::kDone) return;
  Fail(absl::UnavailableError(
      absl::StrCat("the SMTP server closed the connection: ", why)));
}

SmtpDialog::Next SmtpDialog::Fail(absl::Status status) {
  result_ = std::move(status);
  state_ = State::kDone;
  return Next::kDone;
}

SmtpDialog::Next SmtpDialog::FailReply(const Reply& reply) {
  std::string text = absl::StrCat(reply.code, " ", reply.text);
  return Fail(reply.code >= 500 ? absl::FailedPreconditionError(text)
                                : absl::UnavailableError(text));
}

SmtpDialog::Next SmtpDialog::OnReply(const Reply& reply, std::string* out) {
  const bool positive = reply.code >= 200 && reply.code < 400;
  switch (state_) {
    case State::kGreeting:
      if (reply.code != 220) return FailReply(reply);
      state_ = State::kEhlo;
      absl::StrAppend(out, "EHLO ", options_.helo_name, "\r\n");
      return Next::kContinue;
    case State::kEhlo:
      if (reply.code != 250) {
        // A server without ESMTP: HELO, if nothing needed EHLO.
        if (reply.code >= 500 && !options_.starttls &&
            options_.auth_user.empty()) {
          state_ = State::kHelo;
          absl::StrAppend(out, "HELO ", options_.helo_name, "\r\n");
          return Next::kContinue;
        }
        return FailReply(reply);
      }
      for (size_t i = 1; i < reply.lines.size(); ++i) {
        const std::string ext = absl::AsciiStrToUpper(reply.lines[i]);
        std::vector<absl::string_view> words =
            absl::StrSplit(ext, ' ', absl::SkipEmpty());
        if (words.empty()) continue;
        if (words[0] == "STARTTLS") has_starttls_ = true;
        if (words[0] == "8BITMIME") has_8bitmime_ = true;
        if (words[0] == "AUTH" &&
            std::find(words.begin() + 1, words.end(), "PLAIN") != words.end()) {
          has_auth_plain_ = true;
        }
        if (words[0] == "SIZE" && words.size() > 1) {
          (void)absl::SimpleAtoi(words[1], &max_size_);
        }
      }
      AfterHello(out);
      return state_ == State::kDone ? Next::kDone : Next::kContinue;
    case State::kHelo:
      if (reply.code != 250) return FailReply(reply);
      AfterHello(out);
      return state_ == State::kDone ? Next::kDone : Next::kContinue;
    case State::kStartTls:
      if (reply.code != 220) return FailReply(reply);
      return Next::kStartTls;
    case State::kAuth:
      if (reply.code != 235) return FailReply(reply);
      SendMail(out);
      return state_ == State::kDone ? Next::kDone : Next::kContinue;
    case State::kMail:
      if (!positive) return FailReply(reply);
      state_ = State::kRcpt;
      next_rcpt_ = 0;
      absl::StrAppend(out, "RCPT TO:<", envelope_.recipients[0], ">\r\n");
      return Next::kContinue;
    case State::kRcpt:
      // Every recipient or none: a message half delivered is worse than an
      // error the user can act on.
      if (reply.code != 250 && reply.code != 251) {
        return FailReply(reply);
      }
      if (++next_rcpt_ < envelope_.recipients.size()) {
        absl::StrAppend(out, "RCPT TO:<", envelope_.recipients[next_rcpt_],
                        ">\r\n");
        return Next::kContinue;
      }
      state_ = State::kData;
      absl::StrAppend(out, "DATA\r\n");
      return Next::kContinue;
    case State::kData:
      if (reply.code != 354) return FailReply(reply);
      state_ = State::kDataEnd;
      out->append(DotStuff(envelope_.data));
      envelope_.data.clear();
      envelope_.data.shrink_to_fit();
      return Next::kContinue;
    case State::kDataEnd:
      if (reply.code != 250) return FailReply(reply);
      absl::StrAppend(out, "QUIT\r\n");
      result_ = absl::OkStatus();
      state_ = State::kDone;
      return Next::kDone;
    case State::kDone:
      return Next::kDone;
  }
  return Next::kDone;
}

void SmtpDialog::AfterHello(std::string* out) {
  if (options_.starttls && !tls_) {
    if (!has_starttls_) {
      Fail(absl::FailedPreconditionError(
          "the SMTP server does not offer STARTTLS"));
      return;
    }
    state_ = State::kStartTls;
    absl::StrAppend(out, "STARTTLS\r\n");
    return;
  }
  if (!options_.auth_user.empty()) {
    if (!has_auth_plain_) {
      Fail(absl::FailedPreconditionError(
          "the SMTP server does not offer AUTH PLAIN"));
      return;
    }
    state_ = State::kAuth;
    std::string plain =
        absl::StrCat(std::string(1, '\0'), options_.auth_user,
                     std::string(1, '\0'), options_.auth_password);
    absl::StrAppend(out, "AUTH PLAIN ", absl::Base64Escape(plain), "\r\n");
    return;
  }
  SendMail(out);
}

void SmtpDialog::SendMail(std::string* out) {
  if (envelope_.recipients.empty()) {
    Fail(absl::InvalidArgumentError("no recipient"));
    return;
  }
  if (max_size_ != 0 && envelope_.data.size() > max_size_) {
    Fail(absl::FailedPreconditionError(
        absl::StrCat("the message is larger than the SMTP server takes (",
                     max_size_, " bytes)")));
    return;
  }
  state_ = State::kMail;
  absl::StrAppend(out, "MAIL FROM:<", envelope_.mail_from, ">");
  if (max_size_ != 0) absl::StrAppend(out, " SIZE=", envelope_.data.size());
  const bool eight_bit =
      std::any_of(envelope_.data.begin(), envelope_.data.end(),
                  [](char c) { return static_cast<unsigned char>(c) > 127; });
  if (eight_bit && has_8bitmime_) absl::StrAppend(out, " BODY=8BITMIME");
  absl::StrAppend(out, "\r\n");
}

}  // namespace pimap::smtp
