// Provided-buffer ring registration and recycling.
#include "core/engine/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pimap::engine {

BufferRing::~BufferRing() {
  if (entries_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, group_id_);
    munmap(entries_, entries_bytes_);
  }
}

absl::Status BufferRing::Init(io_uring* ring, uint16_t group_id, unsigned count,
                              unsigned buffer_size) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
    return absl::InvalidArgumentError("buffer count must be a power of two");
  }
  ring_ = ring;
  group_id_ = group_id;
  count_ = count;
  buffer_size_ = buffer_size;
  entries_bytes_ = sizeof(io_uring_buf) * count;
  void* mem = mmap(nullptr, entries_bytes_, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    return absl::ErrnoToStatus(errno, "mmap buffer ring");
  }
  entries_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(entries_);
  io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uint64_t>(entries_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc != 0) {
    munmap(entries_, entries_bytes_);
    entries_ = nullptr;
    return absl::ErrnoToStatus(-rc, "io_uring_register_buf_ring");
  }
  storage_.reset(new char[size_t{count} * buffer_size]);
  // The kernel hands the buffers out in ring order, so every buffer's first
  // page becomes resident within the first `count` receives whatever their
  // size: a fixed cost of the shard (count pages), touched here at start-up
  // rather than faulted in on the data path, where it also looked like memory
  // growing with the connections. The rest of a buffer is touched only by
  // large receives.
  for (unsigned i = 0; i < count; ++i) storage_[size_t{i} * buffer_size] = 0;
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(entries_, storage_.get() + size_t{i} * buffer_size,
                          buffer_size, i, mask, i);
  }
  io_uring_buf_ring_advance(entries_, count);
  return absl::OkStatus();
}

void BufferRing::Recycle(uint16_t buffer_id) {
  io_uring_buf_ring_add(entries_, storage_.get() + size_t{buffer_id} * buffer_size_,
                        buffer_size_, buffer_id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(entries_, 1);
}

}  // namespace pimap::engine
