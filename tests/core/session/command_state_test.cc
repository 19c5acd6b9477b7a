// CommandState (core/session/command_state.h): when the per-command scratch
// counts as settled (the driver frees it then: an idle device holds none),
// and what ending and aborting a job clear. The driver freeing it at rest is
// device_driver_pool_test.cc's (holds_command_state).
#include "core/session/command_state.h"

#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

TEST(CommandStateTest, FreshStateIsSettled) {
  EXPECT_TRUE(CommandState().Settled());
}

TEST(CommandStateTest, RunningCommandFieldsDoNotUnsettle) {
  // They are set by each job before it reads them: losing them at rest is
  // harmless.
  CommandState s;
  s.job_up_tag = "~p3";
  s.job_uid_mode = true;
  s.job_folder = "INBOX";
  s.search_uids = {1, 2};
  s.rendered_new = {7};
  s.closing = true;
  EXPECT_TRUE(s.Settled());
}

TEST(CommandStateTest, EveryPendingFieldUnsettles) {
  const std::vector<std::function<void(CommandState&)>> pending = {
      [](CommandState& s) {
        s.queued = QueuedJob{DeviceJob::kIdle, "a", ""};
      },
      [](CommandState& s) { s.held_tagged = "OK done"; },
      [](CommandState& s) { s.held_finish = "OK done"; },
      [](CommandState& s) { s.held_job = DeviceJob::kSearch; },
      [](CommandState& s) { s.finish_after_eval = true; },
      [](CommandState& s) { s.fetch_then_finish = true; },
      [](CommandState& s) { s.resp_action = RespAction::kCollect; },
      [](CommandState& s) { s.resp_first = false; },
      [](CommandState& s) { s.passing = true; },
      [](CommandState& s) { s.collected = "* 1 FETCH"; },
      [](CommandState& s) { s.eval_uids = {4}; },
      [](CommandState& s) { s.rebuild_output = "* 1 EXISTS"; },
      [](CommandState& s) { s.relay_buffer = "x"; },
  };
  for (size_t i = 0; i < pending.size(); ++i) {
    CommandState s;
    pending[i](s);
    EXPECT_FALSE(s.Settled()) << "pending field #" << i;
  }
}

TEST(CommandStateTest, EndJobClearsTheJobsModeOnly) {
  CommandState s;
  s.job_up_tag = "~p3";
  s.job_uid_mode = true;
  s.job_may_expunge = true;
  s.held_finish = "OK later";
  s.EndJob();
  EXPECT_EQ(s.job_up_tag, "");
  EXPECT_FALSE(s.job_uid_mode);
  EXPECT_FALSE(s.job_may_expunge);
  EXPECT_EQ(s.held_finish, "OK later");  // not the job's to drop
}

TEST(CommandStateTest, AbortDropsWhatTheCommandHeld) {
  CommandState s;
  s.job_uid_mode = s.job_may_expunge = s.job_sort = true;
  s.held_tagged = "OK a";
  s.held_finish = "OK b";
  s.finish_after_eval = s.fetch_then_finish = s.closing = true;
  s.resp_first = false;
  s.collected = "* 1 FETCH";
  s.search_uids = {1};
  s.eval_uids = {2};
  s.passing = true;
  EXPECT_TRUE(s.Abort());  // a response was being passed through
  EXPECT_TRUE(s.Settled());
  EXPECT_FALSE(s.job_uid_mode || s.job_may_expunge || s.job_sort || s.closing ||
               s.passing);
  EXPECT_TRUE(s.search_uids.empty());
  EXPECT_FALSE(s.Abort());  // nothing passing any more
}

TEST(CommandStateTest, MaintenanceJobs) {
  for (DeviceJob job :
       {DeviceJob::kEvalSync, DeviceJob::kOwnNew, DeviceJob::kEvalView,
        DeviceJob::kEvalNotify, DeviceJob::kFlagsFetch, DeviceJob::kLinkSync,
        DeviceJob::kLinkSelect}) {
    EXPECT_TRUE(IsMaintenanceJob(job)) << static_cast<int>(job);
  }
  for (DeviceJob job : {DeviceJob::kNone, DeviceJob::kIdle, DeviceJob::kSearch,
                        DeviceJob::kStatus, DeviceJob::kAcquire}) {
    EXPECT_FALSE(IsMaintenanceJob(job)) << static_cast<int>(job);
  }
}

}  // namespace
}  // namespace pimap::session
