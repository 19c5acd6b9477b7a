// MIME header reading for XCONVERT (mime_part.h).
#include "core/convert/mime_part.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pimap::convert {
namespace {

bool IsTokenChar(char c) {
  // RFC 2045 §5.1 token: any CHAR except SPACE, CTLs and tspecials.
  static constexpr absl::string_view kSpecials = "()<>@,;:\\\"/[]?=";
  return c > 0x20 && c < 0x7f && kSpecials.find(c) == absl::string_view::npos;
}

// The unfolded value of each header field named `name` (first one wins).
std::string FieldValue(absl::string_view header, absl::string_view name) {
  std::vector<absl::string_view> lines = absl::StrSplit(header, '\n');
  std::string value;
  bool in_field = false;
  for (absl::string_view line : lines) {
    absl::ConsumeSuffix(&line, "\r");
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      if (in_field) {
        value.push_back(' ');
        absl::StrAppend(&value, absl::StripAsciiWhitespace(line));
      }
      continue;
    }
    if (in_field) return value;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(
            absl::StripTrailingAsciiWhitespace(line.substr(0, colon)), name)) {
      in_field = true;
      value = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return in_field ? value : std::string();
}

}  // namespace

bool SplitMediaType(absl::string_view media, std::string* type,
                    std::string* subtype) {
  media = media.substr(0, media.find(';'));
  media = absl::StripAsciiWhitespace(media);
  const size_t slash = media.find('/');
  if (slash == absl::string_view::npos) return false;
  absl::string_view t = absl::StripAsciiWhitespace(media.substr(0, slash));
  absl::string_view s = absl::StripAsciiWhitespace(media.substr(slash + 1));
  if (t.empty() || s.empty()) return false;
  for (char c : t) {
    if (!IsTokenChar(c)) return false;
  }
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  *type = absl::AsciiStrToLower(t);
  *subtype = absl::AsciiStrToLower(s);
  return true;
}

PartType ParsePartHeader(absl::string_view header) {
  PartType part;
  const std::string cte = FieldValue(header, "Content-Transfer-Encoding");
  part.transfer_encoding =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(cte));
  const std::string ct = FieldValue(header, "Content-Type");
  if (!SplitMediaType(ct, &part.type, &part.subtype)) {
    part.type = "text";
    part.subtype = "plain";
    return part;
  }
  // Parameters: name=value or name="quoted value", separated by ';'.
  absl::string_view rest(ct);
  size_t semi = rest.find(';');
  while (semi != absl::string_view::npos) {
    rest.remove_prefix(semi + 1);
    const size_t eq = rest.find('=');
    if (eq == absl::string_view::npos) break;
    const absl::string_view name =
        absl::StripAsciiWhitespace(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    rest = absl::StripLeadingAsciiWhitespace(rest);
    std::string value;
    if (!rest.empty() && rest[0] == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i]);
      }
      rest.remove_prefix(std::min(rest.size(), i + 1));
      semi = rest.find(';');
    } else {
      semi = rest.find(';');
      value = std::string(absl::StripAsciiWhitespace(rest.substr(0, semi)));
    }
    if (absl::EqualsIgnoreCase(name, "charset")) part.charset = value;
  }
  return part;
}

}  // namespace pimap::convert
