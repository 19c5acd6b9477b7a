// text/html -> text/plain for XCONVERT: a bounded, single-pass tag stripper
// with entity decoding. Not a browser: it reads tags as a tokenizer does
// (comments, quoted attribute values, <script> and <style> skipped whole),
// turns block elements into line breaks and links into "text <url>", and
// collapses white space outside <pre>. Linear in the input; the output never
// passes the bound it is given.
#ifndef PIMAP_CORE_CONVERT_HTML_TEXT_H_
#define PIMAP_CORE_CONVERT_HTML_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::convert {

// `html` (UTF-8) as plain UTF-8 text. ResourceExhausted past `max_output`.
absl::StatusOr<std::string> HtmlToText(absl::string_view html,
                                       size_t max_output);

// Decodes one entity at the start of `in` ("&amp;", "&#233;", "&#x41;"),
// appending its UTF-8 to `out`; returns the characters it consumed, 0 when
// `in` does not start with an entity the function knows (the '&' is text).
size_t DecodeEntity(absl::string_view in, std::string* out);

}  // namespace pimap::convert

#endif  // PIMAP_CORE_CONVERT_HTML_TEXT_H_
