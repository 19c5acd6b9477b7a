// Tests for ByteQueue: FIFO order across chunks, max_bytes limits, the
// zero-copy move of big chunks, and Clear().
#include "core/base/byte_queue.h"

#include <string>

#include "gtest/gtest.h"

namespace pimap {
namespace {

std::string Drain(ByteQueue& q, size_t step) {
  std::string all;
  while (!q.empty()) {
    std::string piece = q.TakeFront(step);
    EXPECT_FALSE(piece.empty());
    EXPECT_LE(piece.size(), step);
    all += piece;
  }
  return all;
}

TEST(ByteQueueTest, EmptyQueue) {
  ByteQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.TakeFront(100), "");
  q.Append(absl::string_view());
  q.Append(std::string());
  EXPECT_TRUE(q.empty());
}

TEST(ByteQueueTest, SmallAppendsCoalesce) {
  ByteQueue q;
  q.Append("* OK ");
  q.Append(std::string("ready\r\n"));
  q.Append("a1 OK done\r\n");
  EXPECT_EQ(q.size(), 24u);
  EXPECT_EQ(q.TakeFront(1000), "* OK ready\r\na1 OK done\r\n");
  EXPECT_TRUE(q.empty());
}

TEST(ByteQueueTest, TakeFrontRespectsMaxBytes) {
  ByteQueue q;
  q.Append("abcdefghij");
  EXPECT_EQ(q.TakeFront(3), "abc");
  EXPECT_EQ(q.size(), 7u);
  EXPECT_EQ(q.TakeFront(0), "");
  EXPECT_EQ(q.TakeFront(4), "defg");
  EXPECT_EQ(q.TakeFront(100), "hij");
  EXPECT_TRUE(q.empty());
}

TEST(ByteQueueTest, BigChunkIsMovedWithoutCopy) {
  ByteQueue q;
  std::string big(100000, 'x');
  const char* data = big.data();
  q.Append(std::move(big));
  q.Append("tail");
  EXPECT_EQ(q.size(), 100004u);
  std::string out = q.TakeFront(1 << 20);
  // Same buffer => no copy was made.
  EXPECT_EQ(out.data(), data);
  EXPECT_EQ(out.size(), 100000u);
  EXPECT_EQ(q.TakeFront(1 << 20), "tail");
  EXPECT_TRUE(q.empty());
}

TEST(ByteQueueTest, OnlyChunkIsMovedWithoutCopy) {
  ByteQueue q;
  std::string big(50000, 'y');
  const char* data = big.data();
  q.Append(std::move(big));
  std::string out = q.TakeFront(50000);
  EXPECT_EQ(out.data(), data);
}

TEST(ByteQueueTest, BigChunkSplitAcrossTakes) {
  ByteQueue q;
  q.Append("head:");
  std::string big;
  for (int i = 0; i < 10000; ++i) big += static_cast<char>('a' + i % 26);
  const std::string expected = "head:" + big + ":tail";
  q.Append(std::move(big));
  q.Append(":tail");
  EXPECT_EQ(q.size(), expected.size());
  // Small front chunk is coalesced with bytes of the next chunk.
  std::string first = q.TakeFront(1000);
  EXPECT_EQ(first, expected.substr(0, 1000));
  std::string rest = Drain(q, 777);
  EXPECT_EQ(first + rest, expected);
}

TEST(ByteQueueTest, InterleavedAppendAndTakePreserveOrder) {
  ByteQueue q;
  std::string expected, got;
  for (int i = 0; i < 200; ++i) {
    std::string piece(static_cast<size_t>(i * 97 % 9000), 'a' + i % 26);
    expected += piece;
    if (i % 2 == 0) {
      q.Append(piece);
    } else {
      q.Append(std::move(piece));
    }
    if (i % 3 == 0) got += q.TakeFront(5000);
    EXPECT_EQ(q.size(), expected.size() - got.size());
  }
  got += Drain(q, 4096);
  EXPECT_EQ(got, expected);
}

TEST(ByteQueueTest, Clear) {
  ByteQueue q;
  q.Append("abc");
  q.Append(std::string(10000, 'z'));
  q.TakeFront(1);
  q.Clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.TakeFront(10), "");
  q.Append("new");
  EXPECT_EQ(q.TakeFront(10), "new");
}

// Many big chunks taken one by one while more arrive: the chain's front slots are
// reclaimed (compaction) without disturbing order.
TEST(ByteQueueTest, LongChainKeepsOrderAcrossCompaction) {
  ByteQueue q;
  std::string expected, got;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 40; ++i) {
      std::string chunk(ByteQueue::kMinMoveChunk + static_cast<size_t>(i),
                        static_cast<char>('A' + (round + i) % 26));
      expected += chunk;
      q.Append(std::move(chunk));
    }
    for (int i = 0; i < 30; ++i) got += q.TakeFront(1 << 20);
  }
  got += Drain(q, 1 << 20);
  EXPECT_EQ(got, expected);
}

TEST(ByteQueueTest, MoveLeavesSourceEmptyAndUsable) {
  ByteQueue a;
  a.Append(std::string(9000, 'x'));
  a.Append(std::string(9000, 'y'));
  a.TakeFront(9000);
  ByteQueue b(std::move(a));
  EXPECT_EQ(b.size(), 9000u);
  EXPECT_EQ(b.TakeFront(1 << 20), std::string(9000, 'y'));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): defined empty
  a.Append("again");
  EXPECT_EQ(a.TakeFront(10), "again");
}

}  // namespace
}  // namespace pimap
