// The IDLE of one P-IMAP device as a state machine (IdleMachine): which state
// the IDLE is in, what the rest of the engine may do in it (push, interrupt,
// give the link back), the transitions, and the IDLE's two timers (the
// keepalive, the zero-delay answer of a DONE the gateway takes). It performs
// no I/O: each transition returns what the caller (DeviceDriver,
// device_driver_idle.cc) must do next, so the machine is tested on its own
// (tests/core/session/idle_machine_test.cc).
//
// An IDLE is relayed (the store's IDLE carries the device's: a folder no event
// source covers, or no pool) or the gateway's own (pooled mode, a covered
// folder: answered from the journal with no link held). Either may be left for
// store work in the middle (filter verdicts on new mail, the
// PIMAP_INBAND_NEW_FORMAT FETCH) while the device stays in its IDLE, and the
// device's DONE may come at any point. The driver's `job_` says which store
// command runs; IdleMachine::State says where the IDLE is. Its transitions:
//
//   Relayed:
//   kNone -IDLE sent-> kStoreStarting -"+" passed on-> kStoreIdling
//   kStoreStarting, kStoreIdling -DONE relayed-> kStoreDone
//   kStoreDone -the store's tagged answer-> kNone (answered)
//   kStoreIdling, kStoreReentering -news needing verdicts, our DONE->
//     kStoreInterrupted -DONE-> kStoreInterruptedDone
//   kStoreInterrupted -work done-> kStoreRendering (push what passed) ->
//     kStoreInterrupted (the new-format FETCH, if any) -> kStoreReentering
//   kStoreInterruptedDone -work done-> kNone (answered)
//   kStoreInterrupted -work done, the folder covered now-> kLocalIdling
//   kStoreReentering -"+" swallowed-> kStoreIdling
//   kStoreReentering -DONE relayed-> kStoreReenterDone -"+" swallowed->
//     kStoreDone
//   The gateway's own:
//   kNone -IDLE-> kLocalIdling -DONE-> kLocalDone -timer-> kNone (answered)
//   kLocalIdling -news needing verdicts-> kLocalInterrupted -DONE->
//     kLocalInterruptedDone -work done or link lost-> kLocalDone -> kNone
//   kLocalInterrupted -work done-> kLocalRendering -> kLocalInterrupted
//     (the new-format FETCH, if any) -> kLocalIdling
//   kLocalInterrupted -link lost-> kLocalIdling (quiet; verdicts later)
//   Any -AbortCommand, takeover, hibernation-> kNone.
//
// "The device's DONE arrived while interrupted" is a state of its own
// (k*InterruptedDone), not a bool beside the state: it changes what every
// later event means (no push, no keepalive, the end of the work answers the
// IDLE instead of re-entering it), so a separate bool would let "idling" and
// "DONE taken" be true at once. Rendering is a state for the same reason: only
// there may events be pushed while interrupted, and only there must they not
// interrupt again.
//
// Hazards: the machine lives in the always-present part of the driver (an
// idling device is in it), so it holds nothing but the state and two timer
// ids; the timers' callbacks capture the machine's address (it must not move
// while one is armed: CancelTimers() before it goes).
#ifndef PIMAP_CORE_SESSION_IDLE_MACHINE_H_
#define PIMAP_CORE_SESSION_IDLE_MACHINE_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/base/timer_wheel.h"

namespace pimap::session {

class IdleMachine {
 public:
  // Where the IDLE is (the diagram above).
  enum class State : uint8_t {
    kNone,  // no IDLE (or only its answer is still being made)
    // Relayed to the store.
    kStoreStarting,         // IDLE sent (or waiting for its link); no "+" yet
    kStoreIdling,           // the store said "+" (passed on): news are pushed
    kStoreDone,             // the device's DONE relayed; the store's answer is
                            // due (a "+" still due is the device's: passed on)
    kStoreInterrupted,      // our DONE left the store's IDLE for verdicts or
                            // the new-format FETCH; the device still idles
    kStoreInterruptedDone,  // ... and the device said DONE meanwhile: the
                            // work's end answers the IDLE
    kStoreRendering,        // the work done: pushing what passed (no new
                            // verdicts)
    kStoreReentering,       // IDLE sent again; its "+" is ours (swallowed); the
                            // device still idles and news are pushed
    kStoreReenterDone,      // the device's DONE relayed before that "+" came:
                            // swallowed still, then as kStoreDone
    // The gateway's own.
    kLocalIdling,           // "+ idling" written; news pushed from the journal
    kLocalInterrupted,      // verdicts / new-format FETCH on a borrowed link
    kLocalInterruptedDone,  // ... and the device said DONE meanwhile
    kLocalRendering,        // the work done: pushing what passed
    kLocalDone,  // DONE taken, answered from a zero-delay timer (the answer
                 // may need the store, the binding stops reading first)
  };

