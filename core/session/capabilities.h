// What the gateway advertises in its greeting and in CAPABILITY, before and after
// login: only what it really supports.
#ifndef PIMAP_CORE_SESSION_CAPABILITIES_H_
#define PIMAP_CORE_SESSION_CAPABILITIES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::session {

// Before login: LITERAL- (not LITERAL+) and ID. STARTTLS only while TLS can
// still start; AUTH=PLAIN only where credentials may be sent (else
// LOGINDISABLED, RFC 3501 §6.2.3); XZIP where the binding's commands before
// login can run inside it (`xzip`).
std::string PreAuthCapabilities(bool starttls_available, bool login_allowed,
                                bool xzip = false);

// After login: the store's capabilities minus what cannot pass through the
// relay (compression and TLS are per hop; authentication is over). For P-IMAP
// sessions (`pimap`), QRESYNC and NOTIFY are the gateway's business with the
// store, not the device's. XFILTER, XPIMAPPREF and XPROVISION only for
// P-IMAP sessions (a regular one answers them NO [CANNOT]).
// XZIP and ID always (every session driver answers them: command_router.h).
// COMPRESS=DEFLATE only where the binding can switch (`compression`).
// `extra`: the session's own tokens (e.g. XZSTDEVENTS=<id>), appended.
std::string PostAuthCapabilities(const std::vector<std::string>& store_caps,
                                 bool pimap = false, bool compression = true,
                                 absl::string_view extra = "");

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_CAPABILITIES_H_
