// Header sections field by field (header_fields.h).
#include "core/mail/header_fields.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace pimap::mail {

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string Unfold(absl::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

}  // namespace

EntitySplit SplitEntity(absl::string_view entity) {
  // A blank line right at the start: no header at all.
  if (absl::StartsWith(entity, "\r\n")) return {"", entity.substr(2)};
  if (absl::StartsWith(entity, "\n")) return {"", entity.substr(1)};
  size_t pos = 0;
  while (pos < entity.size()) {
    size_t eol = entity.find('\n', pos);
    if (eol == absl::string_view::npos) break;
    const size_t next = eol + 1;
    if (absl::StartsWith(entity.substr(next), "\r\n")) {
      return {entity.substr(0, next), entity.substr(next + 2)};
    }
    if (absl::StartsWith(entity.substr(next), "\n")) {
      return {entity.substr(0, next), entity.substr(next + 1)};
    }
    pos = next;
  }
  return {entity, ""};
}

std::vector<HeaderField> HeaderFields(absl::string_view header) {
  std::vector<HeaderField> fields;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find('\n', pos);
    end = end == absl::string_view::npos ? header.size() : end + 1;
    while (end < header.size() && IsBlank(header[end])) {
      size_t eol = header.find('\n', end);
      end = eol == absl::string_view::npos ? header.size() : eol + 1;
    }
    const absl::string_view raw = header.substr(pos, end - pos);
    const size_t colon = raw.find(':');
    if (colon != absl::string_view::npos && !IsBlank(raw[0])) {
      fields.push_back(
          {absl::StripTrailingAsciiWhitespace(raw.substr(0, colon)), raw});
    } else if (!fields.empty()) {
      // A line that is no field (nor a continuation) stays with the field
      // before it, so that the header is still covered byte for byte.
      fields.back().raw =
          header.substr(fields.back().raw.data() - header.data(),
                        end - (fields.back().raw.data() - header.data()));
    }
    pos = end;
  }
  return fields;
}

std::vector<std::string> FieldValues(absl::string_view header,
                                     absl::string_view name) {
  std::vector<std::string> values;
  for (const HeaderField& f : HeaderFields(header)) {
    if (absl::EqualsIgnoreCase(f.name, name)) {
      values.push_back(Unfold(f.raw.substr(f.raw.find(':') + 1)));
    }
  }
  return values;
}

std::string FieldValue(absl::string_view header, absl::string_view name) {
  for (const HeaderField& f : HeaderFields(header)) {
    if (absl::EqualsIgnoreCase(f.name, name)) {
      return Unfold(f.raw.substr(f.raw.find(':') + 1));
    }
  }
  return "";
}

std::string MediaType(absl::string_view content_type) {
  absl::string_view t = content_type.substr(0, content_type.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(t));
}

std::string Parameter(absl::string_view value, absl::string_view name) {
  size_t pos = value.find(';');
  while (pos != absl::string_view::npos && pos < value.size()) {
    ++pos;
    while (pos < value.size() && IsBlank(value[pos])) ++pos;
    const size_t eq = value.find('=', pos);
    if (eq == absl::string_view::npos) return "";
    const absl::string_view key =
        absl::StripAsciiWhitespace(value.substr(pos, eq - pos));
    size_t at = eq + 1;
    while (at < value.size() && IsBlank(value[at])) ++at;
    std::string v;
    if (at < value.size() && value[at] == '"') {
      ++at;
      while (at < value.size() && value[at] != '"') {
        if (value[at] == '\\' && at + 1 < value.size()) ++at;
        v.push_back(value[at++]);
      }
      pos = value.find(';', at);
    } else {
      const size_t semi = value.find(';', at);
      v = std::string(absl::StripAsciiWhitespace(value.substr(
          at, semi == absl::string_view::npos ? absl::string_view::npos
                                              : semi - at)));
      pos = semi;
    }
    if (absl::EqualsIgnoreCase(key, name)) return v;
  }
  return "";
}

}  // namespace pimap::mail
