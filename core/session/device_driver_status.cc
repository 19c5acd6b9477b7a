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
  if (args.size() < 2 || !args[0].is_astring() ||
      args[1].type != imap::Arg::Type::kList) {
    return false;
  }
  DeviceSession& s = *session_;
  const std::string folder =
      absl::EqualsIgnoreCase(args[0].value, "INBOX") ? "INBOX" : args[0].value;
  if (ViewIsWholeFolder(s.filters.View(folder))) return false;
  const bool selected =
      !s.selected_folder.empty() && folder == s.selected_folder;
  if (!selected && services_.pool == nullptr) return false;
  cmd().status_filtered = true;
  cmd().status_selected = selected;
  cmd().status_folder = folder;
  cmd().status_line.clear();
  cmd().status_unseen = false;
  for (const imap::Arg& item : args[1].children) {
    if (item.type == imap::Arg::Type::kAtom &&
        absl::EqualsIgnoreCase(item.value, "UNSEEN")) {
      cmd().status_unseen = true;
    }
  }
  cmd().status_messages = selected ? static_cast<uint32_t>(s.view.size()) : 0;
  cmd().status_unseen_count = 0;
  SendJob(Job::kStatus, command.tag,
          absl::StrCat("STATUS ", RenderArgs(args, 0)));
  return true;
}

void DeviceDriver::OnStatusJobDone(bool ok, absl::string_view rest) {
  DeviceSession& s = *session_;
  const std::string program =
      s.filters.View(cmd().status_folder)
          .ToSearchProgram(absl::Now(), absl::LocalTimeZone());
  switch (job_) {
    case Job::kStatus:
      if (!ok || cmd().status_line.empty()) {
        cmd().status_filtered = false;
        FinishCommand(rest);
        return;
      }
      cmd().held_tagged.assign(rest.data(), rest.size());
      if (cmd().status_selected) {
        if (cmd().status_unseen && !s.view.empty()) {
          SendJob(Job::kStatusUnseen, job_device_tag_,
                  absl::StrCat("UID SEARCH RETURN (COUNT) UNSEEN UID ",
                               SetOf(s.view.Ranges())));
          return;
        }
        FinishFilteredStatus();
        return;
      }
      SendJob(Job::kStatusExamine, job_device_tag_,
              absl::StrCat("EXAMINE ", QuotedMailbox(cmd().status_folder)));
      return;
    case Job::kStatusExamine:
      if (lent_ != nullptr) {
        lent_->selected_folder = ok ? cmd().status_folder : "";
        lent_->read_only = true;
      }
      if (!ok) {  // the store's STATUS worked; its numbers are the best we have
        FinishFilteredStatus();
        return;
      }
      cmd().search_count = 0;
      SendJob(Job::kStatusCount, job_device_tag_,
              absl::StrCat("UID SEARCH RETURN (COUNT) ", program));
      return;
    case Job::kStatusCount:
      cmd().status_messages = cmd().search_count;
      if (cmd().status_unseen) {
        cmd().search_count = 0;
        SendJob(Job::kStatusUnseen, job_device_tag_,
                absl::StrCat("UID SEARCH RETURN (COUNT) UNSEEN ", program));
        return;
      }
      FinishFilteredStatus();
      return;
    case Job::kStatusUnseen:
      cmd().status_unseen_count = ok ? cmd().search_count : 0;
      FinishFilteredStatus();
      return;
    default:
      FinishFilteredStatus();
      return;
  }
}

void DeviceDriver::FinishFilteredStatus() {
  std::string line = std::move(cmd().status_line);
  cmd().status_line.clear();
  cmd().status_filtered = false;
  if (!line.empty()) {
    // The counts of the device's view (kStatusExamine failed: the store's).
    if (cmd().status_selected || job_ != Job::kStatusExamine) {
      ReplaceItem(&line, "MESSAGES", cmd().status_messages);
      if (cmd().status_unseen)
        ReplaceItem(&line, "UNSEEN", cmd().status_unseen_count);
    }
    Write(absl::StrCat(line, "\r\n"));
  }
  std::string rest = std::move(cmd().held_tagged);
  cmd().held_tagged.clear();
  job_ = Job::kStatus;
  FinishCommand(rest);
}

}  // namespace pimap::session
