// XSETPIMAPPREF / XGETPIMAPPREF(S): validation of names and values (including
// RFC 3501 fetch arguments for the new-message formats), rendering and the
// durable form. See prefs.h for the accepted values.
#include "core/session/prefs.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/imap/writer.h"
#include "core/session/filter.h"
#include "core/session/outband_address.h"

namespace pimap::session {
namespace {

using imap::Arg;

constexpr absl::string_view kAddress = "PIMAP_OUTBAND_ADDRESS";
constexpr absl::string_view kChannel = "PIMAP_OUTBAND_CHANNEL";
constexpr absl::string_view kInbandFormat = "PIMAP_INBAND_NEW_FORMAT";
constexpr absl::string_view kOutbandFormat = "PIMAP_OUTBAND_NEW_FORMAT";
constexpr absl::string_view kEventFilter = "PIMAP_EVENT_FILTER";

absl::Status Bad(absl::string_view m) { return absl::InvalidArgumentError(m); }
absl::Status WebPushAddressOk(absl::string_view address) {
  return address.empty() ? absl::OkStatus()
                         : ParseWebPushSubscription(address).status();
}
absl::Status No(absl::string_view m) {
  return absl::FailedPreconditionError(m);
}

std::string Shown(const Arg& a) {
  return imap::QuoteForLog(a.type == Arg::Type::kList ? "(...)" : a.value);
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsNzNumber(absl::string_view s) { return AllDigits(s) && s[0] != '0'; }

// partial = "<" number "." nz-number ">"; s is empty or the partial.
bool ValidPartial(absl::string_view s) {
  if (s.empty()) return true;
  if (s.size() < 5 || s.front() != '<' || s.back() != '>') return false;
  s = s.substr(1, s.size() - 2);
  const size_t dot = s.find('.');
  return dot != absl::string_view::npos && AllDigits(s.substr(0, dot)) &&
         IsNzNumber(s.substr(dot + 1));
}

// section-part = nz-number *("." nz-number); consumes from *s as far as it
// goes, leaving the rest (starting with "." and a non-digit, or empty).
bool ConsumePart(absl::string_view* s, std::string* out) {
  bool any = false;
  while (!s->empty() && (*s)[0] >= '1' && (*s)[0] <= '9') {
    size_t n = 0;
    while (n < s->size() && (*s)[n] >= '0' && (*s)[n] <= '9') ++n;
    if (any) out->push_back('.');
    absl::StrAppend(out, s->substr(0, n));
    s->remove_prefix(n);
    any = true;
    if (s->size() >= 2 && (*s)[0] == '.' && (*s)[1] >= '1' && (*s)[1] <= '9') {
      s->remove_prefix(1);
      continue;
    }
    break;
  }
  return any;
}

// header-list = "(" header-fld-name *(SP header-fld-name) ")", names as
// atoms or simple quoted strings; rendered upper-cased (field names are
// case-insensitive), quoted only when they must be.
bool CanonicalHeaderList(absl::string_view s, std::string* out) {
  if (s.size() < 3 || s.front() != '(' || s.back() != ')') return false;
  s = s.substr(1, s.size() - 2);
  std::vector<std::string> names;
  size_t i = 0;
  while (i <= s.size()) {
    if (i == s.size()) return false;  // empty list or trailing space
    std::string name;
    if (s[i] == '"') {
      const size_t close = s.find('"', i + 1);
      if (close == absl::string_view::npos || close == i + 1) return false;
      name = std::string(s.substr(i + 1, close - i - 1));
      if (absl::StrContains(name, '\\')) return false;
      i = close + 1;
    } else {
      size_t j = i;
      while (j < s.size() && s[j] != ' ') {
        const unsigned char c = static_cast<unsigned char>(s[j]);
        if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' ||
            c == '"' || c == '\\' || c == '%' || c == '*' || c == '[' ||
            c == ']') {
          return false;
        }
        ++j;
      }
      if (j == i) return false;
      name = std::string(s.substr(i, j - i));
      i = j;
    }
    names.push_back(absl::AsciiStrToUpper(name));
    if (i == s.size()) break;
    if (s[i] != ' ') return false;
    ++i;
  }
  out->push_back('(');
  for (size_t k = 0; k < names.size(); ++k) {
    if (k > 0) out->push_back(' ');
    imap::AppendAstring(out, names[k]);
  }
  out->push_back(')');
  return true;
}

// section-spec inside BODY[...]; `s` is the original text between brackets.
bool CanonicalSection(absl::string_view s, std::string* out) {
  if (s.empty()) return true;
  std::string part;
  const bool has_part = ConsumePart(&s, &part);
  out->append(part);
  if (has_part) {
    if (s.empty()) return true;
    if (s[0] != '.') return false;
    s.remove_prefix(1);
    out->push_back('.');
    if (absl::EqualsIgnoreCase(s, "MIME")) {
      out->append("MIME");
      return true;
    }
  }
  if (absl::EqualsIgnoreCase(s, "HEADER") ||
      absl::EqualsIgnoreCase(s, "TEXT")) {
    out->append(absl::AsciiStrToUpper(s));
    return true;
  }
  for (absl::string_view kw : {"HEADER.FIELDS.NOT ", "HEADER.FIELDS "}) {
    if (s.size() > kw.size() &&
        absl::EqualsIgnoreCase(s.substr(0, kw.size()), kw)) {
      absl::StrAppend(out, kw);
      return CanonicalHeaderList(s.substr(kw.size()), out);
    }
  }
  return false;
}

// The fetch-atts without a section.
constexpr absl::string_view kSimpleFetchAtts[] = {
    "ENVELOPE",      "FLAGS",       "INTERNALDATE", "RFC822",
    "RFC822.HEADER", "RFC822.SIZE", "RFC822.TEXT",  "BODY",
    "BODYSTRUCTURE", "UID",         "MODSEQ"};
// Those with one (and an optional <partial>, but BINARY.SIZE's).
constexpr absl::string_view kSectionFetchAtts[] = {
    "BODY[]", "BODY.PEEK[]", "BINARY[]", "BINARY.PEEK[]", "BINARY.SIZE[]"};

// One fetch-att (not a macro).
absl::StatusOr<std::string> CanonicalFetchAtt(const Arg& a) {
  const std::string bad = absl::StrCat("invalid fetch item ", Shown(a));
  if (a.type != Arg::Type::kAtom) return Bad(bad);
  const std::string upper = absl::AsciiStrToUpper(a.value);
  for (absl::string_view s : kSimpleFetchAtts) {
    if (upper == s) return upper;
  }
  const size_t open = a.value.find('[');
  const size_t close = a.value.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return Bad(bad);
  }
  const std::string name = upper.substr(0, open);
  const absl::string_view inner =
      absl::string_view(a.value).substr(open + 1, close - open - 1);
  const absl::string_view partial =
      absl::string_view(a.value).substr(close + 1);
  std::string out = absl::StrCat(name, "[");
  if (name == "BODY" || name == "BODY.PEEK") {
    if (!CanonicalSection(inner, &out)) return Bad(bad);
  } else if (name == "BINARY" || name == "BINARY.PEEK" ||
             name == "BINARY.SIZE") {
    // section-binary = "[" [section-part] "]" (RFC 3516)
    absl::string_view rest = inner;
    ConsumePart(&rest, &out);
    if (!rest.empty()) return Bad(bad);
    if (name == "BINARY.SIZE" && !partial.empty()) return Bad(bad);
  } else {
    return Bad(bad);
  }
  if (!ValidPartial(partial)) return Bad(bad);
  absl::StrAppend(&out, "]", partial);
  return out;
}

// "NONE" or a fetch argument.
absl::StatusOr<std::string> CanonicalNewFormat(const Arg& a) {
  if (a.type == Arg::Type::kAtom && absl::EqualsIgnoreCase(a.value, "NONE")) {
    return std::string("NONE");
  }
  return CanonicalFetchArg(a);
}

absl::StatusOr<std::string> KeywordValue(
    const Arg& a, absl::string_view name,
    std::initializer_list<absl::string_view> supported) {
  if (!a.is_astring()) {
    return Bad(absl::StrCat(name, " needs an atom value, got ", Shown(a)));
  }
  const std::string upper = absl::AsciiStrToUpper(a.value);
  for (absl::string_view s : supported) {
    if (upper == s) return upper;
  }
  return No(absl::StrCat("unsupported value ", imap::QuoteForLog(a.value),
                         " for ", name,
                         " (supported: ", absl::StrJoin(supported, ", "), ")"));
}

}  // namespace

