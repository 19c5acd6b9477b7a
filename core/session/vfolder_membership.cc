// MatchFlags (vfolder_membership.h): the search's top-level keys against a
// message's flags.
#include "core/session/vfolder_membership.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace pimap::session {
namespace {

// The top-level tokens of a canonical search program: atoms, quoted strings
// (escapes kept), parenthesised groups (whole). False on what it does not
// read (a literal, unbalanced text).
bool Tokens(absl::string_view keys, std::vector<absl::string_view>* out) {
  size_t i = 0;
  while (i < keys.size()) {
    if (keys[i] == ' ') {
      ++i;
      continue;
    }
    const size_t start = i;
    if (keys[i] == '{') return false;
    if (keys[i] == '"' || keys[i] == '(') {
      int depth = 0;
      bool quoted = false;
      for (; i < keys.size(); ++i) {
        const char c = keys[i];
        if (quoted) {
          if (c == '\\') {
            ++i;
          } else if (c == '"') {
            quoted = false;
            if (depth == 0) break;
          }
        } else if (c == '"') {
          quoted = true;
        } else if (c == '(') {
          ++depth;
        } else if (c == ')') {
          if (--depth == 0) break;
        } else if (c == '{') {
          return false;
        }
      }
      if (i >= keys.size()) return false;
      ++i;
    } else {
      while (i < keys.size() && keys[i] != ' ') ++i;
    }
    out->push_back(keys.substr(start, i - start));
  }
  return true;
}

bool Has(const std::vector<std::string>& flags, absl::string_view flag) {
  for (const std::string& f : flags) {
    if (absl::EqualsIgnoreCase(f, flag)) return true;
  }
  return false;
}

struct FlagKey {
  const char* key;
  const char* flag;
  bool set;  // the key holds when the flag is set (else when it is not)
};

constexpr FlagKey kFlagKeys[] = {
    {"ANSWERED", "\\Answered", true}, {"UNANSWERED", "\\Answered", false},
    {"DELETED", "\\Deleted", true},   {"UNDELETED", "\\Deleted", false},
    {"DRAFT", "\\Draft", true},       {"UNDRAFT", "\\Draft", false},
    {"FLAGGED", "\\Flagged", true},   {"UNFLAGGED", "\\Flagged", false},
    {"SEEN", "\\Seen", true},         {"UNSEEN", "\\Seen", false},
};

}  // namespace

FlagVerdict MatchFlags(const FilterSpec& spec,
                       const std::vector<std::string>& flags) {
  if (spec.none || spec.search_keys.empty()) return FlagVerdict::kUnknown;
  std::vector<absl::string_view> tokens;
  if (!Tokens(spec.search_keys, &tokens)) return FlagVerdict::kUnknown;
  bool other = spec.days_before_today.has_value();
  bool any_flag_key = false;
  bool fails = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const absl::string_view t = tokens[i];
    if (t[0] == '(' || absl::EqualsIgnoreCase(t, "NOT") ||
        absl::EqualsIgnoreCase(t, "OR") ||
        absl::EqualsIgnoreCase(t, "RECENT") ||
        absl::EqualsIgnoreCase(t, "NEW") || absl::EqualsIgnoreCase(t, "OLD")) {
      return FlagVerdict::kUnknown;  // not a plain conjunction of keys
    }
    if ((absl::EqualsIgnoreCase(t, "KEYWORD") ||
         absl::EqualsIgnoreCase(t, "UNKEYWORD")) &&
        i + 1 < tokens.size()) {
      any_flag_key = true;
      const bool set = Has(flags, tokens[++i]);
      if (set != absl::EqualsIgnoreCase(t, "KEYWORD")) fails = true;
      continue;
    }
    bool flag_key = false;
    for (const FlagKey& k : kFlagKeys) {
      if (!absl::EqualsIgnoreCase(t, k.key)) continue;
      flag_key = true;
      any_flag_key = true;
      if (Has(flags, k.flag) != k.set) fails = true;
    }
    // Any other key, or its argument: quoted strings, dates, numbers and
    // sets, none of which reads as a flag key.
    if (!flag_key) other = true;
  }
  if (!any_flag_key) return FlagVerdict::kUnknown;
  if (fails) return FlagVerdict::kFails;
  return other ? FlagVerdict::kUnknown : FlagVerdict::kMatches;
}

}  // namespace pimap::session
