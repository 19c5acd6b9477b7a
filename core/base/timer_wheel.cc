// TimerWheel implementation: lazy-deletion min-heap (see timer_wheel.h).
#include "core/base/timer_wheel.h"

#include <time.h>

#include <algorithm>
#include <utility>

namespace pimap {

int64_t MonotonicNowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

TimerWheel::TimerWheel(int64_t now_ms) : now_ms_(now_ms) {}

TimerWheel::TimerId TimerWheel::Schedule(int64_t delay_ms, Callback cb) {
  if (delay_ms < 0) delay_ms = 0;
  uint32_t index;
  if (free_slots_.empty()) {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    index = free_slots_.back();
    free_slots_.pop_back();
  }
  Slot& slot = slots_[index];
  ++slot.generation;  // ids of the slot's earlier timers stop matching
  slot.callback = std::move(cb);
  slot.live = true;
  ++live_count_;
  const TimerId id =
      (static_cast<uint64_t>(slot.generation) << 32) | (index + 1);
  const int64_t deadline = now_ms_ + delay_ms;
  if (advancing_ && deadline <= now_ms_) {
    deferred_.push_back(Entry{deadline, id});
  } else {
    heap_.push_back(Entry{deadline, id});
    std::push_heap(heap_.begin(), heap_.end(), Later());
  }
  return id;
}

TimerWheel::Callback TimerWheel::Take(TimerId id) {
  Slot& slot = slots_[(id & 0xffffffffu) - 1];
  Callback callback = std::move(slot.callback);
  slot.callback = nullptr;
  slot.live = false;
  free_slots_.push_back(static_cast<uint32_t>((id & 0xffffffffu) - 1));
  --live_count_;
  return callback;
}

bool TimerWheel::Cancel(TimerId id) {
  if (!IsLive(id)) return false;
  // The slot is free before the callback is destroyed, so that a destructor
  // that re-enters the wheel (a captured object cancelling another timer, or
  // scheduling one, which may grow slots_) sees a consistent wheel.
  Callback doomed = Take(id);
  PruneTop();
  MaybeCompact();
  return true;
}

void TimerWheel::Advance(int64_t now_ms) {
  if (advancing_) return;
  if (now_ms > now_ms_) now_ms_ = now_ms;
  advancing_ = true;
  while (!heap_.empty() && heap_.front().deadline <= now_ms_) {
    const TimerId id = heap_.front().id;
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    heap_.pop_back();
    if (!IsLive(id)) continue;  // Cancelled; lazily deleted here.
    // Freed before running so the callback sees itself as fired (Cancel of
    // its own id returns false) and may freely mutate the wheel.
    Callback cb = Take(id);
    cb();
  }
  advancing_ = false;
  for (const Entry& e : deferred_) {
    if (!IsLive(e.id)) continue;
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), Later());
  }
  deferred_.clear();
  PruneTop();
  MaybeCompact();
}

std::optional<int64_t> TimerWheel::NextDeadlineMs() const {
  std::optional<int64_t> best;
  // PruneTop() keeps the heap top live outside Advance(); inside Advance()
  // the top may be dead for a moment, which only makes the answer early
  // (never late), and that is harmless for a wait timeout.
  if (!heap_.empty()) best = heap_.front().deadline;
  // Only non-empty while a callback is running.
  for (const Entry& e : deferred_) {
    if (IsLive(e.id) && (!best || e.deadline < *best)) best = e.deadline;
  }
  return best;
}

void TimerWheel::PruneTop() {
  while (!heap_.empty() && !IsLive(heap_.front().id)) {
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    heap_.pop_back();
  }
}

void TimerWheel::MaybeCompact() {
  // The small floor avoids rebuilding a tiny heap on every cancel; the
  // "dead > live" rule keeps the rebuild cost amortised O(1) per Cancel()
  // and bounds memory at about twice the live count.
  constexpr size_t kMinDeadToCompact = 64;
  const size_t entries = heap_.size() + deferred_.size();
  const size_t dead = entries - std::min(entries, live_count_);
  if (dead <= live_count_ || dead < kMinDeadToCompact) return;
  auto is_dead = [this](const Entry& e) { return !IsLive(e.id); };
  heap_.erase(std::remove_if(heap_.begin(), heap_.end(), is_dead), heap_.end());
  deferred_.erase(std::remove_if(deferred_.begin(), deferred_.end(), is_dead),
                  deferred_.end());
  std::make_heap(heap_.begin(), heap_.end(), Later());
  // Release the memory of a heap that was much larger than it is now.
  if (heap_.capacity() > 4 * heap_.size() + 1024) heap_.shrink_to_fit();
}

}  // namespace pimap
