// The set of shards of one process: starts one pinned thread per shard, runs each
// shard's set-up on its own thread (io_uring SINGLE_ISSUER wants the creating thread
// to be the submitting one), lets all of them know each other's rings before any
// traffic flows, and stops them gracefully.
#ifndef PIMAP_CORE_ENGINE_SHARD_SET_H_
#define PIMAP_CORE_ENGINE_SHARD_SET_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/engine/shard.h"

namespace pimap::engine {

class ShardSet {
 public:
  // Runs on each shard's thread after its ring exists and before its loop starts.
  using Setup = absl::AnyInvocable<absl::Status(Shard&) const>;

  ShardSet(int count, const RingOptions& ring_options);
  ~ShardSet();

  // Starts the threads and waits until every shard has run `setup`. On failure the
  // shards that started are stopped again and the first error is returned.
  absl::Status Start(Setup setup);
  // Any thread: begins a graceful stop of every shard (each gets `grace_ms` to let
  // its connections say goodbye), and waits for the threads to end.
  void StopAndJoin(int64_t grace_ms);

  int count() const { return static_cast<int>(shards_.size()); }
  Shard& shard(int i) { return *shards_[i]; }
  const Shard& shard(int i) const { return *shards_[i]; }
  int ring_fd(int i) const { return ring_fds_[i].load(std::memory_order_acquire); }
  int64_t grace_ms() const { return grace_ms_.load(std::memory_order_relaxed); }

 private:
  void ThreadMain(int index, const Setup* setup);

  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<std::atomic<int>[]> ring_fds_;
  std::atomic<int64_t> grace_ms_{5000};

  absl::Mutex mu_;  // start-up only, never on the data path
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
  bool go_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_SHARD_SET_H_
