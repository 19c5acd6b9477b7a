// FilteredStatus (filtered_status.h): which folders' STATUS the view counts,
// the steps that count it, and the STATUS line rewritten with the counts.
#include "core/session/filtered_status.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/session/store_text.h"

namespace pimap::session {

namespace {

bool ViewIsWholeFolder(const FilterSpec& view) {
  return view.all && view.search_keys.empty() && !view.days_before_today;
}

// Replaces the number after "NAME " inside a STATUS line's list.
void ReplaceItem(std::string* line, absl::string_view name, uint32_t value) {
  const std::string key = absl::StrCat(name, " ");
  size_t at = line->find(key);
  // Whole item names only: "UNSEEN" must not match inside another word.
  while (at != std::string::npos && at > 0 && (*line)[at - 1] != '(' &&
         (*line)[at - 1] != ' ') {
    at = line->find(key, at + 1);
  }
  if (at == std::string::npos) return;
  const size_t start = at + key.size();
  size_t end = start;
  while (end < line->size() && absl::ascii_isdigit((*line)[end])) ++end;
  line->replace(start, end - start, absl::StrCat(value));
}

}  // namespace

FilteredStatus::FilteredStatus(std::string folder, std::string vfolder,
                               FilterSpec spec, bool selected,
                               bool unseen_asked, uint32_t view_messages)
    : folder_(std::move(folder)),
      vfolder_(std::move(vfolder)),
      spec_(std::move(spec)),
      messages_(view_messages),
      selected_(selected),
      unseen_asked_(unseen_asked) {}

std::optional<FilteredStatus> FilteredStatus::For(const imap::Command& command,
                                                  const DeviceSession& session,
                                                  bool pooled) {
  const std::vector<imap::Arg>& args = command.args;
  if (args.size() < 2 || !args[0].is_astring() ||
      args[1].type != imap::Arg::Type::kList) {
    return std::nullopt;
  }
  const VirtualFolder* v = session.vfolders.Find(args[0].value);
  const std::string vfolder = v != nullptr ? args[0].value : "";
  const std::string folder = v != nullptr ? v->backing
                             : absl::EqualsIgnoreCase(args[0].value, "INBOX")
                                 ? "INBOX"
                                 : args[0].value;
  FilterSpec spec = session.ViewOf(folder, vfolder);
  // A virtual folder is never the store's: even a search of ALL is counted.
  if (v == nullptr && ViewIsWholeFolder(spec)) return std::nullopt;
  const bool selected = !session.selected_folder.empty() &&
                        folder == session.selected_folder &&
                        vfolder == session.selected_vfolder;
  if (!selected && !pooled) return std::nullopt;
  bool unseen = false;
  for (const imap::Arg& item : args[1].children) {
    if (item.type == imap::Arg::Type::kAtom &&
        absl::EqualsIgnoreCase(item.value, "UNSEEN")) {
      unseen = true;
    }
  }
  return FilteredStatus(
      folder, vfolder, std::move(spec), selected, unseen,
      selected ? static_cast<uint32_t>(session.view.size()) : 0);
}

std::string FilteredStatus::Command(const DeviceSession& session) const {
  const auto program = [&] {
    return spec_.ToSearchProgram(absl::Now(), absl::LocalTimeZone());
  };
  switch (step_) {
    case Step::kStatus:
      return "";  // the device's own command
    case Step::kExamine:
      return absl::StrCat("EXAMINE ", QuotedMailbox(folder_));
    case Step::kCount:
      return absl::StrCat("UID SEARCH RETURN (COUNT) ", program());
    case Step::kCountUnseen:
      // The selected folder's view is at hand: count within its UIDs.
      return selected_
                 ? absl::StrCat("UID SEARCH RETURN (COUNT) UNSEEN UID ",
                                SetOf(session.view.Ranges()))
                 : absl::StrCat("UID SEARCH RETURN (COUNT) UNSEEN ", program());
  }
  return "";
}

FilteredStatus::Outcome FilteredStatus::StepDone(bool ok, bool view_empty) {
  switch (step_) {
    case Step::kStatus:
      if (!ok || line_.empty()) return Outcome::kAnswerAsStore;
      if (selected_) {
        if (unseen_asked_ && !view_empty) {
          step_ = Step::kCountUnseen;
          return Outcome::kNext;
        }
        return Outcome::kAnswer;
      }
      step_ = Step::kExamine;
      return Outcome::kNext;
    case Step::kExamine:
      // The store's STATUS worked; its numbers are the best we have (step_
      // stays kExamine: TakeLine leaves them).
      if (!ok) return Outcome::kAnswer;
      count_ = 0;
      step_ = Step::kCount;
      return Outcome::kNext;
    case Step::kCount:
      messages_ = count_;
      if (unseen_asked_) {
        count_ = 0;
        step_ = Step::kCountUnseen;
        return Outcome::kNext;
      }
      return Outcome::kAnswer;
    case Step::kCountUnseen:
      unseen_count_ = ok ? count_ : 0;
      return Outcome::kAnswer;
  }
  return Outcome::kAnswer;
}

std::string FilteredStatus::TakeLine() {
  std::string line = std::move(line_);
  line_.clear();
  if (!line.empty() && (selected_ || step_ != Step::kExamine)) {
    ReplaceItem(&line, "MESSAGES", messages_);
    if (unseen_asked_) ReplaceItem(&line, "UNSEEN", unseen_count_);
  }
  // The store named the backing folder; the device asked for the virtual one
  // (the item list is last and holds no parentheses of its own).
  const size_t items = line.rfind('(');
  if (!line.empty() && !vfolder_.empty() && items != std::string::npos) {
    line = absl::StrCat("* STATUS ", QuotedMailbox(vfolder_), " ",
                        line.substr(items));
  }
  return line;
}

}  // namespace pimap::session
