// The header section of an RFC 5322 message or MIME entity, field by field:
// where the header ends, each field with its folded continuation lines kept
// byte for byte, a field's unfolded value, and the parameters of a structured
// MIME field (Content-Type, Content-Disposition). XDELIVER rewrites a
// device's header (drops Bcc, keeps everything else as sent), so fields are
// handled as the exact bytes they were sent as.
#ifndef PIMAP_CORE_MAIL_HEADER_FIELDS_H_
#define PIMAP_CORE_MAIL_HEADER_FIELDS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::mail {

// An entity cut at the blank line that ends its header. `header` includes
// every field's line end; `body` starts after the blank line (empty when
// there is none: a header-only entity).
struct EntitySplit {
  absl::string_view header;
  absl::string_view body;
};
EntitySplit SplitEntity(absl::string_view entity);

// One field as sent: `raw` runs from its name to the end of its last
// continuation line, line end included.
struct HeaderField {
  absl::string_view name;  // as sent (compare case-insensitively)
  absl::string_view raw;
};
std::vector<HeaderField> HeaderFields(absl::string_view header);

// The value of the first field `name` (case-insensitive), unfolded (line
// ends of folding removed), blanks trimmed at both ends; empty if none.
std::string FieldValue(absl::string_view header, absl::string_view name);
// The values of every field `name`, each unfolded and trimmed.
std::vector<std::string> FieldValues(absl::string_view header,
                                     absl::string_view name);

// The lower-cased "type/subtype" of a Content-Type value (empty: none given).
std::string MediaType(absl::string_view content_type);
// A parameter of a structured value ("text/plain; charset=utf-8"), quotes
// and escapes removed; empty if absent. Case-insensitive name.
std::string Parameter(absl::string_view value, absl::string_view name);

}  // namespace pimap::mail

#endif  // PIMAP_CORE_MAIL_HEADER_FIELDS_H_
