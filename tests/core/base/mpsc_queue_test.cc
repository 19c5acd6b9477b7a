// Tests for MpscQueue: FIFO semantics, full/empty behaviour, move-only
// payloads, destruction of leftovers, and a multi-producer stress test.
#include "core/base/mpsc_queue.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

TEST(MpscQueueTest, CapacityRoundsUpToPowerOfTwo) {
  EXPECT_EQ(MpscQueue<int>(0).capacity(), 2u);
  EXPECT_EQ(MpscQueue<int>(1).capacity(), 2u);
  EXPECT_EQ(MpscQueue<int>(2).capacity(), 2u);
  EXPECT_EQ(MpscQueue<int>(3).capacity(), 4u);
  EXPECT_EQ(MpscQueue<int>(1000).capacity(), 1024u);
  EXPECT_EQ(MpscQueue<int>(1024).capacity(), 1024u);
}

TEST(MpscQueueTest, EmptyPopReturnsNullopt) {
  MpscQueue<int> q(4);
  EXPECT_FALSE(q.TryPop().has_value());
  EXPECT_EQ(q.ApproxSize(), 0u);
}

TEST(MpscQueueTest, FifoAndFullBehaviour) {
  MpscQueue<int> q(4);
  for (int i = 0; i < 4; ++i) {
    int v = i;
    EXPECT_TRUE(q.TryPush(std::move(v)));
  }
  EXPECT_EQ(q.ApproxSize(), 4u);
  int extra = 99;
  EXPECT_FALSE(q.TryPush(std::move(extra)));
  for (int i = 0; i < 4; ++i) {
    auto v = q.TryPop();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, i);
  }
  EXPECT_FALSE(q.TryPop().has_value());
  // Wrap around several laps.
  for (int lap = 0; lap < 10; ++lap) {
    for (int i = 0; i < 3; ++i) {
      int v = lap * 10 + i;
      ASSERT_TRUE(q.TryPush(std::move(v)));
    }
    for (int i = 0; i < 3; ++i) EXPECT_EQ(*q.TryPop(), lap * 10 + i);
  }
}

TEST(MpscQueueTest, FailedPushDoesNotConsumeValue) {
  MpscQueue<std::unique_ptr<int>> q(2);
  ASSERT_TRUE(q.TryPush(std::make_unique<int>(1)));
  ASSERT_TRUE(q.TryPush(std::make_unique<int>(2)));
  auto p = std::make_unique<int>(3);
  EXPECT_FALSE(q.TryPush(std::move(p)));
  ASSERT_NE(p, nullptr);  // Caller still owns it and can retry.
  EXPECT_EQ(*p, 3);
  EXPECT_EQ(**q.TryPop(), 1);
  EXPECT_TRUE(q.TryPush(std::move(p)));
  EXPECT_EQ(**q.TryPop(), 2);
  EXPECT_EQ(**q.TryPop(), 3);
}

TEST(MpscQueueTest, CarriesAnyInvocable) {
  MpscQueue<absl::AnyInvocable<void()>> q(8);
  int calls = 0;
  auto owned = std::make_unique<int>(5);
  ASSERT_TRUE(q.TryPush([&calls, o = std::move(owned)] { calls += *o; }));
  auto fn = q.TryPop();
  ASSERT_TRUE(fn.has_value());
  (*fn)();
  EXPECT_EQ(calls, 5);
}

TEST(MpscQueueTest, DestructorDestroysQueuedElements) {
  auto tracker = std::make_shared<int>(0);
  {
    MpscQueue<std::shared_ptr<int>> q(8);
    for (int i = 0; i < 5; ++i) {
      auto copy = tracker;
      ASSERT_TRUE(q.TryPush(std::move(copy)));
    }
    EXPECT_EQ(tracker.use_count(), 6);
    q.TryPop();  // Popped value destroyed right away.
    EXPECT_EQ(tracker.use_count(), 5);
  }
  EXPECT_EQ(tracker.use_count(), 1);
}

TEST(MpscQueueTest, IndicesLiveOnSeparateCacheLines) {
  // The queue object must be at least two cache lines: head and tail are
  // padded apart.
  EXPECT_GE(sizeof(MpscQueue<int>), 2 * kCacheLineSize);
  EXPECT_EQ(alignof(MpscQueue<int>), kCacheLineSize);
}

// 4 producers x 200k items through a 64-slot queue. Producers retry on a
// full queue, the consumer checks that every item arrives exactly once and
// that each producer's items arrive in the order pushed.
TEST(MpscQueueTest, MultiProducerStress) {
  constexpr int kProducers = 4;
  constexpr uint64_t kPerProducer = 200000;
  constexpr uint64_t kTotal = kProducers * kPerProducer;
  MpscQueue<uint64_t> q(64);
  std::atomic<uint64_t> full_events{0};
  // Lets producers bail out if the consumer gives up, so a failing test
  // reports instead of hanging in join().
  std::atomic<bool> stop{false};

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      uint64_t local_full = 0;
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        const uint64_t item = (static_cast<uint64_t>(p) << 32) | i;
        for (;;) {
          uint64_t v = item;
          if (q.TryPush(std::move(v))) break;
          ++local_full;
          if (stop.load(std::memory_order_relaxed)) {
            full_events.fetch_add(local_full);
            return;
          }
          std::this_thread::yield();
        }
      }
      full_events.fetch_add(local_full);
    });
  }

  // Let the queue fill up first so that the full path is certainly hit while
  // producers race each other.
  const auto fill_deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (q.ApproxSize() < q.capacity() &&
         std::chrono::steady_clock::now() < fill_deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(q.ApproxSize(), q.capacity());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  std::vector<uint64_t> next(kProducers, 0);
  uint64_t received = 0;
  uint64_t out_of_order = 0;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received < kTotal) {
    auto v = q.TryPop();
    if (!v.has_value()) {
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::yield();
      continue;
    }
    const uint64_t p = *v >> 32;
    const uint64_t seq = *v & 0xffffffffu;
    ASSERT_LT(p, static_cast<uint64_t>(kProducers));
    // Strictly sequential per producer => no loss, no duplicate, in order.
    if (seq != next[p]) {
      if (++out_of_order <= 5) {
        ADD_FAILURE() << "producer " << p << ": expected " << next[p] << " got "
                      << seq;
      }
      next[p] = seq;
    }
    ++next[p];
    ++received;
  }
  stop.store(true);
  for (auto& t : producers) t.join();
  EXPECT_EQ(received, kTotal);
  EXPECT_EQ(out_of_order, 0u);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kPerProducer);
  EXPECT_FALSE(q.TryPop().has_value());
  EXPECT_EQ(q.ApproxSize(), 0u);
  EXPECT_GT(full_events.load(), 0u);
}

}  // namespace
}  // namespace pimap
