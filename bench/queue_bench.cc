// pimap_queue_bench: micro-benchmarks of pimap::MpscQueue (core/base/mpsc_queue.h),
// the queue that carries tasks and handed-over connections into a shard's loop.
//
//  * BM_PushPop_*: one thread, TryPush then TryPop of the same element (the queue never
//    holds more than one): the uncontended cost of a round trip.
//  * BM_PushBatchPopBatch: one thread pushes `batch` elements, then pops them all (the
//    ring wraps; cells change hands between laps).
//  * BM_Mpsc/<producers>: `producers` threads push kItems elements each while the
//    benchmark thread is the single consumer; items/s is the consumer's pop rate. The
//    producers retry (with yield) when the queue is full; the consumer spins, then yields,
//    when it finds it empty. Real time, since several threads work per iteration.
//
// On a box with fewer cores than threads (e.g. 3 producers + 1 consumer on 2 vCPUs) the
// figures include scheduling: a producer pre-empted between claiming and publishing a
// cell stalls the consumer until it runs again (see the header's hazards).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/base/mpsc_queue.h"

namespace {

using pimap::MpscQueue;

// What shards really queue: a move-only closure (Shard::Task is an AnyInvocable).
using Closure = absl::AnyInvocable<void()>;

void BM_PushPop_U64(benchmark::State& state) {
  MpscQueue<uint64_t> q(1024);
  uint64_t v = 0;
  for (auto _ : state) {
    uint64_t x = v++;
    benchmark::DoNotOptimize(q.TryPush(std::move(x)));
    auto out = q.TryPop();
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PushPop_U64);

void BM_PushPop_Closure(benchmark::State& state) {
  MpscQueue<Closure> q(1024);
  int counter = 0;
  for (auto _ : state) {
    Closure c = [&counter] { ++counter; };
    benchmark::DoNotOptimize(q.TryPush(std::move(c)));
    auto out = q.TryPop();
    (*out)();
  }
  benchmark::DoNotOptimize(counter);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PushPop_Closure);

void BM_PushPop_UniquePtr(benchmark::State& state) {
  MpscQueue<std::unique_ptr<int>> q(1024);
  auto p = std::make_unique<int>(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(q.TryPush(std::move(p)));
    p = std::move(*q.TryPop());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PushPop_UniquePtr);

void BM_PushBatchPopBatch(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  MpscQueue<uint64_t> q(batch);
  for (auto _ : state) {
    for (uint64_t i = 0; i < batch; ++i) {
      uint64_t x = i;
      q.TryPush(std::move(x));
    }
    uint64_t sum = 0;
    while (auto v = q.TryPop()) sum += *v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}
BENCHMARK(BM_PushBatchPopBatch)->Arg(64)->Arg(4096)->Arg(65536);

constexpr int64_t kItems = 1 << 18;  // per producer per iteration

template <typename T, typename Make>
void RunMpsc(benchmark::State& state, Make make) {
  const int producers = static_cast<int>(state.range(0));
  const size_t capacity = static_cast<size_t>(state.range(1));
  MpscQueue<T> q(capacity);
  int64_t full_retries = 0, empty_polls = 0;
  for (auto _ : state) {
    std::atomic<bool> go{false};
    std::atomic<int64_t> retries{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&] {
        while (!go.load(std::memory_order_acquire)) {
        }
        int64_t r = 0;
        for (int64_t i = 0; i < kItems; ++i) {
          T v = make(i);
          while (!q.TryPush(std::move(v))) {
            ++r;
            std::this_thread::yield();
          }
        }
        retries.fetch_add(r, std::memory_order_relaxed);
      });
    }
    const int64_t total = kItems * producers;
    int64_t got = 0;
    int spins = 0;
    go.store(true, std::memory_order_release);
    while (got < total) {
      if (auto v = q.TryPop()) {
        benchmark::DoNotOptimize(v);
        ++got;
        spins = 0;
      } else {
        ++empty_polls;
        if (++spins > 64) std::this_thread::yield();
      }
    }
    for (auto& t : threads) t.join();
    full_retries += retries.load();
  }
  state.SetItemsProcessed(state.iterations() * kItems * producers);
  state.counters["full_retries_per_item"] = benchmark::Counter(
      static_cast<double>(full_retries) /
      static_cast<double>(state.iterations() * kItems * producers));
  state.counters["empty_polls_per_item"] = benchmark::Counter(
      static_cast<double>(empty_polls) /
      static_cast<double>(state.iterations() * kItems * producers));
}

void BM_Mpsc_U64(benchmark::State& state) {
  RunMpsc<uint64_t>(state, [](int64_t i) { return static_cast<uint64_t>(i); });
}
// {producers, capacity}; 65536 is the shard inbox's capacity (core/engine/shard.cc).
BENCHMARK(BM_Mpsc_U64)
    ->ArgsProduct({{1, 2, 3}, {1024, 65536}})
    ->ArgNames({"producers", "capacity"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Mpsc_Closure(benchmark::State& state) {
  RunMpsc<Closure>(state, [](int64_t i) { return Closure([i] { benchmark::DoNotOptimize(i); }); });
}
BENCHMARK(BM_Mpsc_Closure)
    ->ArgsProduct({{1, 2, 3}, {65536}})
    ->ArgNames({"producers", "capacity"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
