// P-IMAP login name parsing.
#include "core/imap/login_name.h"

#include "absl/strings/str_cat.h"

namespace pimap::imap {

absl::StatusOr<LoginName> ParseLoginName(absl::string_view login) {
  if (login.empty()) return absl::InvalidArgumentError("empty login");
  for (char ch : login) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("control character in login");
    }
  }
  absl::string_view local = login;
  absl::string_view domain;
  bool has_domain = false;
  if (const size_t at = login.rfind('@'); at != absl::string_view::npos) {
    local = login.substr(0, at);
    domain = login.substr(at + 1);
    has_domain = true;
    if (domain.empty()) return absl::InvalidArgumentError("empty domain");
  }
  LoginName name;
  absl::string_view username = local;
  if (const size_t hash = local.rfind('#'); hash != absl::string_view::npos) {
    username = local.substr(0, hash);
    const absl::string_view device = local.substr(hash + 1);
    if (device.empty()) return absl::InvalidArgumentError("empty device id");
    name.device = std::string(device);
  }
  if (username.empty()) return absl::InvalidArgumentError("empty username");
  name.user =
      has_domain ? absl::StrCat(username, "@", domain) : std::string(username);
  return name;
}

}  // namespace pimap::imap
