// STATUS of a folder under a view filter, the driver's side: it runs the steps
// FilteredStatus (filtered_status.h) asks for as jobs on the device's link and
// writes the answer.
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/session/device_driver.h"
#include "core/session/filtered_status.h"
#include "core/session/store_text.h"

namespace pimap::session {

bool DeviceDriver::StartFilteredStatus(const imap::Command& command) {
  std::optional<FilteredStatus> status =
      FilteredStatus::For(command, *session_, services_.pool != nullptr);
  if (!status.has_value()) return false;
  const std::string folder = status->folder();
  const bool virtual_folder = !status->vfolder().empty();
  cmd().status = std::move(status);
  // A virtual folder's numbers are its backing folder's, counted.
  SendJob(Job::kStatus, command.tag,
          virtual_folder
              ? absl::StrCat("STATUS ", QuotedMailbox(folder), " ",
                             RenderArgs(command.args, 1))
              : absl::StrCat("STATUS ", RenderArgs(command.args, 0)));
  return true;
}

void DeviceDriver::OnStatusJobDone(bool ok, absl::string_view rest) {
  FilteredStatus& status = *cmd().status;
  if (job_ == Job::kStatusExamine) {
    links_.Selected(ok ? status.folder() : "", /*read_only=*/true);
  }
  const bool at_status = job_ == Job::kStatus;
  switch (status.StepDone(ok, session_->view.empty())) {
    case FilteredStatus::Outcome::kAnswerAsStore:
      cmd().status.reset();
      FinishCommand(rest);
      return;
    case FilteredStatus::Outcome::kAnswer:
      if (at_status) cmd().held_tagged.assign(rest.data(), rest.size());
      FinishFilteredStatus();
      return;
    case FilteredStatus::Outcome::kNext:
      // The store's STATUS answer is the device's, once the view is counted.
      if (at_status) cmd().held_tagged.assign(rest.data(), rest.size());
      SendJob(
          status.step() == FilteredStatus::Step::kExamine ? Job::kStatusExamine
          : status.step() == FilteredStatus::Step::kCount ? Job::kStatusCount
                                                          : Job::kStatusUnseen,
          job_device_tag_, status.Command(*session_));
      return;
  }
}

void DeviceDriver::FinishFilteredStatus() {
  const std::string line = cmd().status->TakeLine();
  cmd().status.reset();
  if (!line.empty()) Write(absl::StrCat(line, "\r\n"));
  std::string rest = std::move(cmd().held_tagged);
  cmd().held_tagged.clear();
  job_ = Job::kStatus;
  FinishCommand(rest);
}

}  // namespace pimap::session
