// The ID command (RFC 2971), which the gateway answers itself in every state
// (before login, in a relayed session, in a P-IMAP session): the check of the
// client's parameter list against the RFC's limits, the form in which the
// gateway passes the client's fields on to the store after login, and the
// gateway's own answer.
#ifndef PIMAP_CORE_SESSION_CLIENT_ID_H_
#define PIMAP_CORE_SESSION_CLIENT_ID_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"

namespace pimap::session {

// RFC 2971 section 3.3.
inline constexpr size_t kMaxIdPairs = 30;
inline constexpr size_t kMaxIdFieldBytes = 30;
inline constexpr size_t kMaxIdValueBytes = 1024;

// The arguments of an ID command: NIL or a parenthesised list of field/value
// pairs (fields strings, values strings or NIL). Returns the pairs as the
// gateway sends them on (`"field" "value" ...`: quoted, bytes a quoted string
// cannot carry replaced by '?'), without the fields the store takes only from
// a trusted proxy (x-originating-ip and the like: the gateway's own); empty
// for NIL or "()". InvalidArgument (for a BAD) when the arguments are not
// such a list or exceed the limits above.
absl::StatusOr<std::string> ParseClientId(const std::vector<imap::Arg>& args);

// The answer to an ID command tagged `tag`: `* ID ("name" "pimap" "version"
// ...)` and the tagged OK.
std::string IdAnswer(absl::string_view tag);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_CLIENT_ID_H_
