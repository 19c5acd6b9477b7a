// The session engine's IDLE (device_driver.h, IdleState): every transition of
// the state machine, the predicates the rest of the engine asks it, and the
// IDLE keepalive. Pushing the journal's events and asking the store's verdicts
// are device_driver_push.cc's; this file says when.
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/timer_wheel.h"
#include "core/session/device_driver.h"
#include "core/session/hibernation.h"

namespace pimap::session {

// ---- Predicates
// ----------------------------------------------------------------

bool DeviceDriver::InLocalIdle() const {
  switch (idle_) {
    case IdleState::kLocalIdling:
    case IdleState::kLocalInterrupted:
    case IdleState::kLocalInterruptedDone:
    case IdleState::kLocalRendering:
    case IdleState::kLocalDone:
      return true;
    default:
      return false;
  }
}

bool DeviceDriver::DeviceIdling() const {
  switch (idle_) {
    case IdleState::kStoreIdling:
    case IdleState::kStoreInterrupted:
    case IdleState::kStoreRendering:
    case IdleState::kStoreReentering:
    case IdleState::kLocalIdling:
    case IdleState::kLocalInterrupted:
    case IdleState::kLocalRendering:
      return true;
    default:
      return false;
  }
}

bool DeviceDriver::IdleInterrupted() const {
  switch (idle_) {
    case IdleState::kStoreInterrupted:
    case IdleState::kStoreInterruptedDone:
    case IdleState::kStoreRendering:
    case IdleState::kLocalInterrupted:
    case IdleState::kLocalInterruptedDone:
    case IdleState::kLocalRendering:
      return true;
    default:
      return false;
  }
}

bool DeviceDriver::LocalIdleAtRest() const {
  return job_ == Job::kIdle &&
         (idle_ == IdleState::kLocalIdling || idle_ == IdleState::kLocalDone);
}

bool DeviceDriver::IdlePushes() const {
  // Not before the store's first "+" (the device is not in IDLE yet), not
  // after DONE, not while the store works for verdicts (they decide).
  return IdleMayInterrupt() || idle_ == IdleState::kStoreRendering ||
         idle_ == IdleState::kLocalRendering;
}

bool DeviceDriver::IdleMayInterrupt() const {
  return idle_ == IdleState::kStoreIdling ||
         idle_ == IdleState::kStoreReentering ||
         idle_ == IdleState::kLocalIdling;
}

// ---- Entering and leaving
// ------------------------------------------------------

void DeviceDriver::StartStoreIdle(const std::string& tag) {
  idle_ = IdleState::kStoreStarting;
  SendJob(Job::kIdle, tag, "IDLE");
}

void DeviceDriver::StartLocalIdle(const std::string& tag) {
  idle_ = IdleState::kLocalIdling;
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
  if (job_ != Job::kIdle && !InLocalIdle() && !idle_waits) return false;
  switch (idle_) {
    case IdleState::kLocalInterrupted:
    case IdleState::kLocalInterruptedDone:
    case IdleState::kLocalRendering:
      // Answered when the store work in between ends.
      idle_ = IdleState::kLocalInterruptedDone;
      break;
    case IdleState::kLocalIdling:
    case IdleState::kLocalDone: {
      // Answered right after the binding has stopped reading (it does so when
      // this returns): the answer may need the store.
      idle_ = IdleState::kLocalDone;
      std::weak_ptr<bool> alive = alive_;
      idle_done_timer_ = services_.timers->Schedule(0, [this, alive] {
        if (alive.expired()) return;
        idle_done_timer_ = 0;
        FinishLocalIdle();
      });
      break;
    }
    case IdleState::kStoreInterrupted:
    case IdleState::kStoreInterruptedDone:
    case IdleState::kStoreRendering:
      // We already left the store's IDLE to ask for verdicts: just remember.
      idle_ = IdleState::kStoreInterruptedDone;
      break;
    case IdleState::kStoreStarting:
    case IdleState::kStoreIdling:
    case IdleState::kStoreReentering:
      // The store gets DONE; the tagged answer comes when it has finished.
      // (Without a link the session is ending: nobody to tell.) An IDLE that
      // waits for its link gets it right behind it (SendJob).
      if (link_ != nullptr && !idle_waits) link_->Send("DONE\r\n");
      idle_ = idle_ == IdleState::kStoreReentering
                  ? IdleState::kStoreReenterDone
                  : IdleState::kStoreDone;
      break;
    case IdleState::kNone:
    case IdleState::kStoreDone:
    case IdleState::kStoreReenterDone:
      break;  // DONE is on its way already
  }
  return true;
}

bool DeviceDriver::OnIdleContinuation() {
  switch (idle_) {
    case IdleState::kStoreStarting:
      idle_ = IdleState::kStoreIdling;
      return false;
    case IdleState::kStoreReentering:
      // After verdicts, the store's new "+" is ours: the device never left
      // IDLE.
      idle_ = IdleState::kStoreIdling;
      return true;
    case IdleState::kStoreReenterDone:
      idle_ = IdleState::kStoreDone;
      return true;
    case IdleState::kStoreInterrupted:
    case IdleState::kStoreInterruptedDone:
      // The re-entered IDLE was left again before its "+" came (a "+" of the
      // device's own IDLE came before any interruption).
      return true;
    default:
      return false;  // kStoreDone from kStoreStarting: the device's "+"
  }
}

void DeviceDriver::OnIdleJobDone(absl::string_view rest) {
  if (IdleInterrupted()) {
    StartEval();  // the store left IDLE because we asked for verdicts
    return;
  }
  idle_ = IdleState::kNone;
  FinishCommand(rest);
}

void DeviceDriver::FinishLocalIdle() {
  Busy busy(this);
  if (!InLocalIdle() || session_ == nullptr) return;
  idle_ = IdleState::kNone;
  job_ = Job::kIdle;
  FinishCommand("OK Idle completed");
}

// ---- Store work in the middle of an IDLE
// ---------------------------------------

void DeviceDriver::InterruptIdle() {
  // Verdicts first: leave the store's IDLE (the device stays in its own), ask,
  // push what passes, go back into IDLE.
  if (InLocalIdle()) {
    idle_ = IdleState::kLocalInterrupted;
    StartEval();  // the gateway's own IDLE: no store IDLE to leave
    return;
  }
  idle_ = IdleState::kStoreInterrupted;
  link_->Send("DONE\r\n");
}

void DeviceDriver::ResumeIdleAfterEval() {
  // Back from the store work taken in the middle of an IDLE: push what passes,
  // then (new-format) the FETCH for new mail, then back into the IDLE.
  job_ = Job::kIdle;
  if (idle_ == IdleState::kStoreInterrupted ||
      idle_ == IdleState::kLocalInterrupted) {
    const bool local = idle_ == IdleState::kLocalInterrupted;
    idle_ = local ? IdleState::kLocalRendering : IdleState::kStoreRendering;
    cmd().rendered_new.clear();
    OnEventsPending();
    // (A DONE taken meanwhile has moved on from rendering already.)
    if (idle_ == IdleState::kLocalRendering) {
      idle_ = IdleState::kLocalInterrupted;
    } else if (idle_ == IdleState::kStoreRendering) {
      idle_ = IdleState::kStoreInterrupted;
    }
    if (!cmd().rendered_new.empty() && NewFormatWanted()) {
      FetchNewThen();
      return;
    }
  }
  ReIdle();
}

void DeviceDriver::ReIdle() {
  if (InLocalIdle()) {
    if (idle_ == IdleState::kLocalInterruptedDone) {
      idle_ = IdleState::kLocalDone;
      FinishLocalIdle();
      return;
    }
    idle_ = IdleState::kLocalIdling;
    job_ = Job::kIdle;
    MaybeReturnLink();
    Paused(false, true);
    return;
  }
  if (idle_ == IdleState::kStoreInterruptedDone) {
    idle_ = IdleState::kNone;
    job_ = Job::kIdle;
    FinishCommand("OK Idle completed");
    return;
  }
  idle_ = IdleState::kStoreReentering;
  SendJob(Job::kIdle, job_device_tag_, "IDLE");
  // The device's "DONE" may be waiting in the input while we were busy.
  Paused(false, true);
}

bool DeviceDriver::LocalIdleSurvivesLinkLoss() {
  if (!InLocalIdle() || !IdleInterrupted() || cmd().finish_after_eval ||
      cmd().fetch_then_finish) {
    return false;
  }
  // Store work in the middle of the gateway's IDLE: the device stays in IDLE,
  // quiet; what could not be classified waits for the store to come back.
  job_ = Job::kIdle;
  if (idle_ == IdleState::kLocalInterruptedDone) {
    idle_ = IdleState::kLocalDone;
    FinishLocalIdle();
    return true;
  }
  idle_ = IdleState::kLocalIdling;
  Paused(false, true);
  return true;
}

// ---- Keepalive
// -----------------------------------------------------------------

// Devices in IDLE behind carrier NATs lose their mapping after a few minutes of
// silence: say something at --idle-keepalive (phased by the device id:
// hibernation.h).
void DeviceDriver::ArmKeepalive(bool just_sent) {
  TimerWheel& timers = *services_.timers;
  if (keepalive_timer_ != 0) timers.Cancel(keepalive_timer_);
  keepalive_timer_ = 0;
  const int64_t interval = registry().config().idle_keepalive_ms;
  if (interval <= 0 || session_ == nullptr) return;
  const int64_t delay =
      KeepaliveDelayMs(session_->device, interval, MonotonicNowMs(), just_sent);
  keepalive_timer_ = timers.Schedule(delay, [this] {
    keepalive_timer_ = 0;
    if (!DeviceIdling() || job_ != Job::kIdle || output_ == nullptr) return;
    Busy busy(this);
    Write("* OK Still here\r\n");
    ArmKeepalive(/*just_sent=*/true);
  });
}

}  // namespace pimap::session
