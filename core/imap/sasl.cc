// SASL PLAIN codec.
#include "core/imap/sasl.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pimap::imap {

absl::StatusOr<SaslPlain> DecodeSaslPlain(absl::string_view base64) {
  std::string decoded;
  if (base64 != "=") {
    // absl's decoder tolerates whitespace; a SASL response never holds any.
    for (char c : base64) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        return absl::InvalidArgumentError("invalid base64");
      }
    }
    if (base64.empty() || !absl::Base64Unescape(base64, &decoded)) {
      return absl::InvalidArgumentError("invalid base64");
    }
  }
  std::vector<absl::string_view> parts = absl::StrSplit(decoded, '\0');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError("malformed PLAIN response");
  }
  if (parts[1].empty()) return absl::InvalidArgumentError("empty authcid");
  return SaslPlain{std::string(parts[0]), std::string(parts[1]),
                   std::string(parts[2])};
}

std::string EncodeSaslPlain(const SaslPlain& p) {
  std::string raw =
      absl::StrCat(p.authzid, absl::string_view("\0", 1), p.authcid,
                   absl::string_view("\0", 1), p.password);
  return absl::Base64Escape(raw);
}

}  // namespace pimap::imap
