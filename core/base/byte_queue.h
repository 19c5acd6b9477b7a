// ByteQueue: the FIFO of bytes waiting to be sent on one connection, kept as
// a chain of chunks so that large payloads (message bodies relayed from the
// store) are queued and handed to send() without being copied.
//
// Small appends are coalesced into the tail chunk to keep the chain short;
// big ones (>= kMinMoveChunk) become their own chunk. TakeFront() returns the
// next piece to send as one contiguous std::string.
//
// Hazard: NOT thread-safe; one connection's queue belongs to one shard.
// Callers enforce the per-connection output bound (--max-output-bytes) by
// checking size(); this class never refuses an Append().
#ifndef PIMAP_CORE_BASE_BYTE_QUEUE_H_
#define PIMAP_CORE_BASE_BYTE_QUEUE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap {

class ByteQueue {
 public:
  // Appends at or above this size are stored (or moved) as their own chunk;
  // smaller ones are copied into the tail chunk.
  static constexpr size_t kMinMoveChunk = 4096;
  // The tail chunk only grows by coalescing up to this size, so coalescing
  // never reallocates (copies) a large chunk.
  static constexpr size_t kMaxCoalescedChunk = 16 * 1024;

  ByteQueue() = default;
  ByteQueue(ByteQueue&& other) noexcept { *this = std::move(other); }
  ByteQueue& operator=(ByteQueue&& other) noexcept {
    chunks_ = std::exchange(other.chunks_, {});
    head_ = std::exchange(other.head_, 0);
    front_offset_ = std::exchange(other.front_offset_, 0);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;

  void Append(absl::string_view bytes);
  // Without this, Append("literal") would be ambiguous between the
  // string_view and std::string&& overloads.
  void Append(const char* bytes) { Append(absl::string_view(bytes)); }
  // Takes ownership without copying when bytes.size() >= kMinMoveChunk.
  void Append(std::string&& bytes);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Removes up to max_bytes from the front and returns them as one string,
  // for one send() call. When the front chunk is untouched, fits in
  // max_bytes, and is either the only chunk or at least kMinMoveChunk long,
  // it is moved out without copying (and the result may then be shorter than
  // max_bytes even if more bytes are queued). Otherwise bytes are copied from
  // successive chunks until max_bytes is reached. Returns "" when empty or
  // max_bytes == 0.
  std::string TakeFront(size_t max_bytes);

  void Clear();

 private:
  void PopFrontChunk();
  std::string& front() { return chunks_[head_]; }
  bool no_chunks() const { return head_ == chunks_.size(); }

  // The chain is chunks_[head_..]: a vector with a moving head rather than a
  // std::deque, because libstdc++'s deque allocates a 512-byte block even when
  // empty, and every idle connection holds one of these queues.
  std::vector<std::string> chunks_;
  size_t head_ = 0;
  // Bytes of chunks_.front() already taken (a partially sent chunk). Kept as
  // an offset because erasing from the front of a string is O(n).
  size_t front_offset_ = 0;
  size_t size_ = 0;
};

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_BYTE_QUEUE_H_
