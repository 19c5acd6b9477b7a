// Shard event loop, inbox, hand-over and graceful stop.
#include "core/engine/shard.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/base/log.h"
#include "core/engine/shard_set.h"

namespace pimap::engine {

namespace {
constexpr size_t kInboxCapacity = 65536;
constexpr int64_t kMaxWaitMs = 1000;
}  // namespace

Shard::Shard(int id, ShardSet* set, const RingOptions& ring_options)
    : id_(id), set_(set), ring_options_(ring_options), inbox_(kInboxCapacity) {}

Shard::~Shard() {
  if (inbox_fd_ >= 0) close(inbox_fd_);
}

int Shard::count() const { return set_->count(); }

absl::Status Shard::InitOnThread() {
  timers_ = std::make_unique<TimerWheel>(MonotonicNowMs());
  absl::Status status = ring_.Init(ring_options_);
  if (!status.ok()) return status;
  ring_.SetTaggedHandler(
      [this](uint64_t user_data, int res) { OnTagged(user_data, res); });
  inbox_fd_ = eventfd(0, EFD_CLOEXEC);
  if (inbox_fd_ < 0) return absl::ErrnoToStatus(errno, "eventfd");
  ArmInbox();
  return absl::OkStatus();
}

bool Shard::Post(Task task) {
  if (!inbox_.TryPush(std::move(task))) return false;
  const uint64_t one = 1;
  // The eventfd counter coalesces wake-ups: many posts, one read on the shard.
  ssize_t ignored = write(inbox_fd_, &one, sizeof(one));
  (void)ignored;
  return true;
}

void Shard::ArmInbox() {
  io_uring_sqe* sqe = ring_.GetSqe();
  io_uring_prep_read(sqe, inbox_fd_, &inbox_value_, sizeof(inbox_value_), 0);
  io_uring_sqe_set_data64(sqe, CompletionData(&inbox_op_));
}

void Shard::OnInboxWake(const io_uring_cqe& cqe) {
  DrainInbox();
  ArmInbox();
}

void Shard::DrainInbox() {
  while (std::optional<Task> task = inbox_.TryPop()) (*task)(*this);
}

// A descriptor handed over by another shard: user_data is the Handoff pointer
// with the tag bit set, res the slot the kernel allocated in our table.
void Shard::OnTagged(uint64_t user_data, int res) {
  std::unique_ptr<Handoff> payload(
      reinterpret_cast<Handoff*>(user_data & ~Ring::kTaggedBit));
  counters_.handovers_in.fetch_add(1, std::memory_order_relaxed);
  payload.release()->Arrive(*this, res);  // Arrive takes ownership of itself
}

namespace {
// Source-side completion of a hand-over message.
class HandOverOp final : public Completion {
 public:
  HandOverOp(Shard* shard, int slot, Handoff* payload)
      : shard_(shard), slot_(slot), payload_(payload) {}
  void OnComplete(const io_uring_cqe& cqe) override {
    if (cqe.res < 0) {
      payload_->Failed(*shard_, slot_, -cqe.res);  // Failed owns the payload
    } else {
      // The target has its own reference now; drop ours.
      io_uring_sqe* sqe = shard_->ring().GetSqe();
      io_uring_prep_close_direct(sqe, slot_);
      io_uring_sqe_set_data64(sqe, 0);
      shard_->counters().handovers_out.fetch_add(1, std::memory_order_relaxed);
    }
    shard_->ReleaseLive();
    delete this;
  }

 private:
  Shard* shard_;
  int slot_;
  Handoff* payload_;
};
}  // namespace

void Shard::HandOver(int slot, int target, std::unique_ptr<Handoff> payload) {
  Handoff* raw = payload.release();
  auto* op = new HandOverOp(this, slot, raw);
  RetainLive();
  io_uring_sqe* sqe = ring_.GetSqe();
  // liburing 2.3 has no io_uring_prep_msg_ring_fd(): fill the SQE by hand.
  io_uring_prep_msg_ring(sqe, set_->ring_fd(target), 0,
                         reinterpret_cast<uint64_t>(raw) | Ring::kTaggedBit, 0);
  sqe->addr = IORING_MSG_SEND_FD;
  sqe->addr3 = static_cast<uint64_t>(slot);
  sqe->file_index = IORING_FILE_INDEX_ALLOC;
  sqe->len = 0;  // must be 0 for SEND_FD, else EINVAL
  io_uring_sqe_set_data64(sqe, CompletionData(op));
}

void Shard::AddStopHook(absl::AnyInvocable<void()> hook) {
  stop_hooks_.push_back(std::move(hook));
}

void Shard::BeginStop() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ms_ = MonotonicNowMs() + set_->grace_ms();
  PIMAP_LOG(INFO) << "stopping: " << live_ << " live objects";
  auto hooks = std::move(stop_hooks_);
  for (auto& hook : hooks) hook();
}

void Shard::Loop() {
  for (;;) {
    const int64_t now = MonotonicNowMs();
    if (stopping_ && (live_ <= 0 || now >= stop_deadline_ms_)) break;
    int64_t wait = kMaxWaitMs;
    if (std::optional<int64_t> next = timers_->NextDeadlineMs()) {
      wait = std::clamp<int64_t>(*next - now, 0, kMaxWaitMs);
    }
    if (stopping_) wait = std::min<int64_t>(wait, 50);
    ring_.WaitAndDispatch(wait);
    ring_.RunBeforeDispatch();
    timers_->Advance(MonotonicNowMs());
  }
  if (live_ > 0) {
    PIMAP_LOG(WARNING) << "stop grace period over with " << live_
                       << " objects still open";
  }
}

}  // namespace pimap::engine
