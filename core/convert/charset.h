// Charset conversion to UTF-8 for XCONVERT's built-in text conversions, with
// glibc's iconv: any charset a store's mail uses (ISO-8859-*, Windows-125x,
// KOI8-R, Shift_JIS, GB18030, ...) that glibc knows.
#ifndef PIMAP_CORE_CONVERT_CHARSET_H_
#define PIMAP_CORE_CONVERT_CHARSET_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::convert {

// `text` in `charset` (case-insensitive; empty: US-ASCII, RFC 2045 §5.2) as
// UTF-8. Bytes that are invalid in the charset become U+FFFD rather than
// failing the whole part: a mail with one bad byte is still readable.
// InvalidArgument when glibc knows no such charset; ResourceExhausted when
// the result would pass `max_output` bytes.
absl::StatusOr<std::string> ToUtf8(absl::string_view charset,
                                   absl::string_view text, size_t max_output);

}  // namespace pimap::convert

#endif  // PIMAP_CORE_CONVERT_CHARSET_H_
