// MpscQueue: a bounded, lock-free multi-producer single-consumer queue used to
// pass work (closures, handed-over connections) into a shard's event loop.
//
// Design: Dmitry Vyukov's bounded ring buffer. Each cell carries a sequence
// number that tells producers and the consumer whose turn the cell is, so no
// mutex is needed and nothing is allocated after construction. Producers claim
// a slot with a CAS on `tail_`; the single consumer owns `head_` outright and
// only needs plain (relaxed) updates of it.
//
// Hazards:
//  * TryPop() must only ever be called from ONE thread (the shard's loop).
//    Calling it concurrently from two threads is a data race.
//  * TryPush() returns false when the queue is full; the value is then NOT
//    moved from, so the caller can retry, or drop it and report an error.
//  * A producer that is pre-empted between claiming a slot and publishing it
//    makes TryPop() report "empty" for that slot (and for everything behind it)
//    until the producer resumes. That is inherent to the design and harmless
//    for an event loop that polls again on its next wake-up.
#ifndef PIMAP_CORE_BASE_MPSC_QUEUE_H_
#define PIMAP_CORE_BASE_MPSC_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace pimap {

// Fixed rather than std::hardware_destructive_interference_size: g++ warns
// that the latter is ABI-unstable (-Winterference-size), and 64 is right for
// x86-64 and most arm64 parts.
inline constexpr size_t kCacheLineSize = 64;

template <typename T>
class MpscQueue {
 public:
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "MpscQueue moves elements in and out of the ring; moves must "
                "not throw");

  // `capacity` is rounded up to a power of two (minimum 2) so that the slot
  // index is a mask instead of a division.
  explicit MpscQueue(size_t capacity)
      : mask_(RoundUpPow2(capacity) - 1),
        cells_(std::make_unique<Cell[]>(mask_ + 1)) {
    for (size_t i = 0; i <= mask_; ++i) {
      cells_[i].seq.store(i, std::memory_order_relaxed);
    }
  }

  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Destroys any elements still queued. No producer or consumer may be
  // running at this point.
  ~MpscQueue() {
    while (TryPop().has_value()) {
    }
  }

  // Any thread. Returns false (leaving `value` untouched) when full.
  bool TryPush(T&& value) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      const size_t seq = cell.seq.load(std::memory_order_acquire);
      const intptr_t diff =
          static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        // The cell is free for lap `pos`; try to claim it.
        if (tail_.compare_exchange_weak(pos, pos + 1,
                                        std::memory_order_relaxed)) {
          ::new (static_cast<void*>(cell.storage)) T(std::move(value));
          // Publish: the consumer waits for seq == pos + 1.
          cell.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
        // CAS failure reloaded `pos`; loop.
      } else if (diff < 0) {
        // The consumer has not yet freed this cell from the previous lap.
        return false;
      } else {
        // Another producer claimed `pos` already; catch up.
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // The single consumer thread only. Returns nullopt when empty (or when the
  // next slot is claimed but not yet published; see the header comment).
  std::optional<T> TryPop() {
    const size_t pos = head_.load(std::memory_order_relaxed);
    Cell& cell = cells_[pos & mask_];
    const size_t seq = cell.seq.load(std::memory_order_acquire);
    if (seq != pos + 1) return std::nullopt;
    T* slot = std::launder(reinterpret_cast<T*>(cell.storage));
    std::optional<T> out(std::move(*slot));
    slot->~T();
    // Relaxed is enough: only this thread writes head_, and ApproxSize() only
    // needs an estimate.
    head_.store(pos + 1, std::memory_order_relaxed);
    // Hand the cell to producers of the next lap.
    cell.seq.store(pos + mask_ + 1, std::memory_order_release);
    return out;
  }

  size_t capacity() const { return mask_ + 1; }

  // Racy estimate, for metrics and back-pressure heuristics only.
  size_t ApproxSize() const {
    const size_t head = head_.load(std::memory_order_relaxed);
    const size_t tail = tail_.load(std::memory_order_relaxed);
    // tail may be read "behind" head under races; clamp to [0, capacity].
    if (tail <= head) return 0;
    const size_t n = tail - head;
    return n > capacity() ? capacity() : n;
  }

 private:
  struct Cell {
    std::atomic<size_t> seq{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };

  static size_t RoundUpPow2(size_t n) {
    size_t p = 2;
    while (p < n) p <<= 1;
    return p;
  }

  // Read-only after construction; shared by everybody.
  const size_t mask_;
  const std::unique_ptr<Cell[]> cells_;
  // Producers hammer tail_, the consumer owns head_: keep them on separate
  // cache lines (and away from mask_/cells_) to avoid false sharing.
  alignas(kCacheLineSize) std::atomic<size_t> tail_{0};
  // alignas on a member also pads the object to a multiple of 64 bytes, so
  // head_ cannot share a line with whatever follows the queue in memory.
  alignas(kCacheLineSize) std::atomic<size_t> head_{0};
};

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_MPSC_QUEUE_H_
