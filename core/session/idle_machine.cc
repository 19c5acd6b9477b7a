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
    case State::kLocalIdling:
    case State::kLocalInterrupted:
    case State::kLocalInterruptedDone:
    case State::kLocalRendering:
    case State::kLocalDone:
      return true;
    default:
      return false;
  }
}

bool IdleMachine::DeviceIdling() const {
  switch (state_) {
    case State::kStoreIdling:
    case State::kStoreInterrupted:
    case State::kStoreRendering:
    case State::kStoreReentering:
    case State::kLocalIdling:
    case State::kLocalInterrupted:
    case State::kLocalRendering:
      return true;
    default:
      return false;
  }
}

bool IdleMachine::Interrupted() const {
  switch (state_) {
    case State::kStoreInterrupted:
    case State::kStoreInterruptedDone:
    case State::kStoreRendering:
    case State::kLocalInterrupted:
    case State::kLocalInterruptedDone:
    case State::kLocalRendering:
      return true;
    default:
      return false;
  }
}

bool IdleMachine::Pushes() const {
  // Not before the store's first "+" (the device is not in IDLE yet), not
  // after DONE, not while the store works for verdicts (they decide).
  return MayInterrupt() || state_ == State::kStoreRendering ||
         state_ == State::kLocalRendering;
}

bool IdleMachine::MayInterrupt() const {
  return state_ == State::kStoreIdling || state_ == State::kStoreReentering ||
         state_ == State::kLocalIdling;
}

// ---- Transitions
// ---------------------------------------------------------------

IdleMachine::DoneAction IdleMachine::TakeDone() {
  switch (state_) {
    case State::kLocalInterrupted:
    case State::kLocalInterruptedDone:
    case State::kLocalRendering:
      // Answered when the store work in between ends.
      state_ = State::kLocalInterruptedDone;
      return DoneAction::kNothing;
    case State::kLocalIdling:
    case State::kLocalDone:
      // Answered right after the binding has stopped reading (it does so when
      // the driver returns): the answer may need the store.
      state_ = State::kLocalDone;
      return DoneAction::kAnswerLocal;
    case State::kStoreInterrupted:
    case State::kStoreInterruptedDone:
    case State::kStoreRendering:
      // We already left the store's IDLE to ask for verdicts: just remember.
      state_ = State::kStoreInterruptedDone;
      return DoneAction::kNothing;
    case State::kStoreStarting:
    case State::kStoreIdling:
    case State::kStoreReentering:
      // The store gets DONE; the tagged answer comes when it has finished.
      state_ = state_ == State::kStoreReentering ? State::kStoreReenterDone
                                                 : State::kStoreDone;
      return DoneAction::kRelayDone;
    case State::kNone:
    case State::kStoreDone:
    case State::kStoreReenterDone:
      break;  // DONE is on its way already
  }
  return DoneAction::kNothing;
}

bool IdleMachine::OnContinuation() {
  switch (state_) {
    case State::kStoreStarting:
      state_ = State::kStoreIdling;
      return false;
    case State::kStoreReentering:
      // After verdicts, the store's new "+" is ours: the device never left
      // IDLE.
      state_ = State::kStoreIdling;
      return true;
    case State::kStoreReenterDone:
      state_ = State::kStoreDone;
      return true;
    case State::kStoreInterrupted:
    case State::kStoreInterruptedDone:
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
  state_ = State::kNone;
  return false;
}

IdleMachine::InterruptAction IdleMachine::Interrupt() {
  // Verdicts first: leave the store's IDLE (the device stays in its own), ask,
  // push what passes, go back into IDLE.
  if (InLocalIdle()) {
    state_ = State::kLocalInterrupted;
    return InterruptAction::kStartWork;
  }
  state_ = State::kStoreInterrupted;
  return InterruptAction::kLeaveStoreIdle;
}

bool IdleMachine::BeginRendering() {
  if (state_ == State::kStoreInterrupted) {
    state_ = State::kStoreRendering;
    return true;
  }
  if (state_ == State::kLocalInterrupted) {
    state_ = State::kLocalRendering;
    return true;
  }
  return false;
}

void IdleMachine::EndRendering() {
  // (A DONE taken meanwhile has moved on from rendering already.)
  if (state_ == State::kLocalRendering) {
    state_ = State::kLocalInterrupted;
  } else if (state_ == State::kStoreRendering) {
    state_ = State::kStoreInterrupted;
  }
}

bool IdleMachine::BecomeLocal() {
  if (state_ != State::kStoreInterrupted) return false;
  state_ = State::kLocalIdling;
  return true;
}

IdleMachine::ReenterAction IdleMachine::Reenter() {
  if (InLocalIdle()) {
    if (state_ == State::kLocalInterruptedDone) {
      state_ = State::kLocalDone;
      return ReenterAction::kAnswerLocal;
    }
    state_ = State::kLocalIdling;
    return ReenterAction::kResumeLocal;
  }
  if (state_ == State::kStoreInterruptedDone) {
    state_ = State::kNone;
    return ReenterAction::kAnswerRelayed;
  }
  state_ = State::kStoreReentering;
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
