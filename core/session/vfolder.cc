// Virtual folders (vfolder.h): XPSEARCH's parsing, the per-device set with its
// bounds and durable form, the AND of two searches and LIST's wildcards.
#include "core/session/vfolder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pimap::session {

namespace {

// Longer names help nobody and every LIST carries them.
constexpr size_t kMaxNameBytes = 255;

}  // namespace

absl::StatusOr<XPsearchCommand> ParseXPsearch(
    const std::vector<imap::Arg>& args) {
  if (args.size() < 2 || !args[0].is_astring() || args[0].value.empty()) {
    return absl::InvalidArgumentError(
        "XPSEARCH needs a folder name and search keys");
  }
  if (args[0].value.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("XPSEARCH folder name too long");
  }
  size_t keys_at = 1;
  if (args[1].type == imap::Arg::Type::kAtom &&
      absl::EqualsIgnoreCase(args[1].value, "CHARSET")) {
    if (args.size() < 4 || !args[2].is_astring()) {
      return absl::InvalidArgumentError(
          "XPSEARCH CHARSET needs a charset and search keys");
    }
    // The keys are re-rendered and sent without a charset: only those the
    // store reads that way are honest to accept.
    if (!absl::EqualsIgnoreCase(args[2].value, "UTF-8") &&
        !absl::EqualsIgnoreCase(args[2].value, "US-ASCII")) {
      return absl::FailedPreconditionError(
          absl::StrCat("charset ", args[2].value, " is not supported"));
    }
    keys_at = 3;
  }
  // The keys are XFILTER's: its parser validates and renders them.
  std::vector<imap::Arg> xfilter;
  xfilter.push_back(args[0]);
  imap::Arg kind;
  kind.type = imap::Arg::Type::kAtom;
  kind.value = "V";
  xfilter.push_back(kind);
  xfilter.insert(xfilter.end(), args.begin() + keys_at, args.end());
  if (xfilter.size() == 3 && xfilter[2].type == imap::Arg::Type::kAtom &&
      absl::EqualsIgnoreCase(xfilter[2].value, "GET")) {
    return absl::InvalidArgumentError("GET is not a search key");
  }
  absl::StatusOr<XFilterCommand> parsed = ParseXFilter(xfilter);
  if (!parsed.ok()) return parsed.status();
  XPsearchCommand cmd;
  cmd.name = args[0].value;
  cmd.spec = std::move(parsed->spec);
  return cmd;
}

FilterSpec AndSpecs(const FilterSpec& a, const FilterSpec& b) {
  if (a.none || b.none) return FilterSpec::None();
  if (a.all) return b;
  if (b.all) return a;
  // Top-level keys are AND-ed (an OR takes exactly two keys, so
  // concatenating two key lists keeps each one's meaning).
  FilterSpec out;
  out.all = false;
  out.search_keys = a.search_keys;
  if (!b.search_keys.empty()) {
    absl::StrAppend(&out.search_keys, out.search_keys.empty() ? "" : " ",
                    b.search_keys);
  }
  out.days_before_today = a.days_before_today;
  if (b.days_before_today) {
    out.days_before_today =
        out.days_before_today
            ? std::min(*out.days_before_today, *b.days_before_today)
            : *b.days_before_today;
  }
  return out;
}

bool ListPatternMatches(absl::string_view pattern, absl::string_view name,
                        char delimiter) {
  // Iterative matching with backtracking to the last wildcard.
  size_t p = 0, n = 0;
  size_t star_p = absl::string_view::npos, star_n = 0;
  bool star_is_percent = false;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '*' || pattern[p] == '%')) {
      star_is_percent = pattern[p] == '%';
      star_p = p++;
      star_n = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star_p != absl::string_view::npos &&
               !(star_is_percent && delimiter != 0 &&
                 name[star_n] == delimiter)) {
      p = star_p + 1;
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && (pattern[p] == '*' || pattern[p] == '%')) ++p;
  return p == pattern.size();
}

absl::Status VirtualFolders::Add(const std::string& name, VirtualFolder folder,
                                 size_t max_count, size_t max_bytes) {
  if (absl::EqualsIgnoreCase(name, "INBOX") || folders_.contains(name)) {
    return absl::AlreadyExistsError(absl::StrCat(name, " already exists"));
  }
  if (max_count != 0 && folders_.size() >= max_count) {
    return absl::ResourceExhaustedError(
        absl::StrCat("at most ", max_count, " virtual folders"));
  }
  if (max_bytes != 0 &&
      folder.spec.ToSearchProgram(absl::Now(), absl::UTCTimeZone()).size() >
          max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("search longer than ", max_bytes, " bytes"));
  }
  folders_.emplace(name, std::move(folder));
  return absl::OkStatus();
}

const VirtualFolder* VirtualFolders::Find(absl::string_view name) const {
  auto it = folders_.find(name);
  return it == folders_.end() ? nullptr : &it->second;
}

bool VirtualFolders::Remove(absl::string_view name) {
  auto it = folders_.find(name);
  if (it == folders_.end()) return false;
  folders_.erase(it);
  return true;
}

bool VirtualFolders::Rename(absl::string_view from, const std::string& to) {
  auto it = folders_.find(from);
  if (it == folders_.end() || folders_.contains(to) ||
      absl::EqualsIgnoreCase(to, "INBOX")) {
    return false;
  }
  VirtualFolder folder = std::move(it->second);
  folders_.erase(it);
  folders_.emplace(to, std::move(folder));
  return true;
}

std::vector<std::string> VirtualFolders::Matching(
    absl::string_view pattern) const {
  std::vector<std::string> out;
  for (const auto& [name, folder] : folders_) {
    // Flat names: LIST shows them with a NIL delimiter.
    if (ListPatternMatches(pattern, name, 0)) out.push_back(name);
  }
  return out;
}

std::string VirtualFolders::Serialize() const {
  std::string out;
  for (const auto& [name, folder] : folders_) {
    out.append("v XPSEARCH ");
    internal::AppendMailbox(&out, name);
    out.push_back(' ');
    internal::AppendMailbox(&out, folder.backing);
    absl::StrAppend(&out, " ", folder.spec.ToImapText(), "\r\n");
  }
  return out;
}

absl::StatusOr<VirtualFolders> VirtualFolders::Parse(
    const std::vector<imap::Command>& commands) {
  VirtualFolders out;
  for (const imap::Command& c : commands) {
    if (c.name != "XPSEARCH") continue;
    if (c.args.size() < 3 || !c.args[1].is_astring()) {
      return absl::InvalidArgumentError("vfolders: malformed XPSEARCH");
    }
    // name backing keys... -> the XPSEARCH form without the backing.
    std::vector<imap::Arg> args = c.args;
    std::string backing = args[1].value;
    args.erase(args.begin() + 1);
    absl::StatusOr<XPsearchCommand> parsed = ParseXPsearch(args);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("vfolders: ", parsed.status().message()));
    }
    out.folders_[parsed->name] =
        VirtualFolder{std::move(backing), std::move(parsed->spec)};
  }
  return out;
}

}  // namespace pimap::session