  IdleMachine() = default;
  IdleMachine(const IdleMachine&) = delete;
  IdleMachine& operator=(const IdleMachine&) = delete;

  State state() const { return state_; }

  // ---- Predicates (what the former flags said).
  bool InLocalIdle() const;   // any of the gateway's own IDLE's states
  bool DeviceIdling() const;  // in IDLE, its DONE not yet taken
  bool Interrupted() const;   // left (or leaving) for store work
  // The gateway's own IDLE with no store work of it (the driver adds "and
  // job_ is kIdle": then the link may go back, the command state may go).
  bool LocalResting() const {
    return state_ == State::kLocalIdling || state_ == State::kLocalDone;
  }
  // Events may be pushed now.
  bool Pushes() const;
  // News needing the store's verdicts may leave the IDLE for them (not while
  // rendering what the last verdicts let through).
  bool MayInterrupt() const;
  // The device's DONE has been relayed to the store (whose tagged answer is
  // the device's).
  bool DoneRelayed() const {
    return state_ == State::kStoreDone || state_ == State::kStoreReenterDone;
  }

  // ---- Transitions. Each returns what the caller must do.
  void StartRelayed() { state_ = State::kStoreStarting; }
  // Also how a hibernated device comes back (it was in kLocalIdling).
  void StartLocal() { state_ = State::kLocalIdling; }
  // Any of: AbortCommand, takeover, hibernation, the command's answer.
  void Reset() { state_ = State::kNone; }

  enum class DoneAction {
    kNothing,      // the answer is made when the store work in between ends,
                   // or DONE is on its way already
    kAnswerLocal,  // the gateway's own IDLE: answer it from a zero-delay
                   // timer (ScheduleDoneAnswer), after the binding stopped
                   // reading
    kRelayDone,    // send DONE to the store; its tagged answer ends the IDLE
  };
  // The device's DONE (any line while in IDLE).
  DoneAction TakeDone();
  // The store's "+" while its IDLE runs; true: ours (swallow it), false: the
  // device's (pass it on).
  bool OnContinuation();
  // The store's IDLE completed (tagged answer). True: it was left for store
  // work (start it now); false: the IDLE is over (kNone), answer it.
  bool OnStoreIdleEnded();

  enum class InterruptAction {
    kStartWork,       // the gateway's own IDLE: no store IDLE to leave
    kLeaveStoreIdle,  // send DONE to the store; its answer starts the work
  };
  // Leaves the IDLE for the store's verdicts (or the new-format FETCH).
  // Only when MayInterrupt().
  InterruptAction Interrupt();
  // The store work is done: true when the device still idles and what passed
  // is to be pushed now (kStore/kLocalRendering until EndRendering()); false
  // when the device said DONE meanwhile.
  bool BeginRendering();
  // Back to interrupted (for the new-format FETCH or Reenter()); nothing when
  // a DONE taken while rendering has moved on already.
  void EndRendering();

  enum class ReenterAction {
    kAnswerLocal,     // the device said DONE meanwhile: answer the gateway's
                      // own IDLE now (state kLocalDone)
    kResumeLocal,     // back in the gateway's own IDLE (kLocalIdling)
    kAnswerRelayed,   // the device said DONE meanwhile: answer now (kNone)
    kReenterRelayed,  // send IDLE to the store again (kStoreReentering)
  };
  // After the store work in the middle of an IDLE (or the link lost in the
  // middle of the gateway's own): back into it, or its answer.
  ReenterAction Reenter();
  // After the store work in the middle of a relayed IDLE whose folder an
  // event source now covers: the IDLE goes on as the gateway's own
  // (kStoreInterrupted -> kLocalIdling) instead of re-entering the store's.
  // False (nothing changed) from any other state.
  bool BecomeLocal();

  // ---- Timers.
  // Arms the keepalive `interval_ms` after the last one, phased by `device`
  // (hibernation.h KeepaliveDelayMs; `just_sent`: one went out now), replacing
  // the one armed. `due` runs when it expires (the id already cleared).
  // interval_ms <= 0: only disarms.
  void ArmKeepalive(TimerWheel& timers, int64_t interval_ms,
                    absl::string_view device, bool just_sent,
                    TimerWheel::Callback due);
  // DoneAction::kAnswerLocal: `answer` runs from a zero-delay timer.
  void ScheduleDoneAnswer(TimerWheel& timers, TimerWheel::Callback answer);
  // A DONE answer is scheduled and has not run yet.
  bool DoneAnswerPending() const { return done_timer_ != 0; }
  void CancelKeepalive(TimerWheel& timers);
  void CancelTimers(TimerWheel& timers);

 private:
  TimerWheel::TimerId keepalive_timer_ = 0;
  TimerWheel::TimerId done_timer_ = 0;
  // Last, so that a driver holding the machine [[no_unique_address]] may put
  // its small fields into the tail padding (an idling device must not grow).
  State state_ = State::kNone;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_IDLE_MACHINE_H_
