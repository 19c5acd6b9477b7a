// The session engine's side of IDLE: carries out what the device's IDLE state
// machine (idle_machine.h, IdleMachine) decides — the store's IDLE and DONE,
// the gateway's "+ idling" and answers, the keepalive's line. Pushing the
// journal's events and asking the store's verdicts are device_driver_push.cc's;
// the machine says when.
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/timer_wheel.h"
#include "core/session/device_driver.h"
#include "core/session/idle_machine.h"

namespace pimap::session {

bool DeviceDriver::LocalIdleAtRest() const {
  return job_ == Job::kIdle && idle_.LocalResting();
}

void DeviceDriver::StartLocalIdle(const std::string& tag) {
  idle_.StartLocal();
  job_ = Job::kIdle;
  job_device_tag_ = tag;
  Write("+ idling\r\n");
  ArmKeepalive();
  MaybeReturnLink();
  OnEventsPending();
}

bool DeviceDriver::TakeIdleDone() {
  // A relayed IDLE may still wait for its link to catch up (a NOOP runs
  // first) while the device's input is read: its DONE is still the IDLE's.
  const bool idle_waits = cmd_ != nullptr && cmd_->queued.has_value() &&
                          cmd_->queued->job == Job::kIdle;
  if (job_ != Job::kIdle && !idle_.InLocalIdle() && !idle_waits) return false;
  switch (idle_.TakeDone()) {
    case IdleMachine::DoneAction::kAnswerLocal: {
      std::weak_ptr<bool> alive = alive_;
      idle_.ScheduleDoneAnswer(*services_.timers, [this, alive] {
        if (alive.expired()) return;
        FinishLocalIdle();
      });
      break;
    }
    case IdleMachine::DoneAction::kRelayDone:
      // (Without a link the session is ending: nobody to tell.) An IDLE that
      // waits for its link gets it right behind it (SendJob).
      if (link() != nullptr && !idle_waits) link()->Send("DONE\r\n");
      break;
    case IdleMachine::DoneAction::kNothing:
      break;
  }
  return true;
}

void DeviceDriver::FinishLocalIdle() {
  Busy busy(this);
  if (!idle_.InLocalIdle() || session_ == nullptr) return;
  idle_.Reset();
  job_ = Job::kIdle;
  FinishCommand("OK Idle completed");
}

void DeviceDriver::InterruptIdle() {
  switch (idle_.Interrupt()) {
    case IdleMachine::InterruptAction::kStartWork:
      StartEval();
      return;
    case IdleMachine::InterruptAction::kLeaveStoreIdle:
      link()->Send("DONE\r\n");  // its tagged answer starts the work
      return;
  }
}

void DeviceDriver::ResumeIdleAfterEval() {
  // Back from the store work taken in the middle of an IDLE: push what passes,
  // then (new-format) the FETCH for new mail, then back into the IDLE.
  job_ = Job::kIdle;
  if (idle_.BeginRendering()) {
    cmd().rendered_new.clear();
    // With new mail the events wait for its FETCH and go with it, one burst
    // (one frame with XZSTDEVENTS: an EXISTS alone never shrinks in one).
    hold_events_ = NewFormatWanted();
    OnEventsPending();
    hold_events_ = false;
    idle_.EndRendering();
    if (!cmd().rendered_new.empty() && NewFormatWanted()) {
      FetchNewThen();
      return;
    }
    WriteHeldEvents();
  }
  ReIdle();
}

void DeviceDriver::ReIdle() {
  // The IDLE began relayed (its folder not covered then: the watch had not
  // looked at it yet); the store has left its IDLE for this work, and the
  // folder is covered now: the gateway holds the IDLE from here on and the
  // link goes back to the pool. The device notices nothing.
  if (services_.pool != nullptr && session_ != nullptr &&
      covered_folder(session_->selected_folder) && idle_.BecomeLocal()) {
    job_ = Job::kIdle;
    ArmKeepalive();
    MaybeReturnLink();
    Paused(false, true);
    OnEventsPending();
    return;
  }
  switch (idle_.Reenter()) {
    case IdleMachine::ReenterAction::kAnswerLocal:
      FinishLocalIdle();
      return;
    case IdleMachine::ReenterAction::kResumeLocal:
      job_ = Job::kIdle;
      MaybeReturnLink();
      Paused(false, true);
      return;
    case IdleMachine::ReenterAction::kAnswerRelayed:
      job_ = Job::kIdle;
      FinishCommand("OK Idle completed");
      return;
    case IdleMachine::ReenterAction::kReenterRelayed:
      SendJob(Job::kIdle, job_device_tag_, "IDLE");
      // The device's "DONE" may be waiting in the input while we were busy.
      Paused(false, true);
      return;
  }
}

void DeviceDriver::OnFolderCovered(absl::string_view folder) {
  // Only a relayed IDLE that may be left for store work now (its "+" passed
  // on or a re-entry's on its way, the device's DONE not taken): leaving the
  // store's IDLE is then what a verdict does, and ReIdle makes the IDLE the
  // gateway's own. One amid such work becomes the gateway's at its end.
  if (session_ == nullptr || services_.pool == nullptr || job_ != Job::kIdle ||
      idle_.InLocalIdle() || !idle_.MayInterrupt() ||
      session_->selected_folder != folder || link() == nullptr ||
      !covered_folder(folder)) {
    return;
  }
  Busy busy(this);
  InterruptIdle();
}

bool DeviceDriver::LocalIdleSurvivesLinkLoss() {
  if (!idle_.InLocalIdle() || !idle_.Interrupted() || cmd().finish_after_eval ||
      cmd().fetch_then_finish) {
    return false;
  }
  // Store work in the middle of the gateway's IDLE: the device stays in IDLE,
  // quiet; what could not be classified waits for the store to come back.
  job_ = Job::kIdle;
  if (idle_.Reenter() == IdleMachine::ReenterAction::kAnswerLocal) {
    FinishLocalIdle();
  } else {
    Paused(false, true);
  }
  return true;
}

void DeviceDriver::ArmKeepalive(bool just_sent) {
  const int64_t interval =
      session_ == nullptr ? 0 : registry().config().idle_keepalive_ms;
  idle_.ArmKeepalive(
      *services_.timers, interval,
      session_ == nullptr ? absl::string_view() : session_->device, just_sent,
      [this] {
        if (!idle_.DeviceIdling() || job_ != Job::kIdle || output_ == nullptr) {
          return;
        }
        Busy busy(this);
        Write("* OK Still here\r\n");
        ArmKeepalive(/*just_sent=*/true);
      });
}

}  // namespace pimap::session
