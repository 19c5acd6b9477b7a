// The P-IMAP login form "user#device@domain": splits the device id used for
// push sessions from the user key used for the upstream store login.
#ifndef PIMAP_CORE_IMAP_LOGIN_NAME_H_
#define PIMAP_CORE_IMAP_LOGIN_NAME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::imap {

struct LoginName {
  // The user key: username[@domain], without "#device"; also the name used
  // for the upstream store login.
  std::string user;
  // The device id after '#'; empty for a regular (non-P-IMAP) session.
  std::string device;
  bool has_device() const { return !device.empty(); }
};

// The domain is what follows the LAST '@' (optional); the part before it is
// split at its LAST '#'. Errors (InvalidArgument): empty login, empty
// username, empty device id after '#', empty domain after '@', control
// characters (NUL, CR, LF, ...). Spaces are allowed (quoted logins).
absl::StatusOr<LoginName> ParseLoginName(absl::string_view login);

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_LOGIN_NAME_H_
