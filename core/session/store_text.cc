// Text helpers between device commands and store responses (see store_text.h).
#include "core/session/store_text.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/imap/sequence_set.h"

namespace pimap::session {

// Renders a parsed argument back to IMAP text for the store. Strings that cannot
// be quoted go as non-synchronising literals: the store must not wait for "+".
void RenderArg(std::string* out, const imap::Arg& arg, bool to_device) {
  switch (arg.type) {
    case imap::Arg::Type::kAtom:
      out->append(arg.value);
      return;
    case imap::Arg::Type::kNil:
      out->append("NIL");
      return;
    case imap::Arg::Type::kList:
      out->push_back('(');
      for (size_t i = 0; i < arg.children.size(); ++i) {
        if (i > 0) out->push_back(' ');
        RenderArg(out, arg.children[i], to_device);
      }
      out->push_back(')');
      return;
    case imap::Arg::Type::kQuoted:
    case imap::Arg::Type::kLiteral: {
      bool quotable = arg.value.size() <= 1024 && !arg.binary;
      for (unsigned char c : arg.value) {
        if (c == '\r' || c == '\n' || c == 0 || c >= 0x80) quotable = false;
      }
      if (quotable) {
        out->push_back('"');
        for (char c : arg.value) {
          if (c == '"' || c == '\\') out->push_back('\\');
          out->push_back(c);
        }
        out->push_back('"');
      } else {
        absl::StrAppend(out, arg.binary ? "~{" : "{", arg.value.size(),
                        to_device ? "}\r\n" : "+}\r\n", arg.value);
      }
      return;
    }
  }
}

std::string RenderArgs(const std::vector<imap::Arg>& args, size_t from,
                       bool to_device) {
  std::string out;
  for (size_t i = from; i < args.size(); ++i) {
    if (i > from) out.push_back(' ');
    RenderArg(&out, args[i], to_device);
  }
  return out;
}

std::string SetOf(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
  return RangesToSequenceSet(ranges);
}

// Rewrites a device's SEARCH program for the store: message-sequence sets are the
// device's MSNs, which the store does not know, so each becomes "UID <uids>" from
// the device's view. Arguments of keys that take them are copied as they are.
void RenderSearchKeys(const std::vector<imap::Arg>& args, size_t from,
                      const UidView& view, std::string* out) {
  static const absl::flat_hash_map<std::string, int>* const kArity =
      new absl::flat_hash_map<std::string, int>{
          {"BCC", 1}, {"BODY", 1}, {"CC", 1}, {"FROM", 1}, {"SUBJECT", 1}, {"TEXT", 1},
          {"TO", 1}, {"KEYWORD", 1}, {"UNKEYWORD", 1}, {"BEFORE", 1}, {"ON", 1},
          {"SINCE", 1}, {"SENTBEFORE", 1}, {"SENTON", 1}, {"SENTSINCE", 1},
          {"LARGER", 1}, {"SMALLER", 1}, {"HEADER", 2}, {"UID", 1}, {"CHARSET", 1},
          {"YOUNGER", 1}, {"OLDER", 1}, {"MODSEQ", 1}};
  for (size_t i = from; i < args.size(); ++i) {
    if (!out->empty() && out->back() != '(') out->push_back(' ');
    const imap::Arg& arg = args[i];
    if (arg.type == imap::Arg::Type::kList) {
      out->push_back('(');
      RenderSearchKeys(arg.children, 0, view, out);
      out->push_back(')');
      continue;
    }
    if (arg.type == imap::Arg::Type::kAtom) {
      const std::string key = absl::AsciiStrToUpper(arg.value);
      auto it = kArity->find(key);
      if (it != kArity->end()) {
        RenderArg(out, arg);
        int arity = it->second;
        // MODSEQ [<entry-name> <entry-type>] <mod-sequence> (RFC 7162)
        if (key == "MODSEQ" && i + 1 < args.size() && args[i + 1].is_string()) arity = 3;
        for (int k = 0; k < arity && i + 1 < args.size(); ++k) {
          out->push_back(' ');
          RenderArg(out, args[++i]);
        }
        continue;
      }
      absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(arg.value);
      if (set.ok() && !set->is_saved_result()) {
        auto ranges = view.Resolve(*set, /*uid_mode=*/false);
        // No message of the view: a key that matches nothing.
        out->append(ranges.empty() ? "NOT ALL" : absl::StrCat("UID ", SetOf(ranges)));
        continue;
      }
    }
    RenderArg(out, arg);
  }
}

// "UID 17" inside the first line of a FETCH response.
std::optional<uint32_t> FetchUid(absl::string_view line) {
  size_t pos = 0;
  while ((pos = line.find("UID ", pos)) != absl::string_view::npos) {
    if (pos > 0 && line[pos - 1] != ' ' && line[pos - 1] != '(') {
      pos += 4;
      continue;
    }
    absl::string_view rest = line.substr(pos + 4);
    size_t end = 0;
    while (end < rest.size() && absl::ascii_isdigit(rest[end])) ++end;
    uint32_t uid = 0;
    if (end > 0 && absl::SimpleAtoi(rest.substr(0, end), &uid)) return uid;
    pos += 4;
  }
  return std::nullopt;
}

Untagged ParseUntagged(absl::string_view line) {
  Untagged u;
  absl::string_view rest = line.substr(2);
  size_t sp = rest.find(' ');
  absl::string_view first = rest.substr(0, sp);
  uint32_t number;
  if (!first.empty() && absl::SimpleAtoi(first, &number)) {
    u.numbered = true;
    u.after_number = sp == absl::string_view::npos ? "" : rest.substr(sp);
    absl::string_view tail = u.after_number.empty() ? "" : u.after_number.substr(1);
    u.name = absl::AsciiStrToUpper(tail.substr(0, tail.find(' ')));
  } else {
    u.name = absl::AsciiStrToUpper(first);
  }
  return u;
}

// Removes " MODSEQ (n)" (or "MODSEQ (n) ") from a FETCH line; true if only
// the UID is left.
bool StripModseq(std::string* line) {
  size_t at = line->find("MODSEQ (");
  if (at == std::string::npos) return false;
  size_t end = line->find(')', at);
  if (end == std::string::npos) return false;
  ++end;
  if (at > 0 && (*line)[at - 1] == ' ') {
    --at;
  } else if (end < line->size() && (*line)[end] == ' ') {
    ++end;
  }
  line->erase(at, end - at);
  // "* n FETCH (UID m)" and nothing else.
  absl::string_view rest = *line;
  if (!absl::ConsumePrefix(&rest, "* ")) return false;
  rest.remove_prefix(std::min(rest.size(), rest.find(' ')));
  if (!absl::ConsumePrefix(&rest, " FETCH (UID ")) return false;
  const size_t close = rest.find(')');
  uint32_t uid;
  return close != absl::string_view::npos &&
         absl::SimpleAtoi(rest.substr(0, close), &uid) &&
         absl::StripTrailingAsciiWhitespace(rest.substr(close + 1)).empty();
}

// Flags as one comparable string: sorted, without \Recent (session-specific).
std::string FlagKey(std::vector<std::string> flags) {
  flags.erase(std::remove_if(flags.begin(), flags.end(),
                             [](const std::string& f) {
                               return absl::EqualsIgnoreCase(f, "\\Recent");
                             }),
              flags.end());
  std::sort(flags.begin(), flags.end());
  return absl::StrJoin(flags, " ");
}

std::string QuotedMailbox(const std::string& name) {
  imap::Arg a;
  a.type = imap::Arg::Type::kQuoted;
  a.value = name;
  std::string out;
  RenderArg(&out, a);
  return out;
}

std::optional<std::vector<std::string>> FetchFlags(absl::string_view line) {
  size_t at = line.find("FLAGS (");
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view flags = line.substr(at + 7);
  flags = flags.substr(0, flags.find(')'));
  return std::vector<std::string>(absl::StrSplit(flags, ' ', absl::SkipEmpty()));
}

void ParseSearchNumbers(absl::string_view body, std::vector<uint32_t>* numbers,
                        std::string* modseq) {
  // Past "* SEARCH" or "* SORT": the numbers follow the response's name.
  absl::string_view rest = body;
  absl::ConsumePrefix(&rest, "* ");
  rest.remove_prefix(std::min(rest.find(' '), rest.size()));
  // RFC 7162 §3.1.5: "(MODSEQ n)" after the numbers of a MODSEQ search.
  if (size_t at = rest.find("(MODSEQ "); at != absl::string_view::npos) {
    absl::string_view value = rest.substr(at + 8);
    *modseq = std::string(value.substr(0, value.find(')')));
    rest = rest.substr(0, at);
  }
  for (absl::string_view n : absl::StrSplit(rest, ' ', absl::SkipEmpty())) {
    uint32_t number;
    if (absl::SimpleAtoi(n, &number)) numbers->push_back(number);
  }
}

void AppendEsearchAll(absl::string_view body, std::vector<uint32_t>* uids,
                      size_t cap) {
  size_t at = body.find(" ALL ");
  if (at == absl::string_view::npos) return;
  absl::string_view set_text = body.substr(at + 5);
  set_text = set_text.substr(0, set_text.find(' '));
  absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(set_text);
  if (!set.ok()) return;
  for (const imap::SeqRange& r : set->ranges()) {
    for (uint64_t uid = r.first; uid <= r.last && uids->size() < cap; ++uid) {
      uids->push_back(static_cast<uint32_t>(uid));
    }
  }
}

std::optional<uint32_t> EsearchCount(absl::string_view body) {
  size_t at = body.find(" COUNT ");
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view n = body.substr(at + 7);
  uint32_t count = 0;
  absl::SimpleAtoi(n.substr(0, n.find(' ')), &count);
  return count;
}

std::string WithStatusMessages(absl::string_view line, uint32_t messages) {
  std::string out(line);
  size_t at = out.find("MESSAGES ");
  if (at != std::string::npos) {
    size_t end = at + 9;
    while (end < out.size() && absl::ascii_isdigit(out[end])) ++end;
    out.replace(at + 9, end - at - 9, absl::StrCat(messages));
  }
  return out;
}

}  // namespace pimap::session
