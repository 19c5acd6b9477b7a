// The addr-specs ("user@example.org") of an RFC 5322 address-list field
// value (To, Cc, Bcc, From): display names, quoted strings, comments, angle
// brackets, source routes and groups are understood and dropped. XDELIVER
// takes its SMTP recipients and the sender check from these.
#ifndef PIMAP_CORE_MAIL_ADDRESS_LIST_H_
#define PIMAP_CORE_MAIL_ADDRESS_LIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::mail {

// Every address of `value` in order (an empty group gives none).
// InvalidArgument names the first element that is no usable address (no
// '@', blanks or control characters in it, unbalanced brackets/quotes).
absl::StatusOr<std::vector<std::string>> AddrSpecs(absl::string_view value);

// Whether two addresses are the same mailbox for the sender check: the
// domain compares case-insensitively, the local part exactly (RFC 5321 §2.4).
bool SameAddress(absl::string_view a, absl::string_view b);

}  // namespace pimap::mail

#endif  // PIMAP_CORE_MAIL_ADDRESS_LIST_H_
