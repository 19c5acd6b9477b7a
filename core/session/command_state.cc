// CommandState and DeviceJob (command_state.h): when the per-command scratch
// may go, and what ending or aborting a job clears.
#include "core/session/command_state.h"

namespace pimap::session {

bool IsMaintenanceJob(DeviceJob job) {
  return job == DeviceJob::kEvalSync || job == DeviceJob::kOwnNew ||
         job == DeviceJob::kEvalView || job == DeviceJob::kEvalNotify ||
         job == DeviceJob::kFlagsFetch || job == DeviceJob::kLinkSync ||
         job == DeviceJob::kLinkSelect || job == DeviceJob::kXdeliverFetch ||
         job == DeviceJob::kXdeliverSubmit ||
         job == DeviceJob::kXdeliverAppend || job == DeviceJob::kXdeliverFlag;
}

bool CommandState::Settled() const {
  return !queued.has_value() && held_tagged.empty() && held_finish.empty() &&
         held_job == DeviceJob::kNone && !finish_after_eval &&
         !fetch_then_finish && resp_action == RespAction::kForward &&
         resp_first && !passing && collected.empty() && eval_uids.empty() &&
         rebuild_output.empty() && relay_buffer.empty() &&
         held_events.empty() && pushed_fetch.empty() && !pushed_fetch_plain &&
         xdeliver == nullptr && !convert.has_value();
}

void CommandState::EndJob() {
  job_uid_mode = false;
  job_may_expunge = false;
  job_up_tag.clear();
}

bool CommandState::Abort() {
  job_uid_mode = false;
  job_may_expunge = false;
  job_sort = false;
  held_tagged.clear();
  held_finish.clear();
  finish_after_eval = false;
  fetch_then_finish = false;
  closing = false;
  resp_first = true;
  collected.clear();
  held_events.clear();  // (the caller writes them first: complete lines)
  pushed_fetch.clear();
  pushed_fetch_plain = false;
  search_uids.clear();
  eval_uids.clear();
  xdeliver.reset();
  // A filtered STATUS cut short must not finish the next plain STATUS.
  status.reset();
  convert.reset();  // a late converter result finds no command
  const bool was_passing = passing;
  passing = false;
  return was_passing;
}

}  // namespace pimap::session
