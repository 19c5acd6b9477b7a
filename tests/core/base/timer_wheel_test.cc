// Tests for TimerWheel: ordering, cancel, re-entrancy from callbacks,
// NextDeadlineMs, scale, and bounded memory under cancel churn.
#include "core/base/timer_wheel.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace pimap {
namespace {

TEST(TimerWheelTest, IdsAreNonZeroAndUnique) {
  TimerWheel w(0);
  auto a = w.Schedule(10, [] {});
  auto b = w.Schedule(10, [] {});
  EXPECT_NE(a, 0u);
  EXPECT_NE(b, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(w.size(), 2u);
}

TEST(TimerWheelTest, FiresInDeadlineOrderThenScheduleOrder) {
  TimerWheel w(1000);
  std::vector<int> fired;
  w.Schedule(30, [&] { fired.push_back(3); });
  w.Schedule(10, [&] { fired.push_back(1); });
  w.Schedule(20, [&] { fired.push_back(2); });
  w.Schedule(10, [&] { fired.push_back(11); });  // Same deadline as "1".
  w.Schedule(50, [&] { fired.push_back(5); });

  w.Advance(1009);
  EXPECT_TRUE(fired.empty());
  w.Advance(1010);  // Deadline is inclusive.
  EXPECT_EQ(fired, (std::vector<int>{1, 11}));
  w.Advance(1030);
  EXPECT_EQ(fired, (std::vector<int>{1, 11, 2, 3}));
  EXPECT_EQ(w.size(), 1u);
  w.Advance(2000);
  EXPECT_EQ(fired, (std::vector<int>{1, 11, 2, 3, 5}));
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheelTest, TimeDoesNotGoBackwards) {
  TimerWheel w(100);
  w.Advance(50);
  EXPECT_EQ(w.now_ms(), 100);
  bool fired = false;
  w.Schedule(10, [&] { fired = true; });
  EXPECT_EQ(w.NextDeadlineMs(), 110);
  w.Advance(109);
  EXPECT_FALSE(fired);
  w.Advance(110);
  EXPECT_TRUE(fired);
}

TEST(TimerWheelTest, NegativeDelayIsDueNow) {
  TimerWheel w(100);
  bool fired = false;
  w.Schedule(-5, [&] { fired = true; });
  EXPECT_EQ(w.NextDeadlineMs(), 100);
  w.Advance(100);
  EXPECT_TRUE(fired);
}

TEST(TimerWheelTest, Cancel) {
  TimerWheel w(0);
  int fired = 0;
  auto a = w.Schedule(10, [&] { fired += 1; });
  auto b = w.Schedule(20, [&] { fired += 10; });
  EXPECT_TRUE(w.Cancel(a));
  EXPECT_FALSE(w.Cancel(a));  // Already cancelled.
  EXPECT_FALSE(w.Cancel(0));
  EXPECT_FALSE(w.Cancel(12345));  // Never issued.
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.NextDeadlineMs(), 20);  // Dead top pruned.
  w.Advance(100);
  EXPECT_EQ(fired, 10);
  EXPECT_FALSE(w.Cancel(b));  // Already fired.
  EXPECT_EQ(w.NextDeadlineMs(), std::nullopt);
}

TEST(TimerWheelTest, CancelDestroysCallback) {
  TimerWheel w(0);
  auto tracker = std::make_shared<int>(0);
  auto id = w.Schedule(10, [t = tracker] {});
  EXPECT_EQ(tracker.use_count(), 2);
  w.Cancel(id);
  EXPECT_EQ(tracker.use_count(), 1);
}

TEST(TimerWheelTest, NextDeadline) {
  TimerWheel w(0);
  EXPECT_EQ(w.NextDeadlineMs(), std::nullopt);
  auto a = w.Schedule(50, [] {});
  w.Schedule(70, [] {});
  EXPECT_EQ(w.NextDeadlineMs(), 50);
  w.Schedule(5, [] {});
  EXPECT_EQ(w.NextDeadlineMs(), 5);
  w.Advance(5);
  EXPECT_EQ(w.NextDeadlineMs(), 50);
  w.Cancel(a);
  EXPECT_EQ(w.NextDeadlineMs(), 70);
}

TEST(TimerWheelTest, CallbackCanRescheduleItself) {
  TimerWheel w(0);
  std::vector<int64_t> fired_at;
  std::function<void()> keepalive;
  keepalive = [&] {
    fired_at.push_back(w.now_ms());
    if (fired_at.size() < 3) w.Schedule(100, [&] { keepalive(); });
  };
  w.Schedule(100, [&] { keepalive(); });
  for (int64_t t = 0; t <= 1000; t += 50) w.Advance(t);
  EXPECT_EQ(fired_at, (std::vector<int64_t>{100, 200, 300}));
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheelTest, ZeroDelayFromCallbackRunsOnNextAdvance) {
  // Guards against livelock: a callback re-arming with delay 0 must not run
  // again inside the same Advance().
  TimerWheel w(0);
  int runs = 0;
  std::function<void()> again = [&] {
    ++runs;
    w.Schedule(0, again);
  };
  w.Schedule(0, again);
  w.Advance(0);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.NextDeadlineMs(), 0);
  w.Advance(0);
  EXPECT_EQ(runs, 2);
}

