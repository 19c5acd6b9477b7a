// XPROVISION (protocol.md §3.1, R01 with the R02+ untagged form and the
// [Modern] readings): what a device learns of this server's out-of-band
// service: the channels it serves (only those configured), the filter
// criteria and preference values it accepts, and key material (the VAPID
// public key a browser subscribes with, when WEBPUSH is served). Key material
// only over TLS: without it the command is refused with NO
// [PRIVACYREQUIRED] (RFC 5530), since a key substituted in transit would
// bind the device's subscription to someone else.
#ifndef PIMAP_CORE_SESSION_PROVISION_H_
#define PIMAP_CORE_SESSION_PROVISION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"

namespace pimap::session {

struct ProvisionOffer {
  std::vector<std::string> channels;  // e.g. WEBPUSH SMS (NONE is added)
  std::string vapid_public_key;       // base64url; empty: none
};

// The untagged lines (each ending in CRLF) answering XPROVISION with `args`
// for `device` (the login's), e.g.
//   * XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL (WEBPUSH SMS NONE)
//   * XPROVISION XPIMAPPREF PIMAP_EVENT_FILTER (ALL NONE NEW)
//   * XPROVISION XFILTER (ALL ANSWERED ... DAYSBEFORETODAY)
//   * XPROVISION PIMAP_VAPID_KEY (BM...)
// Errors: InvalidArgument (BAD: more than two arguments, or not atoms or
// strings); FailedPrecondition (NO: a device id that is not the login's);
// PermissionDenied (NO [PRIVACYREQUIRED]: key material over a link that is
// not `secure`).
absl::StatusOr<std::string> ProvisionLines(const std::vector<imap::Arg>& args,
                                           absl::string_view device,
                                           const ProvisionOffer& offer,
                                           bool secure);

// The whole answer to an XPROVISION command: its untagged lines and the tagged
// OK, or the tagged NO ([PRIVACYREQUIRED] for key material over a clear
// link). InvalidArgument: the command is malformed (the caller answers BAD,
// as for any bad command). Both kinds of session answer it (protocol.md
// §2.2: R01 allows XPROVISION in a regular session too; its `device` is
// empty, so a device id argument gets NO).
absl::StatusOr<std::string> ProvisionResponse(const imap::Command& command,
                                              absl::string_view device,
                                              const ProvisionOffer& offer,
                                              bool secure);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_PROVISION_H_
