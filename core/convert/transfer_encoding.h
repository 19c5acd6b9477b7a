// Content-Transfer-Encoding decoding (RFC 2045 §6): what XCONVERT does to a
// body part fetched from the store before it converts it, so that converters
// and the device see raw octets, never base64 or quoted-printable text.
#ifndef PIMAP_CORE_CONVERT_TRANSFER_ENCODING_H_
#define PIMAP_CORE_CONVERT_TRANSFER_ENCODING_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::convert {

// Decodes `body` sent with transfer encoding `encoding` (case-insensitive;
// empty, 7bit, 8bit and binary: identity). Base64 skips what is not of its
// alphabet (line breaks, stray characters: RFC 2045 §6.8 says to ignore
// them); quoted-printable keeps a malformed "=" as it is (RFC 2045 §6.7
// note 1). An unknown encoding (x-uuencode, ...) is InvalidArgument.
absl::StatusOr<std::string> DecodeTransferEncoding(absl::string_view encoding,
                                                   absl::string_view body);

}  // namespace pimap::convert

#endif  // PIMAP_CORE_CONVERT_TRANSFER_ENCODING_H_
