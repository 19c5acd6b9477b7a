// A shard: one pinned thread with its own io_uring, timers, counters and inbox.
// Everything a shard owns is touched only by its thread; other threads reach it only
// through Post() (a bounded lock-free MPSC queue plus an eventfd wake-up) or a
// descriptor hand-over (handoff.h).
#ifndef PIMAP_CORE_ENGINE_SHARD_H_
#define PIMAP_CORE_ENGINE_SHARD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "core/base/mpsc_queue.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/engine/completion.h"
#include "core/engine/handoff.h"
#include "core/engine/ring.h"
#include "core/engine/service_registry.h"

namespace pimap::engine {

class ShardSet;

class Shard {
 public:
  using Task = absl::AnyInvocable<void(Shard&)>;

  Shard(int id, ShardSet* set, const RingOptions& ring_options);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  int id() const { return id_; }
  int count() const;
  Ring& ring() { return ring_; }
  TimerWheel& timers() { return *timers_; }
  ShardCounters& counters() { return counters_; }
  const ShardCounters& counters() const { return counters_; }
  ShardSet& set() { return *set_; }
  // This shard's services (shard thread only).
  ServiceRegistry& services() { return services_; }

  // Any thread: runs `task` on this shard's thread. False when the inbox is full.
  bool Post(Task task);

  // Shard thread: moves direct descriptor `slot` and `payload` to shard `target`.
  void HandOver(int slot, int target, std::unique_ptr<Handoff> payload);

  // Shard thread: `hook` runs once when the shard starts stopping (stop accepting,
  // say goodbye to clients, close upstreams).
  void AddStopHook(absl::AnyInvocable<void()> hook);
  bool stopping() const { return stopping_; }

  // Objects that must finish before the shard may exit (sockets, listeners).
  void RetainLive() { ++live_; }
  void ReleaseLive() { --live_; }

 private:
  friend class ShardSet;
  absl::Status InitOnThread();
  void Loop();
  void BeginStop();
  void ArmInbox();
  void OnInboxWake(const io_uring_cqe& cqe);
  void DrainInbox();
  void OnTagged(uint64_t user_data, int res);

  const int id_;
  ShardSet* const set_;
  const RingOptions ring_options_;
  Ring ring_;
  std::unique_ptr<TimerWheel> timers_;
  ShardCounters counters_;
  ServiceRegistry services_;
  MpscQueue<Task> inbox_;
  int inbox_fd_ = -1;
  uint64_t inbox_value_ = 0;
  MemberCompletion<Shard, &Shard::OnInboxWake> inbox_op_{this};
  std::vector<absl::AnyInvocable<void()>> stop_hooks_;
  bool stopping_ = false;
  int64_t stop_deadline_ms_ = 0;
  int64_t live_ = 0;
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_SHARD_H_