TEST(TimerWheelTest, DueTimerScheduledFromCallbackCanBeCancelled) {
  TimerWheel w(0);
  bool inner_fired = false;
  TimerWheel::TimerId inner = 0;
  w.Schedule(0, [&] {
    inner = w.Schedule(0, [&] { inner_fired = true; });
    EXPECT_EQ(w.NextDeadlineMs(), 0);  // Visible while deferred.
  });
  w.Advance(0);
  EXPECT_TRUE(w.Cancel(inner));
  w.Advance(10);
  EXPECT_FALSE(inner_fired);
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheelTest, CallbackCancelsOthersAndItself) {
  TimerWheel w(0);
  std::vector<int> fired;
  TimerWheel::TimerId self = 0, later = 0, same_time = 0;
  self = w.Schedule(10, [&] {
    fired.push_back(1);
    EXPECT_FALSE(w.Cancel(self));  // Firing counts as fired.
    EXPECT_TRUE(w.Cancel(later));
    EXPECT_TRUE(w.Cancel(same_time));
  });
  same_time = w.Schedule(10, [&] { fired.push_back(2); });
  later = w.Schedule(20, [&] { fired.push_back(3); });
  w.Schedule(30, [&] { fired.push_back(4); });
  w.Advance(100);
  EXPECT_EQ(fired, (std::vector<int>{1, 4}));
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheelTest, ScheduleFromCallbackWithLaterDeadlineFiresSameAdvance) {
  TimerWheel w(0);
  std::vector<int> fired;
  w.Schedule(10, [&] {
    fired.push_back(1);
    w.Schedule(5, [&] { fired.push_back(2); });  // Deadline 105 <= 200.
  });
  w.Advance(100);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  EXPECT_EQ(w.NextDeadlineMs(), 105);
  w.Advance(200);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

TEST(TimerWheelTest, HundredThousandTimersFireInOrder) {
  constexpr int kTimers = 100000;
  TimerWheel w(0);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> delay(0, 1000000);
  std::vector<TimerWheel::TimerId> ids;
  ids.reserve(kTimers);
  int64_t last_fired_at = -1;
  int64_t fired = 0;
  bool order_ok = true;
  for (int i = 0; i < kTimers; ++i) {
    const int64_t deadline = delay(rng);
    ids.push_back(w.Schedule(deadline, [&, deadline] {
      if (deadline < last_fired_at) order_ok = false;
      last_fired_at = deadline;
      ++fired;
    }));
  }
  EXPECT_EQ(w.size(), static_cast<size_t>(kTimers));
  // Cancel every third timer.
  int cancelled = 0;
  for (size_t i = 0; i < ids.size(); i += 3) {
    ASSERT_TRUE(w.Cancel(ids[i]));
    ++cancelled;
  }
  EXPECT_EQ(w.size(), static_cast<size_t>(kTimers - cancelled));
  for (int64_t t = 0; t <= 1000000; t += 997) w.Advance(t);
  w.Advance(1000000);
  EXPECT_TRUE(order_ok);
  EXPECT_EQ(fired, kTimers - cancelled);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.NextDeadlineMs(), std::nullopt);
}

