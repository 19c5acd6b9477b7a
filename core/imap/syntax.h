// RFC 3501 syntax checks for values that reach IMAP output without having been
// parsed as IMAP (the store's HTTP pushes, events from any source): atoms,
// flags, mailbox names, and a flag list writer that can only emit valid flags.
// A value that fails these checks must never be written into a response.
#ifndef PIMAP_CORE_IMAP_SYNTAX_H_
#define PIMAP_CORE_IMAP_SYNTAX_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::imap {

// 1*ATOM-CHAR: 7-bit, no CTL, SP, "(", ")", "{", "%", "*", '"', "\", "]".
bool IsAtom(absl::string_view s);
// One of \Seen \Answered \Flagged \Deleted \Draft \Recent (any case).
bool IsSystemFlag(absl::string_view s);
// A message flag as a store may report it: a system flag above or a keyword
// (an atom). Other "\"-flags (flag-extension) are refused: no store we talk to
// has any, and "\*" belongs to PERMANENTFLAGS only.
bool IsFlag(absl::string_view s);
// Well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past
// U+10FFFF).
bool IsUtf8(absl::string_view s);
// Non-empty, at most `max_bytes`, UTF-8 (mUTF-7 is its ASCII subset), no
// control character (CR, LF, NUL, ... DEL): safe to compare, store and log,
// and always writable as a quoted string or literal.
bool IsMailboxName(absl::string_view s, size_t max_bytes);
// "f1 f2 ..." of the flags that pass IsFlag; any other is left out, so a flag
// list can never close its parenthesis early or end the line.
void AppendFlagList(std::string* out, const std::vector<std::string>& flags);

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_SYNTAX_H_
