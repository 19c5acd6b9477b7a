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
  const TimerId id = next_id_++;
  const int64_t deadline = now_ms_ + delay_ms;
  live_.emplace(id, std::move(cb));
  if (advancing_ && deadline <= now_ms_) {
    deferred_.push_back(Entry{deadline, id});
  } else {
    heap_.push_back(Entry{deadline, id});
    std::push_heap(heap_.begin(), heap_.end(), Later());
  }
  return id;
}

bool TimerWheel::Cancel(TimerId id) {
  auto it = live_.find(id);
  if (it == live_.end()) return false;
  // Move the callback out before erasing so that a callback whose destructor
  // re-enters the wheel (e.g. a captured object cancelling another timer)
  // sees a consistent map.
  Callback doomed = std::move(it->second);
  live_.erase(it);
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
    auto it = live_.find(id);
    if (it == live_.end()) continue;  // Cancelled; lazily deleted here.
    // Erase before running so the callback sees itself as fired (Cancel of
    // its own id returns false) and may freely mutate the wheel.
    Callback cb = std::move(it->second);
    live_.erase(it);
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
  const size_t dead = entries - std::min(entries, live_.size());
  if (dead <= live_.size() || dead < kMinDeadToCompact) return;
  auto is_dead = [this](const Entry& e) { return !IsLive(e.id); };
  heap_.erase(std::remove_if(heap_.begin(), heap_.end(), is_dead), heap_.end());
  deferred_.erase(std::remove_if(deferred_.begin(), deferred_.end(), is_dead),
                  deferred_.end());
  std::make_heap(heap_.begin(), heap_.end(), Later());
  // Release the memory of a heap that was much larger than it is now.
  if (heap_.capacity() > 4 * heap_.size() + 1024) heap_.shrink_to_fit();
}

}  // namespace pimap
