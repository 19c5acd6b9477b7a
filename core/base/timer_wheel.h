// TimerWheel: single-threaded timers for one shard's event loop (idle
// timeouts, keepalives, connect timeouts), plus MonotonicNowMs().
//
// Despite the name this is a binary min-heap keyed by (deadline, id) with lazy
// deletion: live timers' callbacks sit in a slab of slots (an id is a slot
// index plus the slot's generation, so an old id never matches a reused
// slot); Cancel() just frees the slot and leaves a dead heap entry behind that
// is skipped when it reaches the top. A slot costs 40 bytes, against ~60-90
// for a hash map entry at its usual load, and every idle connection holds a
// timer or two. Every operation is O(log n) amortised. Dead heap entries are
// compacted away once they outnumber live ones, so the heap stays proportional
// to the number of live timers even under a cancel-heavy load (the common
// case: most idle timeouts are cancelled and re-armed); the slab keeps the
// size of the highest number of timers live at once.
//
// Hazards:
//  * NOT thread-safe. Only the owning shard thread may touch it.
//  * Callbacks run inside Advance(). They may Schedule() and Cancel() freely
//    (including cancelling themselves, which returns false because a timer
//    counts as fired as soon as its callback starts). A timer scheduled from
//    a callback never fires in the same Advance() call, even with delay 0:
//    this prevents a callback that re-arms itself with delay 0 from
//    livelocking the loop. It fires on the next Advance().
//  * Calling Advance() from inside a callback is a no-op.
#ifndef PIMAP_CORE_BASE_TIMER_WHEEL_H_
#define PIMAP_CORE_BASE_TIMER_WHEEL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace pimap {

// CLOCK_MONOTONIC in milliseconds. Not wall-clock time: immune to NTP steps.
int64_t MonotonicNowMs();

class TimerWheel {
 public:
  using TimerId = uint64_t;  // 0 is never a valid id.
  using Callback = absl::AnyInvocable<void()>;

  explicit TimerWheel(int64_t now_ms);

  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Fires `cb` once, at the first Advance() whose now_ms >= (current time +
  // delay_ms). Negative delays are treated as 0. "Current time" is the
  // largest now_ms passed to the constructor or Advance() so far.
  TimerId Schedule(int64_t delay_ms, Callback cb);

  // Returns false if `id` already fired (or is firing), was cancelled, or was
  // never issued. The callback is destroyed before Cancel() returns.
  bool Cancel(TimerId id);

  // Fires every timer with deadline <= now_ms in (deadline, schedule order)
  // order. Time never goes backwards: a smaller now_ms is treated as the
  // current time.
  void Advance(int64_t now_ms);

  // Earliest deadline among live timers, or nullopt when there are none.
  // Suitable for computing the event loop's wait timeout.
  std::optional<int64_t> NextDeadlineMs() const;

  // Number of live (scheduled, not yet fired or cancelled) timers.
  size_t size() const { return live_count_; }

  int64_t now_ms() const { return now_ms_; }

  // Heap entries including lazily-deleted ones; for tests of the memory
  // bound (about 2 * size() + 64).
  size_t EntryCountForTesting() const {
    return heap_.size() + deferred_.size();
  }

 private:
  struct Entry {
    int64_t deadline;
    TimerId id;
  };
  // std::*_heap build a max-heap; "greater" makes it a min-heap.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      if (a.deadline != b.deadline) return a.deadline > b.deadline;
      return a.id > b.id;
    }
  };

  struct Slot {
    Callback callback;
    uint32_t generation = 0;
    bool live = false;
  };
  bool IsLive(TimerId id) const {
    const uint64_t index = (id & 0xffffffffu) - 1;  // ids start at index + 1
    return index < slots_.size() && slots_[index].live &&
           slots_[index].generation == static_cast<uint32_t>(id >> 32);
  }
  // Frees the slot of a live id and returns its callback (to run or drop).
  Callback Take(TimerId id);
  // Pops dead entries off the heap top so that heap_.front(), if any, is live.
  void PruneTop();
  // Drops all dead entries when they outnumber live ones.
  void MaybeCompact();

  int64_t now_ms_;
  bool advancing_ = false;
  std::vector<Entry> heap_;
  // Timers scheduled during Advance() that are already due; merged into the
  // heap when Advance() finishes (see the livelock note above).
  std::vector<Entry> deferred_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  size_t live_count_ = 0;
};

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_TIMER_WHEEL_H_
