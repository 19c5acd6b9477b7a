// XCONVERT's parsing and rendering (xconvert.h).
#include "core/session/xconvert.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/convert/mime_part.h"

namespace pimap::session {
namespace {

// section-part = nz-number *("." nz-number) (RFC 3501 §9).
bool ValidSectionPart(absl::string_view s) {
  if (s.empty()) return false;
  bool at_start = true;
  for (char c : s) {
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
    } else if (absl::ascii_isdigit(c)) {
      if (at_start && c == '0') return false;
      at_start = false;
    } else {
      return false;
    }
  }
  return !at_start && s.size() <= 64;
}

// Reads one value of a FETCH response at `*i`: a literal {n}\r\n..., a
// quoted string, NIL, an atom, or a parenthesised list (skipped whole).
// Returns false when the text ends first.
bool ReadValue(absl::string_view r, size_t* i, std::string* value, bool* nil) {
  *nil = false;
  value->clear();
  if (*i >= r.size()) return false;
  const char c = r[*i];
  if (c == '{' || (c == '~' && *i + 1 < r.size() && r[*i + 1] == '{')) {
    const size_t open = r.find('{', *i);
    const size_t close = r.find('}', open);
    size_t n = 0;
    if (close == absl::string_view::npos ||
        !absl::SimpleAtoi(r.substr(open + 1, close - open - 1), &n)) {
      return false;
    }
    size_t data = close + 1;
    if (absl::StartsWith(r.substr(data), "\r\n")) {
      data += 2;
    } else if (absl::StartsWith(r.substr(data), "\n")) {
      data += 1;
    }
    if (data + n > r.size()) return false;
    value->assign(r.data() + data, n);
    *i = data + n;
    return true;
  }
  if (c == '"') {
    size_t j = *i + 1;
    for (; j < r.size() && r[j] != '"'; ++j) {
      if (r[j] == '\\' && j + 1 < r.size()) ++j;
      value->push_back(r[j]);
    }
    *i = j + 1;
    return j < r.size();
  }
  if (c == '(') {
    int depth = 0;
    size_t j = *i;
    for (; j < r.size(); ++j) {
      if (r[j] == '"') {
        for (++j; j < r.size() && r[j] != '"'; ++j) {
          if (r[j] == '\\') ++j;
        }
      } else if (r[j] == '{') {
        std::string skipped;
        bool ignored;
        size_t k = j;
        if (!ReadValue(r, &k, &skipped, &ignored)) return false;
        j = k - 1;
      } else if (r[j] == '(') {
        ++depth;
      } else if (r[j] == ')' && --depth == 0) {
        break;
      }
    }
    *i = j + 1;
    return j < r.size();
  }
  size_t j = *i;
  while (j < r.size() && r[j] != ' ' && r[j] != ')' && r[j] != '\r' &&
         r[j] != '\n') {
    ++j;
  }
  value->assign(r.data() + *i, j - *i);
  *nil = absl::EqualsIgnoreCase(*value, "NIL");
  if (*nil) value->clear();
  *i = j;
  return true;
}

}  // namespace

absl::StatusOr<XConvertRequest> ParseXConvert(
    const std::vector<imap::Arg>& args, size_t from, bool uid) {
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(why);
  };
  if (args.size() != from + 4) {
    return bad("expects <number> BODY[<part>] as <type>/<subtype>");
  }
  XConvertRequest r;
  r.uid = uid;
  const imap::Arg& number = args[from];
  if (number.type != imap::Arg::Type::kAtom ||
      !absl::SimpleAtoi(number.value, &r.number) || r.number == 0 ||
      !absl::ascii_isdigit(number.value[0])) {
    return bad(uid ? "expects a UID" : "expects a message sequence number");
  }
  const imap::Arg& part = args[from + 1];
  absl::string_view spec = part.value;
  for (absl::string_view prefix : {"BODY.PEEK[", "BODY["}) {
    if (absl::StartsWithIgnoreCase(spec, prefix)) {
      spec.remove_prefix(prefix.size());
      break;
    }
  }
  if (part.type != imap::Arg::Type::kAtom || spec.size() == part.value.size() ||
      !absl::ConsumeSuffix(&spec, "]") || !ValidSectionPart(spec)) {
    return bad("expects BODY[<part>] with a part number such as 1 or 2.1");
  }
  r.section = std::string(spec);
  if (args[from + 2].type != imap::Arg::Type::kAtom ||
      !absl::EqualsIgnoreCase(args[from + 2].value, "as")) {
    return bad("expects \"as\" before the target type");
  }
  std::string type, subtype;
  if (!args[from + 3].is_string() &&
      args[from + 3].type != imap::Arg::Type::kAtom) {
    return bad("expects a target type/subtype");
  }
  if (!convert::SplitMediaType(args[from + 3].value, &type, &subtype)) {
    return bad("expects a target type/subtype");
  }
  r.to = absl::StrCat(type, "/", subtype);
  return r;
}

std::string XConvertFetchCommand(const XConvertRequest& request,
                                 size_t max_input_bytes) {
  return absl::StrCat("UID FETCH ", request.target_uid, " (BODY.PEEK[",
                      request.section, ".MIME] BODY.PEEK[", request.section,
                      "]<0.", max_input_bytes + 1, ">)");
}

FetchedPart ParseXConvertFetch(absl::string_view response,
                               absl::string_view section) {
  FetchedPart part;
  const size_t open = response.find('(');
  if (open == absl::string_view::npos) return part;
  const std::string mime_name = absl::StrCat("BODY[", section, ".MIME]");
  const std::string body_name = absl::StrCat("BODY[", section, "]");
  size_t i = open + 1;
  std::string name, value;
  while (i < response.size()) {
    while (i < response.size() && response[i] == ' ') ++i;
    if (i >= response.size() || response[i] == ')') break;
    // The item's name, through its section and <origin> if any.
    size_t j = i;
    int brackets = 0;
    while (j < response.size() && (brackets > 0 || response[j] != ' ')) {
      if (response[j] == '[') ++brackets;
      if (response[j] == ']') --brackets;
      ++j;
    }
    name = absl::AsciiStrToUpper(response.substr(i, j - i));
    i = j + 1;
    bool nil = false;
    if (!ReadValue(response, &i, &value, &nil)) break;
    if (name == mime_name) {
      part.mime_header = std::move(value);
    } else if (absl::StartsWith(name, body_name)) {  // "BODY[3]<0>" too
      part.has_body = !nil;
      part.body = std::move(value);
    }
  }
  // A part that is not there: Dovecot answers both items with empty strings
  // rather than NIL (a part that is there has at least the empty line that
  // ends its MIME header).
  if (part.mime_header.empty() && part.body.empty()) part.has_body = false;
  return part;
}

std::string RenderXConvert(uint32_t msn, absl::string_view data, bool binary) {
  std::string out = absl::StrCat("* ", msn, " XCONVERT ", binary ? "~" : "",
                                 "{", data.size(), "}\r\n");
  out.append(data.data(), data.size());
  out += "\r\n";
  return out;
}

}  // namespace pimap::session