absl::StatusOr<std::string> CanonicalFetchArg(const Arg& a) {
  if (a.type == Arg::Type::kAtom) {
    const std::string upper = absl::AsciiStrToUpper(a.value);
    if (upper == "ALL" || upper == "FAST" || upper == "FULL") return upper;
    return CanonicalFetchAtt(a);
  }
  if (a.type != Arg::Type::kList) {
    return Bad(absl::StrCat("invalid fetch items ", Shown(a)));
  }
  if (a.children.empty()) return Bad("empty fetch item list");
  std::string out = "(";
  for (size_t i = 0; i < a.children.size(); ++i) {
    absl::StatusOr<std::string> att = CanonicalFetchAtt(a.children[i]);
    if (!att.ok()) return att.status();
    if (i > 0) out.push_back(' ');
    out.append(*att);
  }
  out.push_back(')');
  return out;
}

absl::Status DevicePrefs::Set(const std::vector<Arg>& args, bool replay) {
  if (args.empty() || args[0].type != Arg::Type::kAtom) {
    return Bad("XSETPIMAPPREF needs a preference name and a value");
  }
  const std::string name = absl::AsciiStrToUpper(args[0].value);
  const bool known = name == kAddress || name == kChannel ||
                     name == kInbandFormat || name == kOutbandFormat ||
                     name == kEventFilter;
  if (!known) {
    return Bad(absl::StrCat("unknown preference ", Shown(args[0])));
  }
  if (args.size() != 2) {
    return Bad(absl::StrCat(name, " takes exactly one value"));
  }
  const Arg& value = args[1];
  if (name == kAddress) {
    if (!value.is_astring() && value.type != Arg::Type::kNil) {
      return Bad(absl::StrCat(name, " needs an address string"));
    }
    if (value.value.size() > kMaxOutbandAddress) {
      return Bad(absl::StrCat(name, " is too long"));
    }
    // A subscription (JSON) is checked whatever the channel, so that a
    // device learns of a malformed one when it sets it.
    if (outband_channel == "WEBPUSH" || absl::StartsWith(value.value, "{")) {
      if (absl::Status s = WebPushAddressOk(value.value); !s.ok()) return s;
    }
    if (!replay && !value.value.empty()) {
      if (absl::Status s = CheckEmnAddress(outband_channel, value.value);
          !s.ok()) {
        return s;
      }
    }
    outband_address = value.value;
    return absl::OkStatus();
  }
  if (name == kChannel) {
    absl::StatusOr<std::string> v = KeywordValue(
        value, name, {"SMS", "WAP_PUSH", "UDP", "WEBPUSH", "NONE"});
    if (!v.ok()) return v.status();
    // WEBPUSH needs a subscription as its address: one set before (for
    // another channel) must be one.
    if (*v == "WEBPUSH" && !outband_address.empty()) {
      if (absl::Status s = WebPushAddressOk(outband_address); !s.ok()) {
        return s;
      }
    }
    // SMS and WAP_PUSH: an address set before (for another channel) must
    // be one they can deliver to.
    if (!replay && !outband_address.empty()) {
      if (absl::Status s = CheckEmnAddress(*v, outband_address); !s.ok()) {
        return s;
      }
    }
    outband_channel = *std::move(v);
    return absl::OkStatus();
  }
  if (name == kEventFilter) {
    absl::StatusOr<std::string> v =
        KeywordValue(value, name, {"ALL", "NONE", "NEW"});
    if (!v.ok()) return v.status();
    event_filter = *std::move(v);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> v = CanonicalNewFormat(value);
  if (!v.ok()) {
    return Bad(absl::StrCat(name, ": ", v.status().message()));
  }
  (name == kInbandFormat ? inband_new_format : outband_new_format) =
      *std::move(v);
  return absl::OkStatus();
}

absl::StatusOr<std::string> DevicePrefs::Get(
    const std::vector<Arg>& args) const {
  const std::vector<Arg>* names = &args;
  if (args.size() == 1 && args[0].type == Arg::Type::kList) {
    names = &args[0].children;
  }
  if (names->empty()) return Bad("XGETPIMAPPREF needs preference names");
  std::string out = "(";
  for (size_t i = 0; i < names->size(); ++i) {
    const Arg& a = (*names)[i];
    const std::string name =
        a.type == Arg::Type::kAtom ? absl::AsciiStrToUpper(a.value) : "";
    if (i > 0) out.push_back(' ');
    if (name == kAddress) {
      absl::StrAppend(&out, name, " ");
      imap::AppendAstring(&out, outband_address);
    } else if (name == kChannel) {
      absl::StrAppend(&out, name, " ", outband_channel);
    } else if (name == kInbandFormat) {
      absl::StrAppend(&out, name, " ", inband_new_format);
    } else if (name == kOutbandFormat) {
      absl::StrAppend(&out, name, " ", outband_new_format);
    } else if (name == kEventFilter) {
      absl::StrAppend(&out, name, " ", event_filter);
    } else {
      return Bad(absl::StrCat("unknown preference ", Shown(a)));
    }
  }
  out.push_back(')');
  return out;
}

std::string DevicePrefs::Serialize() const {
  std::string out = "p PIMAP-PREFS 1\r\n";
  absl::StrAppend(&out, "p XSETPIMAPPREF ", kAddress, " ");
  imap::AppendString(&out, outband_address);
  absl::StrAppend(&out, "\r\np XSETPIMAPPREF ", kChannel, " ", outband_channel,
                  "\r\np XSETPIMAPPREF ", kInbandFormat, " ", inband_new_format,
                  "\r\np XSETPIMAPPREF ", kOutbandFormat, " ",
                  outband_new_format, "\r\np XSETPIMAPPREF ", kEventFilter, " ",
                  event_filter, "\r\n");
  return out;
}

std::vector<std::pair<std::string, std::string>> AcceptedPrefValues() {
  std::string formats = "(NONE ALL FAST FULL";
  for (absl::string_view s : kSimpleFetchAtts)
    absl::StrAppend(&formats, " ", s);
  for (absl::string_view s : kSectionFetchAtts) {
    absl::StrAppend(&formats, " ", s);
  }
  formats += ")";
  return {{std::string(kChannel), "(SMS WAP_PUSH UDP WEBPUSH NONE)"},
          {std::string(kInbandFormat), formats},
          {std::string(kOutbandFormat), formats},
          {std::string(kEventFilter), "(ALL NONE NEW)"}};
}

absl::StatusOr<DevicePrefs> DevicePrefs::Parse(absl::string_view text) {
  absl::StatusOr<std::vector<imap::Command>> cmds =
      internal::ParseCommandScript(text);
  if (!cmds.ok()) return cmds.status();
  if (cmds->empty() || (*cmds)[0].name != "PIMAP-PREFS" ||
      (*cmds)[0].args.size() != 1 || (*cmds)[0].args[0].value != "1") {
    return Bad("prefs: missing or unsupported header (PIMAP-PREFS 1)");
  }
  DevicePrefs prefs;
  for (size_t i = 1; i < cmds->size(); ++i) {
    const imap::Command& c = (*cmds)[i];
    if (c.name != "XSETPIMAPPREF") {
      return Bad(absl::StrCat("prefs: unexpected ", c.name));
    }
    if (absl::Status s = prefs.Set(c.args, /*replay=*/true); !s.ok()) {
      return Bad(absl::StrCat("prefs: ", s.message()));
    }
  }
  return prefs;
}

}  // namespace pimap::session