TEST(TimerWheelTest, CancelChurnDoesNotAccumulate) {
  // The idle-timeout pattern: cancel and re-arm on every command. With lazy
  // deletion, dead entries must be compacted away instead of piling up.
  TimerWheel w(0);
  std::vector<TimerWheel::TimerId> ids(1000);
  int fired = 0;
  for (auto& id : ids) id = w.Schedule(1000000, [&] { ++fired; });
  for (int round = 0; round < 1000; ++round) {
    for (auto& id : ids) {
      ASSERT_TRUE(w.Cancel(id));
      id = w.Schedule(1000000 + round, [&] { ++fired; });
      ASSERT_LE(w.EntryCountForTesting(), 2 * w.size() + 64);
    }
  }
  EXPECT_EQ(w.size(), 1000u);
  w.Advance(3000000);
  EXPECT_EQ(fired, 1000);
}

// A freed slot is reused by the next timer; the old id must not reach it.
TEST(TimerWheelTest, StaleIdDoesNotTouchTheTimerThatReusedItsSlot) {
  TimerWheel w(0);
  int first = 0, second = 0;
  const TimerWheel::TimerId old_id = w.Schedule(10, [&] { ++first; });
  ASSERT_TRUE(w.Cancel(old_id));
  const TimerWheel::TimerId new_id = w.Schedule(10, [&] { ++second; });
  EXPECT_NE(new_id, old_id);
  EXPECT_FALSE(w.Cancel(old_id));  // already cancelled: not the new timer
  EXPECT_EQ(w.size(), 1u);
  w.Advance(10);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  EXPECT_FALSE(w.Cancel(new_id));  // fired
  // An id that was fired, whose slot is reused, stays dead too.
  const TimerWheel::TimerId third_id = w.Schedule(5, [&] { ++first; });
  EXPECT_FALSE(w.Cancel(new_id));
  EXPECT_TRUE(w.Cancel(third_id));
  EXPECT_FALSE(w.Cancel(0));
  EXPECT_FALSE(w.Cancel(~0ull));
}

// A callback's destructor may schedule (growing the slab) while Cancel runs.
TEST(TimerWheelTest, DestructorThatSchedulesDuringCancelIsSafe) {
  TimerWheel w(0);
  int fired = 0;
  struct OnDestroy {
    TimerWheel* w;
    int* fired;
    bool armed = true;
    OnDestroy(TimerWheel* w, int* fired) : w(w), fired(fired) {}
    OnDestroy(OnDestroy&& o) noexcept : w(o.w), fired(o.fired), armed(std::exchange(o.armed, false)) {}
    ~OnDestroy() {
      if (!armed) return;
      for (int i = 0; i < 100; ++i) w->Schedule(1, [f = fired] { ++*f; });
    }
    void operator()() {}
  };
  const TimerWheel::TimerId id = w.Schedule(50, OnDestroy(&w, &fired));
  ASSERT_TRUE(w.Cancel(id));
  EXPECT_EQ(w.size(), 100u);
  w.Advance(1);
  EXPECT_EQ(fired, 100);
}

TEST(TimerWheelTest, MonotonicNowMsAdvances) {
  const int64_t a = MonotonicNowMs();
  const int64_t b = MonotonicNowMs();
  EXPECT_GT(a, 0);
  EXPECT_GE(b, a);
}

}  // namespace
}  // namespace pimap
