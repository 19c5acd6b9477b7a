// pimapd's options of XDELIVER's SMTP submission (bindings/smtp,
// docs/xdeliver.md): the MTA, STARTTLS and AUTH PLAIN towards it, the
// sender's domain, the deadline and the largest message. Rows of the one
// option table (option_spec.h).
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

std::string NoneIfEmpty(const std::string& s) {
  return s.empty() ? std::string("none") : s;
}

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

const OptionSpec kSmtpOptionSpecs[] = {
    {"smtp", "HOST:PORT|none",
     "The MTA XDELIVER submits to (a trusted relay or a submission port); "
     "none (the default): XDELIVER is neither advertised nor run.",
     [](absl::string_view v, Options& o) {
       if (v == "none") {
         o.smtp.reset();
         return absl::OkStatus();
       }
       absl::StatusOr<HostPort> hp = ParseHostPort(v);
       if (!hp.ok()) return hp.status();
       o.smtp = *std::move(hp);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.smtp.has_value() ? o.smtp->ToString() : std::string("none");
     }},
    {"smtp-starttls", nullptr,
     "Require STARTTLS on the --smtp connection (the MTA's certificate "
     "verified against the system's CAs and --smtp-ca-file).",
     [](absl::string_view v, Options& o) {
       return Set(ParseBool(v), o.smtp_starttls);
     },
     [](const Options& o) {
       return std::string(o.smtp_starttls ? "true" : "false");
     }},
    {"smtp-ca-file", "FILE",
     "PEM trust anchors added to the system's for --smtp-starttls.",
     [](absl::string_view v, Options& o) {
       o.smtp_ca_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.smtp_ca_file); }},
    {"smtp-auth-user", "NAME",
     "Log in to the MTA with AUTH PLAIN as NAME (the password from "
     "--smtp-auth-password-file); needs --smtp-starttls.",
     [](absl::string_view v, Options& o) {
       o.smtp_auth_user = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.smtp_auth_user); }},
    {"smtp-auth-password-file", "FILE",
     "The password of --smtp-auth-user, the file's first line.",
     [](absl::string_view v, Options& o) {
       o.smtp_auth_password_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.smtp_auth_password_file); }},
    {"smtp-helo", "NAME", "The name pimapd gives in EHLO.",
     [](absl::string_view v, Options& o) {
       o.smtp_helo = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.smtp_helo.empty() ? std::string("the host name") : o.smtp_helo;
     }},
    {"smtp-sender-domain", "DOMAIN",
     "A login name without '@' sends as NAME@DOMAIN (a login with '@' sends "
     "as itself). XDELIVER's envelope sender, and the only address a From: "
     "may give.",
     [](absl::string_view v, Options& o) {
       o.smtp_sender_domain = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.smtp_sender_domain); }},
    {"smtp-timeout", "DURATION",
     "How long one XDELIVER submission may take (connect, dialog, the MTA's "
     "answer to the data); then the device gets NO.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.smtp_timeout);
     },
     [](const Options& o) { return absl::FormatDuration(o.smtp_timeout); }},
    {"xdeliver-max-bytes", "SIZE",
     "The largest message a device may send with XDELIVER (1K..1G).",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, kKiB, 1024 * kMiB), o.xdeliver_max_bytes);
     },
     [](const Options& o) { return FormatByteSize(o.xdeliver_max_bytes); }},
};

}  // namespace

absl::Span<const OptionSpec> SmtpOptionSpecs() { return kSmtpOptionSpecs; }

absl::Status ValidateSmtp(const Options& o) {
  if (!o.smtp_auth_user.empty() && o.smtp_auth_password_file.empty()) {
    return absl::InvalidArgumentError(
        "--smtp-auth-user needs --smtp-auth-password-file");
  }
  if (!o.smtp_auth_user.empty() && !o.smtp_starttls) {
    // A password in clear over the network: not by accident.
    return absl::InvalidArgumentError("--smtp-auth-user needs --smtp-starttls");
  }
  if (!o.smtp.has_value() && (o.smtp_starttls || !o.smtp_auth_user.empty())) {
    return absl::InvalidArgumentError(
        "--smtp-starttls and --smtp-auth-user need --smtp");
  }
  return absl::OkStatus();
}

}  // namespace pimap
