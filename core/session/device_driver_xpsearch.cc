// XPSEARCH in P-IMAP sessions (protocol.md §3.8, the [Modern] reading; the
// model is vfolder.h): creating a virtual folder, and what the mailbox
// commands do with one. SELECT/EXAMINE of one (device_driver.cc) selects its
// backing folder under its search; STATUS counts that view
// (filtered_status.h); LIST and LSUB add matching virtual folders to the
// store's answer; DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE of one are the
// session's alone, and CREATE over one is refused. APPEND, COPY and MOVE to
// one go to its backing folder.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/imap/writer.h"
#include "core/session/device_driver.h"
#include "core/session/store_text.h"
#include "core/session/vfolder.h"

namespace pimap::session {

namespace {

// The mailbox argument at the start of `rest` (an atom or a quoted string;
// a literal is not read): its value and length in `rest`; false if none.
bool LeadingMailbox(absl::string_view rest, std::string* name, size_t* len) {
  if (rest.empty()) return false;
  if (rest[0] != '"') {
    const size_t end = std::min(rest.find(' '), rest.size());
    if (end == 0 || rest[0] == '{') return false;
    *name = std::string(rest.substr(0, end));
    *len = end;
    return true;
  }
  name->clear();
  for (size_t i = 1; i < rest.size(); ++i) {
    if (rest[i] == '\\' && i + 1 < rest.size()) {
      name->push_back(rest[++i]);
    } else if (rest[i] == '"') {
      *len = i + 1;
      return true;
    } else {
      name->push_back(rest[i]);
    }
  }
  return false;
}

}  // namespace

std::string DeviceDriver::RelayedFirstLine(absl::string_view line) const {
  // APPEND to a virtual folder goes to its backing folder (operations act on
  // the backing messages; the store's APPENDUID is the backing folder's).
  if (session_ == nullptr || session_->vfolders.empty()) {
    return std::string(line);
  }
  const size_t sp = line.find(' ');
  if (sp == absl::string_view::npos) return std::string(line);
  absl::string_view rest = line.substr(sp + 1);
  if (!absl::StartsWithIgnoreCase(rest, "APPEND ")) return std::string(line);
  rest.remove_prefix(7);
  std::string name;
  size_t len = 0;
  if (!LeadingMailbox(rest, &name, &len)) return std::string(line);
  const VirtualFolder* v = session_->vfolders.Find(name);
  if (v == nullptr) return std::string(line);
  const size_t at = line.size() - rest.size();
  return absl::StrCat(line.substr(0, at), QuotedMailbox(v->backing),
                      line.substr(at + len));
}

std::string DeviceDriver::CopyTarget(const imap::Arg& arg) const {
  // COPY/MOVE to a virtual folder: to its backing folder (COPYUID is the
  // backing folder's).
  if (session_ != nullptr && arg.is_astring()) {
    if (const VirtualFolder* v = session_->vfolders.Find(arg.value)) {
      return QuotedMailbox(v->backing);
    }
  }
  return RenderArgs({arg}, 0);
}

bool DeviceDriver::ExecuteVfolderCommand(const imap::Command& command) {
  const std::string& tag = command.tag;
  const std::string& name = command.name;
  const std::vector<imap::Arg>& args = command.args;
  DeviceSession& s = *session_;
  cmd().vfolder_lines.clear();
  auto answer = [&](absl::string_view status, absl::string_view code,
                    absl::string_view text) {
    std::string out;
    imap::AppendTaggedStatus(&out, tag, status, code, text);
    Write(std::move(out));
    return true;
  };
  if (name == "XPSEARCH") {
    if (s.selected_folder.empty()) {
      WriteBad(tag, "XPSEARCH needs a selected mailbox");
      return true;
    }
    absl::StatusOr<XPsearchCommand> parsed = ParseXPsearch(args);
    if (absl::IsFailedPrecondition(parsed.status())) {
      return answer("NO", "BADCHARSET", parsed.status().message());
    }
    if (!parsed.ok()) {
      WriteBad(tag, parsed.status().message());
      return true;
    }
    // Searching inside a virtual folder stacks: the new one searches the same
    // backing folder with both searches.
    FilterSpec spec = parsed->spec;
    if (const VirtualFolder* in = s.vfolders.Find(s.selected_vfolder)) {
      spec = AndSpecs(in->spec, spec);
    }
    const SessionConfig& limits = registry().config();
    absl::Status added = s.vfolders.Add(
        parsed->name, VirtualFolder{s.selected_folder, std::move(spec)},
        limits.max_filters_per_device, limits.max_filter_bytes);
    if (absl::IsAlreadyExists(added)) {
      return answer("NO", "ALREADYEXISTS", added.message());
    }
    if (!added.ok()) return answer("NO", "LIMIT", added.message());
    registry().Save(s);
    return answer("OK", "", "XPSEARCH completed");
  }
  if ((name == "LIST" || name == "LSUB") && args.size() == 2 &&
      args[0].is_astring() && args[1].is_astring() && !s.vfolders.empty()) {
    // Only the basic form: LIST-EXTENDED's selection and return options ask
    // about the store's folders. The store answers first; the lines go with
    // its OK (FinishCommand).
    for (const std::string& v :
         s.vfolders.Matching(absl::StrCat(args[0].value, args[1].value))) {
      // Flat names: a virtual folder has no hierarchy (NIL delimiter).
      absl::StrAppend(&cmd().vfolder_lines, "* ", name, " () NIL ",
                      QuotedMailbox(v), "\r\n");
    }
    return false;
  }
  if (args.empty() || !args[0].is_astring()) return false;
  const VirtualFolder* v = s.vfolders.Find(args[0].value);
  if (name == "CREATE" && v != nullptr) {
    return answer("NO", "ALREADYEXISTS",
                  "A virtual folder has that name (XPSEARCH)");
  }
  if (v == nullptr) {
    if (name == "RENAME" && args.size() >= 2 && args[1].is_astring() &&
        s.vfolders.Find(args[1].value) != nullptr) {
      return answer("NO", "ALREADYEXISTS",
                    "A virtual folder has that name (XPSEARCH)");
    }
    return false;
  }
  if (name == "STATUS") {
    if (StartFilteredStatus(command)) return true;
    // Counting a folder not selected needs a pooled link to EXAMINE it on.
    return answer("NO", "UNAVAILABLE",
                  "STATUS of a virtual folder needs it selected here");
  }
  if (name == "DELETE") {
    if (s.selected_vfolder == args[0].value && !s.selected_folder.empty()) {
      return answer("NO", "INUSE", "The virtual folder is selected");
    }
    s.vfolders.Remove(args[0].value);
    registry().Save(s);
    return answer("OK", "", "DELETE completed");
  }
  if (name == "RENAME") {
    if (args.size() < 2 || !args[1].is_astring()) {
      WriteBad(tag, "RENAME expects two mailbox names");
      return true;
    }
    const std::string to = args[1].value;
    if (!s.vfolders.Rename(args[0].value, to)) {
      return answer("NO", "ALREADYEXISTS", "The new name is taken");
    }
    if (s.selected_vfolder == args[0].value) s.selected_vfolder = to;
    registry().Save(s);
    return answer("OK", "", "RENAME completed");
  }
  if (name == "SUBSCRIBE" || name == "UNSUBSCRIBE") {
    // A virtual folder is always listed: nothing for the store to keep.
    return answer("OK", "", absl::StrCat(name, " completed"));
  }
  return false;
}

// The view a SELECT's search built (a filtered or virtual folder's).
void DeviceDriver::ApplyViewSearch() {
  std::sort(cmd().search_uids.begin(), cmd().search_uids.end());
  cmd().search_uids.erase(
      std::unique(cmd().search_uids.begin(), cmd().search_uids.end()),
      cmd().search_uids.end());
  session_->view = UidView::FromSortedUids(cmd().search_uids);
  cmd().search_uids.clear();
}

}  // namespace pimap::session
