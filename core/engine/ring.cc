// io_uring set-up and the completion dispatch loop of one shard.
#include "core/engine/ring.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/engine/completion.h"

namespace pimap::engine {

namespace {
constexpr uint16_t kBufferGroup = 1;
// Real descriptors the process still needs (listeners, eventfds, logs, rings).
constexpr unsigned kRealFdReserve = 512;
}  // namespace

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

absl::Status Ring::Init(const RingOptions& options) {
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  // Without a taskrun flag throughput halves on these kernels; DEFER_TASKRUN
  // also keeps completion work on our thread, at the points where we wait.
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_SUBMIT_ALL;
  int rc = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
  if (rc == -EINVAL) {
    std::memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_COOP_TASKRUN;
    rc = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
  }
  if (rc < 0) return absl::ErrnoToStatus(-rc, "io_uring_queue_init");
  initialized_ = true;

  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  unsigned cap = limit.rlim_cur > kRealFdReserve * 2
                     ? static_cast<unsigned>(limit.rlim_cur) - kRealFdReserve
                     : static_cast<unsigned>(limit.rlim_cur) / 2;
  file_table_size_ = std::min(options.file_table_size, cap);
  rc = io_uring_register_files_sparse(&ring_, file_table_size_);
  if (rc < 0) return absl::ErrnoToStatus(-rc, "io_uring_register_files_sparse");
  io_uring_register_ring_fd(&ring_);  // best effort: saves an fdget per enter
  return buffers_.Init(&ring_, kBufferGroup, options.buffer_count,
                       options.buffer_size);
}

io_uring_sqe* Ring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Ring::CancelAndCloseDirect(int slot, Completion* done) {
  if (io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel_fd(
      sqe, slot, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
  sqe->flags |= IOSQE_IO_HARDLINK;
  io_uring_sqe_set_data64(sqe, CompletionData(done));
  sqe = GetSqe();
  io_uring_prep_close_direct(sqe, slot);
  io_uring_sqe_set_data64(sqe, CompletionData(done));
}

int Ring::WaitAndDispatch(int64_t timeout_ms) {
  __kernel_timespec ts;
  ts.tv_sec = timeout_ms / 1000;
  ts.tv_nsec = (timeout_ms % 1000) * 1000000;
  io_uring_cqe* cqe = nullptr;
  int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) return 0;
  if (before_dispatch_) before_dispatch_();
  int dispatched = 0;
  // Handlers may submit new SQEs while we walk the CQ; that is safe because
  // they only touch the SQ side. Advance after each CQE so that a handler that
  // waits (none do) would not see stale entries.
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(&ring_, cqe);
    ++dispatched;
    if (copy.user_data == 0) continue;
    if (copy.user_data & kTaggedBit) {
      if (tagged_handler_) tagged_handler_(copy.user_data, copy.res);
      continue;
    }
    reinterpret_cast<Completion*>(copy.user_data)->OnComplete(copy);
  }
  return dispatched;
}

}  // namespace pimap::engine
