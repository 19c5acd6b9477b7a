// Serialisation of IMAP response pieces (strings, status lines) and log-safe
// quoting. Everything appends to a caller-owned std::string.
#ifndef PIMAP_CORE_IMAP_WRITER_H_
#define PIMAP_CORE_IMAP_WRITER_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pimap::imap {

// Atom if non-empty, not "NIL" and made only of safe ATOM-CHARs (brackets are
// excluded so the result never looks like a BODY[...] section); else a quoted
// string if quotable (no CR/LF/NUL/8-bit, at most 1024 bytes); else a literal
// "{n}\r\n<bytes>".
void AppendAstring(std::string* out, absl::string_view s);
// Quoted or literal, never an atom.
void AppendString(std::string* out, absl::string_view s);
// NIL for nullptr, else AppendString.
void AppendNString(std::string* out, const std::string* s_or_null);
// "tag OK [code] text\r\n"; the code part is omitted when empty. CR, LF and
// NUL in code/text are replaced by spaces so that a status line can never be
// split into two responses (response injection).
void AppendTaggedStatus(std::string* out, absl::string_view tag,
                        absl::string_view status, absl::string_view code,
                        absl::string_view text);
// "* OK [code] text\r\n", same rules.
void AppendUntaggedStatus(std::string* out, absl::string_view status,
                          absl::string_view code, absl::string_view text);
// Printable, double-quoted, truncated to ~200 bytes, for logs.
std::string QuoteForLog(absl::string_view s);

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_WRITER_H_
