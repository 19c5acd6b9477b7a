// STATUS of a folder under a view filter (device_driver.h): the device sees a
// subset of the folder, so MESSAGES and UNSEEN must count that subset, not the
// store's whole folder. The other items (UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ,
// RECENT) are the store's. The selected folder's view is at hand; another
// folder's is counted with the filter's search program after an EXAMINE of it
// on a pooled link (whose state the next borrower restores, so the device's own
// selection is not disturbed). Without a pool the store's numbers stand for a
// folder that is not selected.
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/session/device_driver.h"
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

bool DeviceDriver::StartFilteredStatus(const imap::Command& command) {
  const std::vector<imap::Arg>& args = command.args;
  if (args.size() < 2 || !args[0].is_astring() || args[1].type != imap::Arg::Type::kList) {
    return false;
  }
  DeviceSession& s = *session_;
  const std::string folder =
      absl::EqualsIgnoreCase(args[0].value, "INBOX") ? "INBOX" : args[0].value;
  if (ViewIsWholeFolder(s.filters.View(folder))) return false;
  const bool selected = !s.selected_folder.empty() && folder == s.selected_folder;
  if (!selected && services_.pool == nullptr) return false;
  status_filtered_ = true;
  status_selected_ = selected;
  status_folder_ = folder;
  status_line_.clear();
  status_unseen_ = false;
  for (const imap::Arg& item : args[1].children) {
    if (item.type == imap::Arg::Type::kAtom && absl::EqualsIgnoreCase(item.value, "UNSEEN")) {
      status_unseen_ = true;
    }
  }
  status_messages_ = selected ? static_cast<uint32_t>(s.view.size()) : 0;
  status_unseen_count_ = 0;
  SendJob(Job::kStatus, command.tag, absl::StrCat("STATUS ", RenderArgs(args, 0)));
  return true;
}

void DeviceDriver::OnStatusJobDone(bool ok, absl::string_view rest) {
  DeviceSession& s = *session_;
  const std::string program =
      s.filters.View(status_folder_).ToSearchProgram(absl::Now(), absl::LocalTimeZone());
  switch (job_) {
    case Job::kStatus:
      if (!ok || status_line_.empty()) {
        status_filtered_ = false;
        FinishCommand(rest);
        return;
      }
      held_tagged_.assign(rest.data(), rest.size());
      if (status_selected_) {
        if (status_unseen_ && !s.view.empty()) {
          SendJob(Job::kStatusUnseen, job_device_tag_,
                  absl::StrCat("UID SEARCH RETURN (COUNT) UNSEEN UID ",
                               SetOf(s.view.Ranges())));
          return;
        }
        FinishFilteredStatus();
        return;
      }
      SendJob(Job::kStatusExamine, job_device_tag_,
              absl::StrCat("EXAMINE ", QuotedMailbox(status_folder_)));
      return;
    case Job::kStatusExamine:
      if (lent_ != nullptr) {
        lent_->selected_folder = ok ? status_folder_ : "";
        lent_->read_only = true;
      }
      if (!ok) {  // the store's STATUS worked; its numbers are the best we have
        FinishFilteredStatus();
        return;
      }
      search_count_ = 0;
      SendJob(Job::kStatusCount, job_device_tag_,
              absl::StrCat("UID SEARCH RETURN (COUNT) ", program));
      return;
    case Job::kStatusCount:
      status_messages_ = search_count_;
      if (status_unseen_) {
        search_count_ = 0;
        SendJob(Job::kStatusUnseen, job_device_tag_,
                absl::StrCat("UID SEARCH RETURN (COUNT) UNSEEN ", program));
        return;
      }
      FinishFilteredStatus();
      return;
    case Job::kStatusUnseen:
      status_unseen_count_ = ok ? search_count_ : 0;
      FinishFilteredStatus();
      return;
    default:
      FinishFilteredStatus();
      return;
  }
}

void DeviceDriver::FinishFilteredStatus() {
  std::string line = std::move(status_line_);
  status_line_.clear();
  status_filtered_ = false;
  if (!line.empty()) {
    // The counts of the device's view (kStatusExamine failed: the store's).
    if (status_selected_ || job_ != Job::kStatusExamine) {
      ReplaceItem(&line, "MESSAGES", status_messages_);
      if (status_unseen_) ReplaceItem(&line, "UNSEEN", status_unseen_count_);
    }
    Write(absl::StrCat(line, "\r\n"));
  }
  std::string rest = std::move(held_tagged_);
  held_tagged_.clear();
  job_ = Job::kStatus;
  FinishCommand(rest);
}

}  // namespace pimap::session
