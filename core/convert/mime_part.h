// What XCONVERT needs to know of a body part before it converts it: its media
// type, charset and transfer encoding, read from the part's MIME header (the
// store's BODY[<part>.MIME]). Unfolds header lines (RFC 5322 §2.2.3) and
// reads Content-Type parameters (RFC 2045 §5.1), quoted or not.
#ifndef PIMAP_CORE_CONVERT_MIME_PART_H_
#define PIMAP_CORE_CONVERT_MIME_PART_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pimap::convert {

struct PartType {
  std::string type = "text";      // lower-cased
  std::string subtype = "plain";  // lower-cased
  std::string charset;            // as written; empty: none given
  std::string transfer_encoding;  // lower-cased; empty: 7bit
  std::string media() const { return type + "/" + subtype; }
};

// The part described by `header` (the header block, CRLF or LF line ends).
// No or a malformed Content-Type: text/plain (RFC 2045 §5.2).
PartType ParsePartHeader(absl::string_view header);

// Splits "type/subtype" (lower-cased, parameters after ';' dropped); false
// when either half is empty or holds characters a token may not.
bool SplitMediaType(absl::string_view media, std::string* type,
                    std::string* subtype);

}  // namespace pimap::convert

#endif  // PIMAP_CORE_CONVERT_MIME_PART_H_
