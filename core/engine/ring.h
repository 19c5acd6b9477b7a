// One shard's io_uring: set-up (SINGLE_ISSUER + DEFER_TASKRUN, a sparse table
// of direct descriptors, a provided-buffer ring), SQE acquisition and
// completion dispatch. Not thread-safe by design: only the shard thread that
// created it may touch it.
#ifndef PIMAP_CORE_ENGINE_RING_H_
#define PIMAP_CORE_ENGINE_RING_H_

#include <liburing.h>

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "core/engine/buffer_ring.h"
#include "core/engine/completion.h"

namespace pimap::engine {

struct RingOptions {
  unsigned sq_entries = 2048;
  // Direct descriptors: they do not count against RLIMIT_NOFILE, but one table
  // is capped at it, so the size is clamped to the limit minus a reserve for
  // real fds.
  unsigned file_table_size = 16000;
  // Receive buffers shared by every socket of the shard (power of two). The
  // kernel hands them out in ring order, so over time every buffer's first page
  // is touched: count x 4 KiB is resident whatever the load. 256 keeps that at
  // 1 MiB per shard; a buffer goes back as soon as its CQE is handled, and a
  // recv finding none (ENOBUFS) retries after 2 ms.
  unsigned buffer_count = 256;
  unsigned buffer_size = 16 * 1024;
};

class Ring {
 public:
  // user_data with this bit set is not a Completion* but a tagged pointer that
  // the owner decodes (used for descriptors handed over from another shard).
  static constexpr uint64_t kTaggedBit = 1;
  using TaggedHandler = absl::AnyInvocable<void(uint64_t user_data, int res)>;

  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  absl::Status Init(const RingOptions& options);
  void SetTaggedHandler(TaggedHandler handler) {
    tagged_handler_ = std::move(handler);
  }

  // Never returns null: when the SQ is full it submits first.
  io_uring_sqe* GetSqe();
  // Cancels every operation in flight on direct descriptor `slot`, then
  // closes it: two completions, both to `done`. Linked with HARDLINK: the
  // close must run even when the cancel finds nothing (-ENOENT), and not
  // first, or the cancel could no longer find the file by its slot; both go
  // in one submission (a full SQ submitted between them would cut the link).
  void CancelAndCloseDirect(int slot, Completion* done);
  // Submits, waits up to timeout_ms for at least one completion, dispatches all
  // that are ready. Returns the number dispatched.
  int WaitAndDispatch(int64_t timeout_ms);
  // Runs after every wait, before the completions it returned are dispatched:
  // the cluster fence (core/cluster/fence.h) must be checked there, because
  // a process stopped past its lease wakes with completions queued from
  // before, which must not reach users it may no longer own.
  void SetBeforeDispatch(absl::AnyInvocable<void()> hook) {
    before_dispatch_ = std::move(hook);
  }
  // The same check before the shard's timers run (they act on users too).
  void RunBeforeDispatch() {
    if (before_dispatch_) before_dispatch_();
  }

  io_uring* raw() { return &ring_; }
  int fd() const { return ring_.ring_fd; }
  BufferRing& buffers() { return buffers_; }
  unsigned file_table_size() const { return file_table_size_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
  unsigned file_table_size_ = 0;
  BufferRing buffers_;
  TaggedHandler tagged_handler_;
  absl::AnyInvocable<void()> before_dispatch_;
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_RING_H_
