// IdleMachine (core/session/idle_machine.h) on its own: the transitions and
// the actions they return, the predicates of every state, and the IDLE's two
// timers on a TimerWheel. The driver's side (what it does with each action) is
// device_driver_idle_test.cc's.
#include "core/session/idle_machine.h"

#include <functional>
#include <string>
#include <vector>

#include "core/base/timer_wheel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using DoneAction = IdleMachine::DoneAction;
using InterruptAction = IdleMachine::InterruptAction;
using ReenterAction = IdleMachine::ReenterAction;
using IdleState = IdleMachine::State;

// Drives `m` from kNone into `target` by the transitions the driver uses.
void DriveTo(IdleMachine& m, IdleState target) {
  m.Reset();
  switch (target) {
    case IdleState::kNone:
      return;
    case IdleState::kStoreStarting:
      m.StartRelayed();
      return;
    case IdleState::kStoreIdling:
      m.StartRelayed();
      m.OnContinuation();
      return;
    case IdleState::kStoreDone:
      m.StartRelayed();
      m.TakeDone();
      return;
    case IdleState::kStoreInterrupted:
      DriveTo(m, IdleState::kStoreIdling);
      m.Interrupt();
      return;
    case IdleState::kStoreInterruptedDone:
      DriveTo(m, IdleState::kStoreInterrupted);
      m.TakeDone();
      return;
    case IdleState::kStoreRendering:
      DriveTo(m, IdleState::kStoreInterrupted);
      m.BeginRendering();
      return;
    case IdleState::kStoreReentering:
      DriveTo(m, IdleState::kStoreInterrupted);
      m.Reenter();
      return;
    case IdleState::kStoreReenterDone:
      DriveTo(m, IdleState::kStoreReentering);
      m.TakeDone();
      return;
    case IdleState::kLocalIdling:
      m.StartLocal();
      return;
    case IdleState::kLocalInterrupted:
      m.StartLocal();
      m.Interrupt();
      return;
    case IdleState::kLocalInterruptedDone:
      DriveTo(m, IdleState::kLocalInterrupted);
      m.TakeDone();
      return;
    case IdleState::kLocalRendering:
      DriveTo(m, IdleState::kLocalInterrupted);
      m.BeginRendering();
      return;
    case IdleState::kLocalDone:
      m.StartLocal();
      m.TakeDone();
      return;
  }
}

TEST(IdleMachineTest, RelayedIdleEndsWithTheStoresAnswer) {
  IdleMachine m;
  m.StartRelayed();
  EXPECT_FALSE(m.DeviceIdling());  // no "+" yet: nothing is pushed
  EXPECT_FALSE(m.Pushes());
  EXPECT_FALSE(m.OnContinuation());  // the store's "+" is the device's
  EXPECT_EQ(m.state(), IdleState::kStoreIdling);
  EXPECT_TRUE(m.Pushes());
  EXPECT_EQ(m.TakeDone(), DoneAction::kRelayDone);
  EXPECT_EQ(m.state(), IdleState::kStoreDone);
  EXPECT_TRUE(m.DoneRelayed());
  EXPECT_EQ(m.TakeDone(), DoneAction::kNothing);  // DONE is on its way
  EXPECT_FALSE(m.OnStoreIdleEnded());             // answer the IDLE
  EXPECT_EQ(m.state(), IdleState::kNone);
}

TEST(IdleMachineTest, DoneBeforeTheStoresPlusLetsThePlusThrough) {
  IdleMachine m;
  m.StartRelayed();
  EXPECT_EQ(m.TakeDone(), DoneAction::kRelayDone);
  EXPECT_EQ(m.state(), IdleState::kStoreDone);
  EXPECT_FALSE(m.OnContinuation());  // still the device's "+": pass it on
  EXPECT_EQ(m.state(), IdleState::kStoreDone);
}

TEST(IdleMachineTest, RelayedIdleLeftForVerdictsIsReentered) {
  IdleMachine m;
  DriveTo(m, IdleState::kStoreIdling);
  ASSERT_TRUE(m.MayInterrupt());
  EXPECT_EQ(m.Interrupt(), InterruptAction::kLeaveStoreIdle);
  EXPECT_TRUE(m.Interrupted());
  EXPECT_TRUE(m.DeviceIdling());      // the device never left its IDLE
  EXPECT_FALSE(m.Pushes());           // the verdicts decide first
  EXPECT_TRUE(m.OnStoreIdleEnded());  // our DONE's answer: start the work
  EXPECT_EQ(m.state(), IdleState::kStoreInterrupted);
  EXPECT_TRUE(m.BeginRendering());
  EXPECT_TRUE(m.Pushes());
  EXPECT_FALSE(m.MayInterrupt());  // what passed goes out, no new verdicts
  m.EndRendering();
  EXPECT_EQ(m.state(), IdleState::kStoreInterrupted);
  EXPECT_EQ(m.Reenter(), ReenterAction::kReenterRelayed);
  EXPECT_EQ(m.state(), IdleState::kStoreReentering);
  EXPECT_TRUE(m.OnContinuation());  // the re-entered IDLE's "+" is ours
  EXPECT_EQ(m.state(), IdleState::kStoreIdling);
}

