// XFILTER parsing and search-key validation, FilterSpec rendering, and the
// per-device filter table with its durable form. See filter.h for the
// protocol readings adopted.
#include "core/session/filter.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/imap/framer.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"

namespace pimap::session {
namespace {

using imap::Arg;

constexpr const char* kMonths[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
// DAYSBEFORETODAY bound: a century of days, so that date arithmetic never
// leaves absl's civil range and the number fits an int.
constexpr uint32_t kMaxDays = 36600;

absl::Status Bad(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

std::string Shown(const Arg& a) {
  return imap::QuoteForLog(a.type == Arg::Type::kList ? "(...)" : a.value);
}

bool ParseNumber(absl::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// RFC 3501 date-text "d-Mon-yyyy" (day 1 or 2 digits), validated as a real
// calendar date; rendered canonically without a leading zero.
absl::StatusOr<std::string> CanonicalDate(absl::string_view s) {
  const std::string err = absl::StrCat("invalid date ", imap::QuoteForLog(s),
                                       " (expected d-Mon-yyyy)");
  const size_t d1 = s.find('-');
  if (d1 == absl::string_view::npos || d1 == 0 || d1 > 2) return Bad(err);
  const size_t d2 = s.find('-', d1 + 1);
  if (d2 != d1 + 4 || s.size() != d2 + 5) return Bad(err);
  uint32_t day = 0, year = 0;
  if (!ParseNumber(s.substr(0, d1), &day) ||
      !ParseNumber(s.substr(d2 + 1), &year)) {
    return Bad(err);
  }
  int month = 0;
  for (int m = 0; m < 12; ++m) {
    if (absl::EqualsIgnoreCase(s.substr(d1 + 1, 3), kMonths[m])) month = m + 1;
  }
  if (month == 0 || day == 0 ||
      static_cast<int>(day) > DaysInMonth(static_cast<int>(year), month)) {
    return Bad(err);
  }
  return absl::StrFormat("%d-%s-%04d", day, kMonths[month - 1], year);
}

enum class ArgType {
  kNone,
  kAstring,
  kTwoAstrings,
  kDate,
  kNumber,
  kFlag,
  kUidSet
};

struct KeyInfo {
  const char* name;
  ArgType arg;
};

constexpr KeyInfo kKeys[] = {
    {"ALL", ArgType::kNone},           {"ANSWERED", ArgType::kNone},
    {"BCC", ArgType::kAstring},        {"BEFORE", ArgType::kDate},
    {"BODY", ArgType::kAstring},       {"CC", ArgType::kAstring},
    {"DELETED", ArgType::kNone},       {"DRAFT", ArgType::kNone},
    {"FLAGGED", ArgType::kNone},       {"FROM", ArgType::kAstring},
    {"HEADER", ArgType::kTwoAstrings}, {"KEYWORD", ArgType::kFlag},
    {"LARGER", ArgType::kNumber},      {"NEW", ArgType::kNone},
    {"OLD", ArgType::kNone},           {"ON", ArgType::kDate},
    {"RECENT", ArgType::kNone},        {"SEEN", ArgType::kNone},
    {"SENTBEFORE", ArgType::kDate},    {"SENTON", ArgType::kDate},
    {"SENTSINCE", ArgType::kDate},     {"SINCE", ArgType::kDate},
    {"SMALLER", ArgType::kNumber},     {"SUBJECT", ArgType::kAstring},
    {"TEXT", ArgType::kAstring},       {"TO", ArgType::kAstring},
    {"UID", ArgType::kUidSet},         {"UNANSWERED", ArgType::kNone},
    {"UNDELETED", ArgType::kNone},     {"UNDRAFT", ArgType::kNone},
    {"UNFLAGGED", ArgType::kNone},     {"UNKEYWORD", ArgType::kFlag},
    {"UNSEEN", ArgType::kNone},
};

}  // namespace

std::string AcceptedFilterKeys() {
  std::string out = "(";
  for (const KeyInfo& k : kKeys) absl::StrAppend(&out, k.name, " ");
  // The operators, the R01 extensions, and the whole-filter values.
  out += "NOT OR FORWARDED UNFORWARDED DAYSBEFORETODAY NONE)";
  return out;
}

namespace {

const KeyInfo* FindKey(absl::string_view upper) {
  for (const KeyInfo& k : kKeys) {
    if (upper == k.name) return &k;
  }
  return nullptr;
}

// flag-keyword = atom: no atom-specials (the parser also lets "\" and
// brackets into atoms, which a keyword cannot hold).
bool IsKeywordAtom(const Arg& a) {
  if (a.type != Arg::Type::kAtom || a.value.empty()) return false;
  for (unsigned char c : a.value) {
    if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' ||
        c == '%' || c == '*' || c == '"' || c == '\\' || c == ']' || c == '[') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::string> CanonicalSequenceSet(const Arg& a,
                                                 absl::string_view what) {
  if (a.type != Arg::Type::kAtom) {
    return Bad(absl::StrCat("invalid ", what, " ", Shown(a)));
  }
  absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(a.value);
  if (!set.ok()) return Bad(absl::StrCat("invalid ", what, " ", Shown(a)));
  if (set->is_saved_result()) {
    return Bad(absl::StrCat("the saved result $ cannot be used in a ", what));
  }
  return set->ToString();
}

// Whether a top-level atom is DAYSBEFORETODAY, with the number glued on
// ("DAYSBEFORETODAY7") or not (then *glued is empty).
bool IsDaysKey(absl::string_view upper, absl::string_view* glued) {
  constexpr absl::string_view kDays = "DAYSBEFORETODAY";
  if (!absl::StartsWith(upper, kDays)) return false;
  *glued = upper.substr(kDays.size());
  return true;
}

class KeyParser {
 public:
  // Renders args[*i] (and its arguments) as one key into *out.
  absl::Status Key(const std::vector<Arg>& args, size_t* i, int depth,
                   std::string* out) {
    const Arg& a = args[*i];
    ++*i;
    if (a.type == Arg::Type::kList) {
      if (a.children.empty()) return Bad("empty parenthesised search key");
      out->push_back('(');
      size_t j = 0;
      while (j < a.children.size()) {
        if (j > 0) out->push_back(' ');
        if (absl::Status s = Key(a.children, &j, depth + 1, out); !s.ok()) {
          return s;
        }
      }
      out->push_back(')');
      return absl::OkStatus();
    }
    if (a.type != Arg::Type::kAtom) {
      return Bad(absl::StrCat("expected a search key, got ", Shown(a)));
    }
    const std::string upper = absl::AsciiStrToUpper(a.value);
    const char c = upper[0];
    if ((c >= '0' && c <= '9') || c == '*' || c == '$') {
      absl::StatusOr<std::string> set = CanonicalSequenceSet(a, "sequence set");
      if (!set.ok()) return set.status();
      out->append(*set);
      return absl::OkStatus();
    }
    absl::string_view glued;
    if (IsDaysKey(upper, &glued)) {
      return Bad(
          "DAYSBEFORETODAY is allowed only in the top-level key list (it is "
          "AND-ed with the other keys), not inside NOT, OR or parentheses");
    }
    if (upper == "NOT" || upper == "OR") {
      const int operands = upper == "NOT" ? 1 : 2;
      out->append(upper);
      for (int k = 0; k < operands; ++k) {
        if (*i >= args.size()) {
          return Bad(
              absl::StrCat(upper, " needs ", operands,
                           operands == 1 ? " search key" : " search keys"));
        }
        out->push_back(' ');
        if (absl::Status s = Key(args, i, depth + 1, out); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    if (upper == "FORWARDED" || upper == "UNFORWARDED") {
      // R01's \Forwarded system flag, mapped to the $Forwarded keyword.
      out->append(upper == "FORWARDED" ? "KEYWORD $Forwarded"
                                       : "UNKEYWORD $Forwarded");
      return absl::OkStatus();
    }
    const KeyInfo* key = FindKey(upper);
    if (key == nullptr) {
      return Bad(absl::StrCat("unknown search key ", Shown(a)));
    }
    out->append(upper);
    auto need = [&](absl::string_view what) -> absl::StatusOr<const Arg*> {
      if (*i >= args.size()) {
        return Bad(absl::StrCat(upper, " needs ", what));
      }
      return &args[(*i)++];
    };
    switch (key->arg) {
      case ArgType::kNone:
        return absl::OkStatus();
      case ArgType::kAstring:
      case ArgType::kTwoAstrings: {
        const int n = key->arg == ArgType::kAstring ? 1 : 2;
        for (int k = 0; k < n; ++k) {
          absl::StatusOr<const Arg*> v =
              need(n == 1 ? "a string" : "a field name and a string");
          if (!v.ok()) return v.status();
          if (!(*v)->is_astring() && (*v)->type != Arg::Type::kNil) {
            return Bad(
                absl::StrCat(upper, " needs a string, got ", Shown(**v)));
          }
          out->push_back(' ');
          imap::AppendString(out, (*v)->value);
        }
        return absl::OkStatus();
      }
      case ArgType::kDate: {
        absl::StatusOr<const Arg*> v = need("a date");
        if (!v.ok()) return v.status();
        if ((*v)->type != Arg::Type::kAtom &&
            (*v)->type != Arg::Type::kQuoted) {
          return Bad(absl::StrCat(upper, " needs a date, got ", Shown(**v)));
        }
        absl::StatusOr<std::string> date = CanonicalDate((*v)->value);
        if (!date.ok()) return date.status();
        absl::StrAppend(out, " ", *date);
        return absl::OkStatus();
      }
      case ArgType::kNumber: {
        absl::StatusOr<const Arg*> v = need("a number");
        if (!v.ok()) return v.status();
        uint32_t n = 0;
        if ((*v)->type != Arg::Type::kAtom || !ParseNumber((*v)->value, &n)) {
          return Bad(absl::StrCat(upper, " needs a number, got ", Shown(**v)));
        }
        absl::StrAppend(out, " ", n);
        return absl::OkStatus();
      }
      case ArgType::kFlag: {
        absl::StatusOr<const Arg*> v = need("a keyword");
        if (!v.ok()) return v.status();
        if (!IsKeywordAtom(**v)) {
          return Bad(
              absl::StrCat(upper, " needs a keyword atom, got ", Shown(**v)));
        }
        absl::StrAppend(out, " ", (*v)->value);
        return absl::OkStatus();
      }
      case ArgType::kUidSet: {
        absl::StatusOr<const Arg*> v = need("a UID set");
        if (!v.ok()) return v.status();
        absl::StatusOr<std::string> set = CanonicalSequenceSet(**v, "UID set");
        if (!set.ok()) return set.status();
        absl::StrAppend(out, " ", *set);
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unreachable");
  }
};

// Parses the filter-spec part (everything after the kind) of a non-GET
// XFILTER into a FilterSpec.
absl::StatusOr<FilterSpec> ParseSpec(const std::vector<Arg>& args,
                                     size_t begin) {
  auto atom_is = [&](size_t k, absl::string_view word) {
    return k < args.size() && args[k].type == Arg::Type::kAtom &&
           absl::EqualsIgnoreCase(args[k].value, word);
  };
  const size_t n = args.size() - begin;
  if ((n == 1 && atom_is(begin, "NONE")) ||
      (n == 2 && atom_is(begin, "NOT") && atom_is(begin + 1, "ALL"))) {
    return FilterSpec::None();
  }
  FilterSpec spec;
  spec.all = false;
  std::vector<std::string> keys;
  bool saw_all = false;
  KeyParser parser;
  size_t i = begin;
  while (i < args.size()) {
    const Arg& a = args[i];
    if (a.type == Arg::Type::kAtom) {
      const std::string upper = absl::AsciiStrToUpper(a.value);
      absl::string_view glued;
      if (IsDaysKey(upper, &glued)) {
        ++i;
        std::string number(glued);
        if (number.empty()) {
          if (i >= args.size() || args[i].type != Arg::Type::kAtom) {
            return Bad("DAYSBEFORETODAY needs a number of days");
          }
          number = args[i++].value;
        }
        uint32_t days = 0;
        if (!ParseNumber(number, &days) || days > kMaxDays) {
          return Bad(absl::StrCat("DAYSBEFORETODAY needs a number of days 0..",
                                  kMaxDays, ", got ",
                                  imap::QuoteForLog(number)));
        }
        const int d = static_cast<int>(days);
        spec.days_before_today =
            spec.days_before_today ? std::min(*spec.days_before_today, d) : d;
        continue;
      }
      if (upper == "NONE" || upper == "GET") {
        return Bad(absl::StrCat(upper, " must be the whole filter"));
      }
      if (upper == "ALL") {
        // A top-level ALL is AND-ed, hence redundant next to other keys.
        saw_all = true;
        ++i;
        continue;
      }
    }
    std::string key;
    if (absl::Status s = parser.Key(args, &i, 0, &key); !s.ok()) return s;
    keys.push_back(std::move(key));
  }
  spec.search_keys = absl::StrJoin(keys, " ");
  if (keys.empty() && !spec.days_before_today) {
    if (!saw_all) return Bad("missing filter");
    spec.all = true;
  }
  return spec;
}

// Mailbox argument normalisation: "~/" prefix stripped, INBOX upper-cased.
absl::StatusOr<std::string> MailboxArg(const Arg& a) {
  if (!a.is_astring() && a.type != Arg::Type::kNil) {
    return Bad("expected a mailbox name or ALL");
  }
  std::string name = a.value;
  if (absl::StartsWith(name, "~/")) name.erase(0, 2);
  if (name.empty()) return Bad("empty mailbox name");
  if (absl::EqualsIgnoreCase(name, "INBOX")) name = "INBOX";
  return name;
}

}  // namespace

// --- FilterSpec
// ----------------------------------------------------------------

std::string FilterSpec::ToImapText() const {
  if (none) return "NONE";
  if (all) return "ALL";
  std::string out = search_keys;
  if (days_before_today) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "DAYSBEFORETODAY ",
                    *days_before_today);
  }
  return out;
}

std::optional<absl::Time> FilterSpec::DaysCutoff(absl::Time now,
                                                 absl::TimeZone tz) const {
  if (none || all || !days_before_today) return std::nullopt;
  const absl::CivilDay day = absl::ToCivilDay(now, tz) - *days_before_today;
  return absl::FromCivil(day, tz);
}

std::string FilterSpec::ToSearchProgram(absl::Time now,
                                        absl::TimeZone tz) const {
  if (none) return "NOT ALL";
  if (all) return "ALL";
  std::string out = search_keys;
  if (days_before_today) {
    const absl::CivilDay day = absl::ToCivilDay(now, tz) - *days_before_today;
    absl::StrAppend(&out, out.empty() ? "" : " ",
                    absl::StrFormat("SINCE %d-%s-%04d", day.day(),
                                    kMonths[day.month() - 1], day.year()));
  }
  return out;
}

// --- Parsing
// -------------------------------------------------------------------

absl::StatusOr<std::string> CanonicalSearchKeys(const std::vector<Arg>& keys) {
  if (keys.empty()) return Bad("missing search key");
  KeyParser parser;
  std::string out;
  size_t i = 0;
  while (i < keys.size()) {
    if (i > 0) out.push_back(' ');
    if (absl::Status s = parser.Key(keys, &i, 0, &out); !s.ok()) return s;
  }
  return out;
}

absl::StatusOr<XFilterCommand> ParseXFilter(const std::vector<Arg>& args) {
  if (args.size() < 3) {
    return Bad(
        "XFILTER needs a target (mailbox or ALL), a kind (V, N or B) "
        "and GET, NONE or search keys");
  }
  XFilterCommand cmd;
  if (args[0].type == Arg::Type::kAtom &&
      absl::EqualsIgnoreCase(args[0].value, "ALL")) {
    cmd.all_folders = true;
  } else {
    absl::StatusOr<std::string> name = MailboxArg(args[0]);
    if (!name.ok()) return name.status();
    cmd.target = *std::move(name);
  }
  const Arg& kind = args[1];
  const std::string k =
      kind.type == Arg::Type::kAtom ? absl::AsciiStrToUpper(kind.value) : "";
  if (k == "V") {
    cmd.kind = FilterKind::kView;
  } else if (k == "N" || k == "P") {
    cmd.kind = FilterKind::kNotification;
  } else if (k == "B") {
    cmd.kind = FilterKind::kBoth;
  } else {
    return Bad(absl::StrCat("invalid filter kind ", Shown(kind),
                            " (expected V, N or B)"));
  }
  if (args[2].type == Arg::Type::kAtom &&
      absl::EqualsIgnoreCase(args[2].value, "GET")) {
    if (args.size() != 3) return Bad("GET takes no further arguments");
    cmd.get = true;
    return cmd;
  }
  absl::StatusOr<FilterSpec> spec = ParseSpec(args, 2);
  if (!spec.ok()) return spec.status();
  cmd.spec = *std::move(spec);
  return cmd;
}

// --- DeviceFilters
// -------------------------------------------------------------

DeviceFilters::DeviceFilters(FilterSpec default_notification)
    : default_view_(FilterSpec::All()),
      default_notification_(std::move(default_notification)) {}

void DeviceFilters::Set(const XFilterCommand& cmd) {
  if (cmd.get) return;
  const bool view = cmd.kind != FilterKind::kNotification;
  const bool notification = cmd.kind != FilterKind::kView;
  if (cmd.all_folders) {
    if (view) {
      default_view_ = cmd.spec;
      view_.clear();
    }
    if (notification) {
      default_notification_ = cmd.spec;
      notification_.clear();
    }
    return;
  }
  if (view) view_[cmd.target] = cmd.spec;
  if (notification) notification_[cmd.target] = cmd.spec;
}

absl::Status DeviceFilters::CheckLimits(const XFilterCommand& cmd,
                                        size_t max_folders,
                                        size_t max_program_bytes) const {
  if (cmd.get) return absl::OkStatus();
  // The program the store evaluates for every new message: its size bounds
  // what one device makes the store (and the durable state) carry.
  if (max_program_bytes > 0 && cmd.spec.search_keys.size() > max_program_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("Filter too large (at most ", max_program_bytes,
                     " bytes of search keys)"));
  }
  // Target ALL replaces the per-folder filters: it never adds one.
  if (max_folders == 0 || cmd.all_folders || view_.contains(cmd.target) ||
      notification_.contains(cmd.target)) {
    return absl::OkStatus();
  }
  size_t folders = view_.size();
  for (const auto& [folder, spec] : notification_) {
    if (!view_.contains(folder)) ++folders;
  }
  if (folders >= max_folders) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "Too many folder filters (at most ", max_folders, " folders)"));
  }
  return absl::OkStatus();
}

const FilterSpec& DeviceFilters::View(absl::string_view folder) const {
  auto it = view_.find(folder);
  return it == view_.end() ? default_view_ : it->second;
}

const FilterSpec& DeviceFilters::Notification(absl::string_view folder) const {
  auto it = notification_.find(folder);
  return it == notification_.end() ? default_notification_ : it->second;
}

std::vector<std::string> DeviceFilters::GetLines(
    const XFilterCommand& get,
    const std::vector<std::string>& known_folders) const {
  const bool view = get.kind != FilterKind::kNotification;
  const bool notification = get.kind != FilterKind::kView;
  std::vector<std::string> lines;
  auto emit = [&](absl::string_view target, bool target_is_all,
                  const FilterSpec& v, const FilterSpec& n) {
    std::string head = "* XFILTER ";
    if (target_is_all) {
      head.append("ALL");
    } else {
      internal::AppendMailbox(&head, target);
    }
    if (view) lines.push_back(absl::StrCat(head, " V ", v.ToImapText()));
    if (notification) {
      lines.push_back(absl::StrCat(head, " N ", n.ToImapText()));
    }
  };
  if (!get.all_folders) {
    emit(get.target, false, View(get.target), Notification(get.target));
    return lines;
  }
  std::vector<std::string> folders = known_folders;
  if (view) {
    for (const auto& [name, spec] : view_) folders.push_back(name);
  }
  if (notification) {
    for (const auto& [name, spec] : notification_) folders.push_back(name);
  }
  std::sort(folders.begin(), folders.end());
  folders.erase(std::unique(folders.begin(), folders.end()), folders.end());
  if (folders.empty()) {
    emit("", true, default_view_, default_notification_);
    return lines;
  }
  for (const std::string& f : folders) emit(f, false, View(f), Notification(f));
  return lines;
}

std::string DeviceFilters::Serialize() const {
  std::string out = "f PIMAP-FILTERS 1\r\n";
  absl::StrAppend(&out, "f XFILTER ALL V ", default_view_.ToImapText(), "\r\n");
  absl::StrAppend(&out, "f XFILTER ALL N ", default_notification_.ToImapText(),
                  "\r\n");
  auto overrides = [&out](const absl::btree_map<std::string, FilterSpec>& m,
                          absl::string_view kind) {
    for (const auto& [name, spec] : m) {
      out.append("f XFILTER ");
      internal::AppendMailbox(&out, name);
      absl::StrAppend(&out, " ", kind, " ", spec.ToImapText(), "\r\n");
    }
  };
  overrides(view_, "V");
  overrides(notification_, "N");
  return out;
}

absl::StatusOr<DeviceFilters> DeviceFilters::Parse(
    absl::string_view text, FilterSpec default_notification,
    std::vector<imap::Command>* others) {
  absl::StatusOr<std::vector<imap::Command>> cmds =
      internal::ParseCommandScript(text);
  if (!cmds.ok()) return cmds.status();
  if (cmds->empty() || (*cmds)[0].name != "PIMAP-FILTERS" ||
      (*cmds)[0].args.size() != 1 || (*cmds)[0].args[0].value != "1") {
    return Bad("filters: missing or unsupported header (PIMAP-FILTERS 1)");
  }
  DeviceFilters filters(std::move(default_notification));
  for (size_t i = 1; i < cmds->size(); ++i) {
    imap::Command& c = (*cmds)[i];
    if (c.tag == "v") {
      if (others != nullptr) others->push_back(std::move(c));
      continue;
    }
    if (c.name != "XFILTER") {
      return Bad(absl::StrCat("filters: unexpected ", c.name));
    }
    absl::StatusOr<XFilterCommand> x = ParseXFilter(c.args);
    if (!x.ok()) {
      return Bad(absl::StrCat("filters: ", x.status().message()));
    }
    if (x->get || x->kind == FilterKind::kBoth) {
      return Bad("filters: only V and N filters are stored");
    }
    filters.Set(*x);
  }
  return filters;
}

// --- internal
// ------------------------------------------------------------------

namespace internal {

absl::StatusOr<std::vector<imap::Command>> ParseCommandScript(
    absl::string_view text) {
  struct Visitor : imap::Framer::Visitor {
    imap::CommandAssembler assembler{imap::ParserLimits(), 1 << 20};
    std::vector<imap::Command> commands;
    absl::Status status;
    bool OnLine(absl::string_view line,
                const imap::LiteralHeader* lit) override {
      if (status.ok()) status = assembler.AddLine(line, lit);
      return status.ok();
    }
    bool OnLiteralData(absl::string_view chunk) override {
      if (status.ok()) status = assembler.AddLiteralData(chunk);
      return status.ok();
    }
    bool OnEnd() override {
      absl::StatusOr<imap::Command> c = assembler.Finish();
      if (!c.ok()) {
        status = c.status();
        return false;
      }
      commands.push_back(*std::move(c));
      return true;
    }
    bool OnError(const imap::FrameError& e) override {
      status = Bad(e.message);
      return false;
    }
  };
  Visitor v;
  imap::Framer framer(imap::Framer::Mode::kCommands, imap::ParserLimits());
  const size_t used = framer.Feed(text, v);
  if (!v.status.ok()) return v.status;
  if (used != text.size() || !framer.at_command_start()) {
    return Bad("incomplete command text");
  }
  return std::move(v.commands);
}

void AppendMailbox(std::string* out, absl::string_view mailbox) {
  if (absl::EqualsIgnoreCase(mailbox, "ALL")) {
    imap::AppendString(out, mailbox);
  } else {
    imap::AppendAstring(out, mailbox);
  }
}

}  // namespace internal
}  // namespace pimap::session
