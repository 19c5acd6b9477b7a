// The arguments of an XDELIVER command (protocol.md §3.6, the draft's syntax
// as cleaned there):
//   XDELIVER N [SAVETO=mailbox] literal
//   XDELIVER R|F [mailbox] uid Y|N [SAVETO=mailbox] literal
// A mailbox given as a quoted string after "SAVETO=" is accepted too
// (SAVETO="Sent Items"). R/F without a mailbox mean the selected one.
#ifndef PIMAP_CORE_MAIL_XDELIVER_REQUEST_H_
#define PIMAP_CORE_MAIL_XDELIVER_REQUEST_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/imap/command.h"
#include "core/mail/compose.h"

namespace pimap::mail {

struct XdeliverRequest {
  DeliverKind kind = DeliverKind::kNew;
  std::string mailbox;  // R/F: the original's folder (empty: the selected)
  uint32_t uid = 0;     // R/F: the original's UID
  bool attach = false;  // R/F: Y
  std::string save_to;  // empty: no copy
  std::string message;  // the literal
};

// InvalidArgument (for the device's BAD) when the arguments do not fit.
absl::StatusOr<XdeliverRequest> ParseXdeliver(const imap::Command& command);

}  // namespace pimap::mail

#endif  // PIMAP_CORE_MAIL_XDELIVER_REQUEST_H_