// The folder became covered while the relayed IDLE was left for work: the
// IDLE goes on as the gateway's own; from any other state nothing changes.
TEST(IdleMachineTest, AnInterruptedRelayedIdleMayBecomeTheGatewaysOwn) {
  IdleMachine m;
  DriveTo(m, IdleState::kStoreInterrupted);
  EXPECT_TRUE(m.BecomeLocal());
  EXPECT_EQ(m.state(), IdleState::kLocalIdling);
  EXPECT_TRUE(m.LocalResting());
  EXPECT_EQ(m.TakeDone(), DoneAction::kAnswerLocal);
  for (IdleState other :
       {IdleState::kNone, IdleState::kStoreStarting, IdleState::kStoreIdling,
        IdleState::kStoreDone, IdleState::kStoreInterruptedDone,
        IdleState::kStoreRendering, IdleState::kStoreReentering,
        IdleState::kStoreReenterDone, IdleState::kLocalIdling,
        IdleState::kLocalInterrupted, IdleState::kLocalDone}) {
    DriveTo(m, other);
    const IdleState before = m.state();
    EXPECT_FALSE(m.BecomeLocal()) << static_cast<int>(before);
    EXPECT_EQ(m.state(), before);
  }
}

TEST(IdleMachineTest, DoneWhileInterruptedAnswersAtTheWorksEnd) {
  IdleMachine m;
  DriveTo(m, IdleState::kStoreInterrupted);
  EXPECT_EQ(m.TakeDone(), DoneAction::kNothing);  // we left the store's IDLE
  EXPECT_EQ(m.state(), IdleState::kStoreInterruptedDone);
  EXPECT_FALSE(m.DeviceIdling());
  EXPECT_TRUE(m.OnContinuation());   // a late "+" of a re-entered IDLE: ours
  EXPECT_FALSE(m.BeginRendering());  // nothing is pushed after DONE
  EXPECT_EQ(m.Reenter(), ReenterAction::kAnswerRelayed);
  EXPECT_EQ(m.state(), IdleState::kNone);
}

TEST(IdleMachineTest, DoneWhileRenderingIsNotUndoneByItsEnd) {
  for (IdleState rendering :
       {IdleState::kStoreRendering, IdleState::kLocalRendering}) {
    IdleMachine m;
    DriveTo(m, rendering);
    ASSERT_EQ(m.state(), rendering);
    EXPECT_EQ(m.TakeDone(), DoneAction::kNothing);
    const IdleState done = m.state();
    EXPECT_TRUE(done == IdleState::kStoreInterruptedDone ||
                done == IdleState::kLocalInterruptedDone);
    m.EndRendering();
    EXPECT_EQ(m.state(), done);
  }
}

TEST(IdleMachineTest, DoneWhileReenteringSwallowsThatPlus) {
  IdleMachine m;
  DriveTo(m, IdleState::kStoreReentering);
  EXPECT_EQ(m.TakeDone(), DoneAction::kRelayDone);
  EXPECT_EQ(m.state(), IdleState::kStoreReenterDone);
  EXPECT_TRUE(m.DoneRelayed());
  EXPECT_TRUE(m.OnContinuation());
  EXPECT_EQ(m.state(), IdleState::kStoreDone);
}

TEST(IdleMachineTest, LocalIdleIsAnsweredByTheGateway) {
  IdleMachine m;
  m.StartLocal();
  EXPECT_TRUE(m.InLocalIdle());
  EXPECT_TRUE(m.LocalResting());
  EXPECT_TRUE(m.Pushes());
  EXPECT_EQ(m.TakeDone(), DoneAction::kAnswerLocal);
  EXPECT_EQ(m.state(), IdleState::kLocalDone);
  EXPECT_TRUE(m.LocalResting());
  EXPECT_FALSE(m.DeviceIdling());
  EXPECT_FALSE(m.Pushes());
}

TEST(IdleMachineTest, LocalIdleInterruptedGoesBackOrIsAnswered) {
  IdleMachine m;
  m.StartLocal();
  EXPECT_EQ(m.Interrupt(), InterruptAction::kStartWork);  // no store IDLE
  EXPECT_FALSE(m.LocalResting());                         // the link is needed
  EXPECT_EQ(m.Reenter(), ReenterAction::kResumeLocal);
  EXPECT_EQ(m.state(), IdleState::kLocalIdling);

  m.Interrupt();
  EXPECT_EQ(m.TakeDone(), DoneAction::kNothing);
  EXPECT_EQ(m.state(), IdleState::kLocalInterruptedDone);
  EXPECT_EQ(m.Reenter(), ReenterAction::kAnswerLocal);
  EXPECT_EQ(m.state(), IdleState::kLocalDone);
}

