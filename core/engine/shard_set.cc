// Shard threads: start-up barrier, CPU pinning, graceful stop.
#include "core/engine/shard_set.h"

#include <pthread.h>
#include <sched.h>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"

namespace pimap::engine {

ShardSet::ShardSet(int count, const RingOptions& ring_options)
    : ring_fds_(new std::atomic<int>[count]) {
  for (int i = 0; i < count; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, this, ring_options));
    ring_fds_[i].store(-1);
  }
}

ShardSet::~ShardSet() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

absl::Status ShardSet::Start(Setup setup) {
  for (int i = 0; i < count(); ++i) {
    threads_.emplace_back([this, i, &setup] { ThreadMain(i, &setup); });
  }
  absl::Status result;
  {
    absl::MutexLock lock(&mu_);
    auto all_ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ready_ == count();
    };
    mu_.Await(absl::Condition(&all_ready));
    result = first_error_;
    go_ = true;
  }
  if (!result.ok()) StopAndJoin(0);
  return result;
}

void ShardSet::ThreadMain(int index, const Setup* setup) {
  SetThreadShard(index);
  Shard& shard = *shards_[index];
  // Pin: a shard's caches and its ring's task work stay on one CPU.
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (cpus > 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(index % cpus, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  absl::Status status = shard.InitOnThread();
  if (status.ok()) {
    ring_fds_[index].store(shard.ring().fd(), std::memory_order_release);
    status = (*setup)(shard);
  }
  bool go;
  {
    absl::MutexLock lock(&mu_);
    if (!status.ok() && first_error_.ok()) {
      first_error_ = absl::Status(
          status.code(), absl::StrCat("shard ", index, ": ", status.message()));
    }
    ++ready_;
    auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return go_; };
    mu_.Await(absl::Condition(&released));
    go = first_error_.ok();
  }
  if (!go) return;
  shard.Loop();
  PIMAP_LOG(DEBUG) << "shard loop ended";
}

void ShardSet::StopAndJoin(int64_t grace_ms) {
  grace_ms_.store(grace_ms, std::memory_order_relaxed);
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    // A full inbox cannot happen at stop in practice; retry briefly if it does.
    while (!s->Post([](Shard& sh) { sh.BeginStop(); })) {
      std::this_thread::yield();
    }
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace pimap::engine
