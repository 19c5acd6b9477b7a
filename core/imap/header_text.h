// A message header field's value as display text, for the few places where
// the gateway shows a message's Subject or From (the Web Push wake-up of
// `--outband-payload full`): the field found in a header block the store
// returned (BODY[HEADER.FIELDS (...)]), unfolded, its RFC 2047 encoded-words
// decoded, control characters (CR, LF above all) gone, invalid UTF-8
// replaced, and cut to a byte bound at a character boundary. What comes out
// is valid UTF-8 without control characters, so it can go into JSON as it is.
#ifndef PIMAP_CORE_IMAP_HEADER_TEXT_H_
#define PIMAP_CORE_IMAP_HEADER_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace pimap::imap {

// The raw value (folding CRLFs kept, leading blanks dropped) of the first
// field called `name` (case-insensitive) in `block`, a header section as
// RFC 5322 lays it out ("Name: value\r\n continued\r\n..."); empty if none.
std::string HeaderFieldValue(absl::string_view block, absl::string_view name);

// RFC 2047 encoded-words ("=?charset?B|Q?text?=") decoded to UTF-8 for the
// charsets UTF-8, US-ASCII and ISO-8859-1 (any case; an RFC 2231 "*language"
// suffix ignored). Words of other charsets, and malformed ones, stay as they
// are (better raw than wrong). Blanks between two adjacent encoded-words are
// dropped (RFC 2047 §6.2). Linear in the size of `raw`.
std::string DecodeEncodedWords(absl::string_view raw);

// At most `max_bytes` of the UTF-8 text `s`, never splitting a character.
absl::string_view CutUtf8(absl::string_view s, size_t max_bytes);

// The display text of raw value `raw`: unfolded, encoded-words decoded (if
// `decode`: a source that already decoded them is not decoded twice), every
// run of control characters (CR, LF, TAB, ...) one space, blanks trimmed at
// both ends, bytes that are not UTF-8 replaced by U+FFFD, at most `max_bytes`.
std::string HeaderDisplayText(absl::string_view raw, size_t max_bytes,
                              bool decode = true);

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_HEADER_TEXT_H_