TEST(IdleMachineTest, PredicatesOfEveryState) {
  struct Row {
    IdleState state;
    bool local, idling, interrupted, pushes, may_interrupt, done_relayed,
        resting;
  };
  const std::vector<Row> rows = {
      {IdleState::kNone, 0, 0, 0, 0, 0, 0, 0},
      {IdleState::kStoreStarting, 0, 0, 0, 0, 0, 0, 0},
      {IdleState::kStoreIdling, 0, 1, 0, 1, 1, 0, 0},
      {IdleState::kStoreDone, 0, 0, 0, 0, 0, 1, 0},
      {IdleState::kStoreInterrupted, 0, 1, 1, 0, 0, 0, 0},
      {IdleState::kStoreInterruptedDone, 0, 0, 1, 0, 0, 0, 0},
      {IdleState::kStoreRendering, 0, 1, 1, 1, 0, 0, 0},
      {IdleState::kStoreReentering, 0, 1, 0, 1, 1, 0, 0},
      {IdleState::kStoreReenterDone, 0, 0, 0, 0, 0, 1, 0},
      {IdleState::kLocalIdling, 1, 1, 0, 1, 1, 0, 1},
      {IdleState::kLocalInterrupted, 1, 1, 1, 0, 0, 0, 0},
      {IdleState::kLocalInterruptedDone, 1, 0, 1, 0, 0, 0, 0},
      {IdleState::kLocalRendering, 1, 1, 1, 1, 0, 0, 0},
      {IdleState::kLocalDone, 1, 0, 0, 0, 0, 0, 1},
  };
  for (const Row& row : rows) {
    IdleMachine m;
    DriveTo(m, row.state);
    SCOPED_TRACE(static_cast<int>(row.state));
    ASSERT_EQ(m.state(), row.state);
    EXPECT_EQ(m.InLocalIdle(), row.local);
    EXPECT_EQ(m.DeviceIdling(), row.idling);
    EXPECT_EQ(m.Interrupted(), row.interrupted);
    EXPECT_EQ(m.Pushes(), row.pushes);
    EXPECT_EQ(m.MayInterrupt(), row.may_interrupt);
    EXPECT_EQ(m.DoneRelayed(), row.done_relayed);
    EXPECT_EQ(m.LocalResting(), row.resting);
  }
}

TEST(IdleMachineTest, KeepaliveFiresOncePerArmingAndReplacesTheArmedOne) {
  TimerWheel timers(0);
  IdleMachine m;
  int fired = 0;
  m.ArmKeepalive(timers, 1000, "dev1", false, [&] { ++fired; });
  m.ArmKeepalive(timers, 1000, "dev1", false, [&] { ++fired; });
  EXPECT_EQ(timers.size(), 1u);
  timers.Advance(0);
  EXPECT_EQ(fired, 0);  // a phase point is at least 1 ms away
  timers.Advance(1000);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(timers.size(), 0u);
  // Re-armed from its own callback (as the driver does after writing one).
  m.ArmKeepalive(timers, 1000, "dev1", false, [&] {
    ++fired;
    m.ArmKeepalive(timers, 1000, "dev1", true, [&] { ++fired; });
  });
  timers.Advance(2000);
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(timers.size(), 1u);
  m.CancelTimers(timers);
  EXPECT_EQ(timers.size(), 0u);
}

TEST(IdleMachineTest, NoKeepaliveWithoutAnInterval) {
  TimerWheel timers(0);
  IdleMachine m;
  m.ArmKeepalive(timers, 1000, "dev1", false, [] {});
  m.ArmKeepalive(timers, 0, "dev1", false, [] {});  // disarms
  EXPECT_EQ(timers.size(), 0u);
}

TEST(IdleMachineTest, DoneAnswerRunsOnceFromAZeroDelayTimer) {
  TimerWheel timers(0);
  IdleMachine m;
  int answered = 0;
  m.ScheduleDoneAnswer(timers, [&] { ++answered; });
  EXPECT_TRUE(m.DoneAnswerPending());
  m.ScheduleDoneAnswer(timers, [&] { ++answered; });  // never two answers
  EXPECT_EQ(answered, 0);  // not from inside the DONE's call
  timers.Advance(0);
  EXPECT_EQ(answered, 1);
  EXPECT_FALSE(m.DoneAnswerPending());

  m.ScheduleDoneAnswer(timers, [&] { ++answered; });
  m.CancelTimers(timers);
  EXPECT_FALSE(m.DoneAnswerPending());
  timers.Advance(10);
  EXPECT_EQ(answered, 1);
}

}  // namespace
}  // namespace pimap::session
