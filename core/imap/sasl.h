// SASL PLAIN (RFC 4616) encoding and decoding of the base64 client response.
#ifndef PIMAP_CORE_IMAP_SASL_H_
#define PIMAP_CORE_IMAP_SASL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::imap {

struct SaslPlain {
  std::string authzid;
  std::string authcid;
  std::string password;
};

// "=" alone means an empty response (which then fails: it has no NULs).
// Errors (InvalidArgument): bad base64, not exactly two NULs, empty authcid.
absl::StatusOr<SaslPlain> DecodeSaslPlain(absl::string_view base64);
// Base64 of authzid NUL authcid NUL password.
std::string EncodeSaslPlain(const SaslPlain& p);

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_SASL_H_
