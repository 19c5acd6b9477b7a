// ByteQueue implementation (see byte_queue.h).
#include "core/base/byte_queue.h"

#include <algorithm>
#include <utility>

namespace pimap {

void ByteQueue::Append(absl::string_view bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  if (bytes.size() < kMinMoveChunk && !no_chunks()) {
    std::string& tail = chunks_.back();
    if (tail.size() + bytes.size() <= kMaxCoalescedChunk) {
      tail.append(bytes.data(), bytes.size());
      return;
    }
  }
  chunks_.emplace_back(bytes.data(), bytes.size());
}

void ByteQueue::Append(std::string&& bytes) {
  if (bytes.size() < kMinMoveChunk) {
    // Copying a small string into the tail chunk is cheaper than growing the
    // chain (and keeps TakeFront() results large).
    Append(absl::string_view(bytes));
    bytes.clear();
    return;
  }
  size_ += bytes.size();
  chunks_.push_back(std::move(bytes));
}

std::string ByteQueue::TakeFront(size_t max_bytes) {
  if (size_ == 0 || max_bytes == 0) return std::string();
  std::string& first = front();
  if (front_offset_ == 0 && first.size() <= max_bytes &&
      (chunks_.size() - head_ == 1 || first.size() >= kMinMoveChunk)) {
    std::string out = std::move(first);
    size_ -= out.size();
    PopFrontChunk();
    return out;
  }
  std::string out;
  out.reserve(std::min(max_bytes, size_));
  while (out.size() < max_bytes && !no_chunks()) {
    std::string& chunk = front();
    const size_t avail = chunk.size() - front_offset_;
    const size_t n = std::min(avail, max_bytes - out.size());
    out.append(chunk, front_offset_, n);
    size_ -= n;
    if (n == avail) {
      PopFrontChunk();
    } else {
      front_offset_ += n;
    }
  }
  return out;
}

void ByteQueue::Clear() {
  std::vector<std::string>().swap(chunks_);
  head_ = 0;
  front_offset_ = 0;
  size_ = 0;
}

void ByteQueue::PopFrontChunk() {
  std::string().swap(chunks_[head_]);  // its bytes go now, not at compaction
  ++head_;
  front_offset_ = 0;
  if (no_chunks()) {
    // Drained: give the chain's storage back, so an idle connection holds none.
    std::vector<std::string>().swap(chunks_);
    head_ = 0;
  } else if (head_ >= 16 && head_ * 2 >= chunks_.size()) {
    // Spent slots at the front outnumber live ones: compact (amortised O(1)).
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

}  // namespace pimap
