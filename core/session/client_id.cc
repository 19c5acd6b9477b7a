// ID (client_id.h).
#include "core/session/client_id.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/version.h"
#include "core/imap/writer.h"

namespace pimap::session {

namespace {

// Fields Dovecot (and other stores) accept only from a trusted proxy: the
// gateway sets x-originating-ip itself; a client must not set any of them.
bool ReservedForProxies(absl::string_view field) {
  for (absl::string_view prefix : {"x-originating-", "x-connected-", "x-proxy-",
                                   "x-session-", "x-forward-", "x-client-"}) {
    if (absl::StartsWithIgnoreCase(field, prefix)) return true;
  }
  return false;
}

// A quoted string of `s`, whatever it holds (the store only logs it).
void AppendQuotedSanitized(std::string* out, absl::string_view s) {
  std::string clean(s);
  for (char& c : clean) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0 || c == '\r' || c == '\n' || u >= 0x80) c = '?';
  }
  imap::AppendString(out, clean);  // quotable now: short, 7-bit, no CR/LF
}

}  // namespace

absl::StatusOr<std::string> ParseClientId(const std::vector<imap::Arg>& args) {
  if (args.size() != 1) {
    return absl::InvalidArgumentError(
        "ID expects NIL or a parenthesised list of field/value pairs");
  }
  const imap::Arg& list = args[0];
  if (list.type == imap::Arg::Type::kNil) return std::string();
  if (list.type != imap::Arg::Type::kList) {
    return absl::InvalidArgumentError(
        "ID expects NIL or a parenthesised list of field/value pairs");
  }
  const std::vector<imap::Arg>& items = list.children;
  if (items.size() % 2 != 0) {
    return absl::InvalidArgumentError("ID list must hold field/value pairs");
  }
  if (items.size() / 2 > kMaxIdPairs) {
    return absl::InvalidArgumentError(
        absl::StrCat("ID list has more than ", kMaxIdPairs, " pairs"));
  }
  std::string out;
  for (size_t i = 0; i < items.size(); i += 2) {
    const imap::Arg& field = items[i];
    const imap::Arg& value = items[i + 1];
    if (!field.is_astring()) {
      return absl::InvalidArgumentError("ID field must be a string");
    }
    if (field.value.size() > kMaxIdFieldBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("ID field longer than ", kMaxIdFieldBytes, " bytes"));
    }
    if (value.type != imap::Arg::Type::kNil && !value.is_string()) {
      return absl::InvalidArgumentError("ID value must be a string or NIL");
    }
    if (value.value.size() > kMaxIdValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("ID value longer than ", kMaxIdValueBytes, " bytes"));
    }
    if (ReservedForProxies(field.value)) continue;
    if (!out.empty()) out += ' ';
    AppendQuotedSanitized(&out, field.value);
    out += ' ';
    if (value.type == imap::Arg::Type::kNil) {
      out += "NIL";
    } else {
      AppendQuotedSanitized(&out, value.value);
    }
  }
  return out;
}

std::string IdAnswer(absl::string_view tag) {
  std::string out = absl::StrCat("* ID (\"name\" \"pimap\" \"version\" \"",
                                 kVersion, "\")\r\n");
  imap::AppendTaggedStatus(&out, tag, "OK", "", "ID completed");
  return out;
}

}  // namespace pimap::session
