// IdleMachine (idle_machine.h): the predicates, the transitions and the two
// timers of a device's IDLE. What each returned action does is the driver's
// (device_driver_idle.cc).
#include "core/session/idle_machine.h"

#include <utility>

#include "core/session/hibernation.h"

namespace pimap::session {

// ---- Predicates
// ----------------------------------------------------------------

bool IdleMachine::InLocalIdle() const {
  switch (state_) {
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

bool IdleMachine::DeviceIdling() const {
  switch (state_) {
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

bool IdleMachine::Interrupted() const {
  switch (state_) {
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

bool IdleMachine::Pushes() const {
  // Not before the store's first "+" (the device is not in IDLE yet), not
  // after DONE, not while the store works for verdicts (they decide).
  return MayInterrupt() || state_ == IdleState::kStoreRendering ||
         state_ == IdleState::kLocalRendering;
}

bool IdleMachine::MayInterrupt() const {
  return state_ == IdleState::kStoreIdling ||
         state_ == IdleState::kStoreReentering ||
         state_ == IdleState::kLocalIdling;
}

// ---- Transitions
// ---------------------------------------------------------------

IdleMachine::DoneAction IdleMachine::TakeDone() {
  switch (state_) {
    case IdleState::kLocalInterrupted:
    case IdleState::kLocalInterruptedDone:
    case IdleState::kLocalRendering:
      // Answered when the store work in between ends.
      state_ = IdleState::kLocalInterruptedDone;
      return DoneAction::kNothing;
    case IdleState::kLocalIdling:
    case IdleState::kLocalDone:
      // Answered right after the binding has stopped reading (it does so when
      // the driver returns): the answer may need the store.
      state_ = IdleState::kLocalDone;
      return DoneAction::kAnswerLocal;
    case IdleState::kStoreInterrupted:
    case IdleState::kStoreInterruptedDone:
    case IdleState::kStoreRendering:
      // We already left the store's IDLE to ask for verdicts: just remember.
      state_ = IdleState::kStoreInterruptedDone;
      return DoneAction::kNothing;
    case IdleState::kStoreStarting:
    case IdleState::kStoreIdling:
    case IdleState::kStoreReentering:
      // The store gets DONE; the tagged answer comes when it has finished.
      state_ = state_ == IdleState::kStoreReentering
                   ? IdleState::kStoreReenterDone
                   : IdleState::kStoreDone;
      return DoneAction::kRelayDone;
    case IdleState::kNone:
    case IdleState::kStoreDone:
    case IdleState::kStoreReenterDone:
      break;  // DONE is on its way already
  }
  return DoneAction::kNothing;
}

bool IdleMachine::OnContinuation() {
  switch (state_) {
    case IdleState::kStoreStarting:
      state_ = IdleState::kStoreIdling;
      return false;
    case IdleState::kStoreReentering:
      // After verdicts, the store's new "+" is ours: the device never left
      // IDLE.
      state_ = IdleState::kStoreIdling;
      return true;
    case IdleState::kStoreReenterDone:
      state_ = IdleState::kStoreDone;
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

bool IdleMachine::OnStoreIdleEnded() {
  // Interrupted: the store left IDLE because we asked for verdicts.
  if (Interrupted()) return true;
  state_ = IdleState::kNone;
  return false;
}

IdleMachine::InterruptAction IdleMachine::Interrupt() {
  // Verdicts first: leave the store's IDLE (the device stays in its own), ask,
  // push what passes, go back into IDLE.
  if (InLocalIdle()) {
    state_ = IdleState::kLocalInterrupted;
    return InterruptAction::kStartWork;
  }
  state_ = IdleState::kStoreInterrupted;
  return InterruptAction::kLeaveStoreIdle;
}

bool IdleMachine::BeginRendering() {
  if (state_ == IdleState::kStoreInterrupted) {
    state_ = IdleState::kStoreRendering;
    return true;
  }
  if (state_ == IdleState::kLocalInterrupted) {
    state_ = IdleState::kLocalRendering;
    return true;
  }
  return false;
}

void IdleMachine::EndRendering() {
  // (A DONE taken meanwhile has moved on from rendering already.)
  if (state_ == IdleState::kLocalRendering) {
    state_ = IdleState::kLocalInterrupted;
  } else if (state_ == IdleState::kStoreRendering) {
    state_ = IdleState::kStoreInterrupted;
  }
}

IdleMachine::ReenterAction IdleMachine::Reenter() {
  if (InLocalIdle()) {
    if (state_ == IdleState::kLocalInterruptedDone) {
      state_ = IdleState::kLocalDone;
      return ReenterAction::kAnswerLocal;
    }
    state_ = IdleState::kLocalIdling;
    return ReenterAction::kResumeLocal;
  }
  if (state_ == IdleState::kStoreInterruptedDone) {
    state_ = IdleState::kNone;
    return ReenterAction::kAnswerRelayed;
  }
  state_ = IdleState::kStoreReentering;
  return ReenterAction::kReenterRelayed;
}

// ---- Timers
// --------------------------------------------------------------------

// Devices in IDLE behind carrier NATs lose their mapping after a few minutes of
// silence: the driver says something at --idle-keepalive (phased by the device
// id: hibernation.h).
void IdleMachine::ArmKeepalive(TimerWheel& timers, int64_t interval_ms,
                               absl::string_view device, bool just_sent,
                               TimerWheel::Callback due) {
  CancelKeepalive(timers);
  if (interval_ms <= 0) return;
  const int64_t delay =
      KeepaliveDelayMs(device, interval_ms, MonotonicNowMs(), just_sent);
  keepalive_timer_ =
      timers.Schedule(delay, [this, due = std::move(due)]() mutable {
        keepalive_timer_ = 0;
        due();
      });
}

void IdleMachine::ScheduleDoneAnswer(TimerWheel& timers,
                                     TimerWheel::Callback answer) {
  // One answer per DONE: a second DONE before the first answer ran (the
  // binding stops reading first, so none should come) must not leave a stale
  // timer that would answer a later IDLE.
  if (done_timer_ != 0) timers.Cancel(done_timer_);
  done_timer_ =
      timers.Schedule(0, [this, answer = std::move(answer)]() mutable {
        done_timer_ = 0;
        answer();
      });
}

void IdleMachine::CancelKeepalive(TimerWheel& timers) {
  if (keepalive_timer_ != 0) timers.Cancel(keepalive_timer_);
  keepalive_timer_ = 0;
}

void IdleMachine::CancelTimers(TimerWheel& timers) {
  CancelKeepalive(timers);
  if (done_timer_ != 0) timers.Cancel(done_timer_);
  done_timer_ = 0;
}

}  // namespace pimap::session
