// A JSON string literal (RFC 8259 §7) for the small JSON bodies the gateway
// writes itself (out-of-band wake-ups, the EMN webhook, VAPID claims): one
// escaper instead of one per channel. Bodies that are parsed use RapidJSON.
#ifndef PIMAP_CORE_BASE_JSON_STRING_H_
#define PIMAP_CORE_BASE_JSON_STRING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pimap {

// Appends `s` as a quoted JSON string: '"' and '\' escaped, control
// characters as \u00XX; other bytes (UTF-8 included) as they are.
void AppendJsonString(std::string* out, absl::string_view s);

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_JSON_STRING_H_
