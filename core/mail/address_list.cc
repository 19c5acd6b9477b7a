// Address lists to addr-specs (address_list.h). One pass over the value;
// elements split at top-level commas, a group's "name:" and ";" dropped.
#include "core/mail/address_list.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pimap::mail {

namespace {

// One element (a mailbox, possibly with display name) to its addr-spec.
absl::StatusOr<std::string> ElementAddress(absl::string_view element,
                                           absl::string_view angle) {
  std::string addr;
  if (!angle.empty()) {
    absl::string_view a = angle;
    // An obsolete source route ("@relay,@relay:user@host") goes.
    if (absl::StartsWith(a, "@")) {
      const size_t colon = a.find(':');
      if (colon != absl::string_view::npos) a.remove_prefix(colon + 1);
    }
    addr = std::string(a);
  } else {
    addr = std::string(absl::StripAsciiWhitespace(element));
  }
  const size_t at = addr.rfind('@');
  bool ok = at != std::string::npos && at > 0 && at + 1 < addr.size();
  bool quoted = false;  // blanks and specials are fine in a quoted local part
  for (char c : addr) {
    if (c == '"') quoted = !quoted;
    if (c == '\r' || c == '\n' || c == 0 || c == 0x7f) ok = false;
    if (!quoted && (static_cast<unsigned char>(c) <= ' ' || c == '<' ||
                    c == '>' || c == ',' || c == ';')) {
      ok = false;
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("Not an address: ", element.substr(0, 100)));
  }
  return addr;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> AddrSpecs(absl::string_view value) {
  std::vector<std::string> out;
  std::string element;  // the current element without comments
  std::string angle;    // what stood between < and >
  bool in_angle = false;
  bool saw_angle = false;
  auto flush = [&]() -> absl::Status {
    if (absl::StripAsciiWhitespace(element).empty() && !saw_angle) {
      element.clear();
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> a = ElementAddress(element, angle);
    if (!a.ok()) return a.status();
    out.push_back(std::move(*a));
    element.clear();
    angle.clear();
    saw_angle = false;
    return absl::OkStatus();
  };
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '"') {
      // A quoted string: kept (a quoted local part is an address), its
      // commas and brackets are no structure.
      std::string quoted(1, c);
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size())
          quoted.push_back(value[i++]);
        quoted.push_back(value[i]);
      }
      if (i >= value.size()) {
        return absl::InvalidArgumentError("Unbalanced quote in an address");
      }
      quoted.push_back('"');
      (in_angle ? angle : element) += quoted;
    } else if (c == '(') {
      int depth = 1;
      for (++i; i < value.size() && depth > 0; ++i) {
        if (value[i] == '\\') {
          ++i;
        } else if (value[i] == '(') {
          ++depth;
        } else if (value[i] == ')') {
          --depth;
        }
      }
      if (depth != 0) {
        return absl::InvalidArgumentError("Unbalanced comment in an address");
      }
      --i;
      element.push_back(' ');
    } else if (in_angle) {
      if (c == '>') {
        in_angle = false;
      } else if (c != ' ' && c != '\t') {
        angle.push_back(c);
      }
    } else if (c == '<') {
      if (saw_angle) {
        return absl::InvalidArgumentError("Two <addresses> in one element");
      }
      in_angle = true;
      saw_angle = true;
    } else if (c == ':') {
      element.clear();  // a group's display name
    } else if (c == ',' || c == ';') {
      absl::Status s = flush();
      if (!s.ok()) return s;
    } else {
      element.push_back(c);
    }
  }
  if (in_angle) return absl::InvalidArgumentError("Unbalanced < in an address");
  absl::Status s = flush();
  if (!s.ok()) return s;
  return out;
}

bool SameAddress(absl::string_view a, absl::string_view b) {
  const size_t at_a = a.rfind('@');
  const size_t at_b = b.rfind('@');
  if (at_a == absl::string_view::npos || at_b == absl::string_view::npos) {
    return a == b;
  }
  return a.substr(0, at_a) == b.substr(0, at_b) &&
         absl::EqualsIgnoreCase(a.substr(at_a), b.substr(at_b));
}

}  // namespace pimap::mail
