// XDELIVER's composition: from the message a device sent (and, for a reply
// or forward, the original as the store holds it) to what goes to SMTP — the
// envelope (MAIL FROM: the user's address; RCPT TO: every address of To, Cc
// and Bcc) and the message with its Bcc fields removed. A reply or forward
// gets the original's first text part appended, quoted ("> "); with
// `attach`, the original's other leaves (attachments) follow it in a
// multipart/mixed, each copied byte for byte with its MIME header. The rules
// (docs/xdeliver.md): a From: must be exactly the user's address (none:
// the gateway adds it); at least one recipient; at most kMaxRecipients.
#ifndef PIMAP_CORE_MAIL_COMPOSE_H_
#define PIMAP_CORE_MAIL_COMPOSE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::mail {

enum class DeliverKind { kNew, kReply, kForward };

struct ComposeRequest {
  DeliverKind kind = DeliverKind::kNew;
  bool attach = false;         // R/F: copy the original's attachments
  absl::string_view message;   // the device's message
  absl::string_view original;  // R/F: the original, whole (BODY[])
  std::string sender;          // the address the user sends as
  // Goes into the multipart boundary (a fresh one per message; tests fix it).
  std::string boundary_seed;
};

struct OutgoingMail {
  std::string mail_from;
  std::vector<std::string> recipients;  // de-duplicated, in order
  std::string data;  // the message (CRLF line ends, not dot-stuffed)
};

inline constexpr size_t kMaxRecipients = 100;

// InvalidArgument: a message XDELIVER refuses (no header, no recipient, an
// address that does not parse); PermissionDenied: a From: the user may not
// use. The message is fit for the device's NO.
absl::StatusOr<OutgoingMail> ComposeOutgoing(const ComposeRequest& request);

// Bare LF (and lone CR) line ends to CRLF.
std::string NormalizeCrlf(absl::string_view text);

// Text to quoted-printable (RFC 2045 §6.7), CRLF line ends kept as hard
// breaks, lines soft-broken before 76 characters.
std::string EncodeQuotedPrintable(absl::string_view text);

}  // namespace pimap::mail

#endif  // PIMAP_CORE_MAIL_COMPOSE_H_
