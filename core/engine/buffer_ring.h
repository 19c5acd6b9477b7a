// A provided-buffer ring (IORING_REGISTER_PBUF_RING): the kernel picks a buffer only
// when data actually arrives, so thousands of idle connections with a recv armed cost
// no buffer memory. liburing 2.3 lacks io_uring_setup_buf_ring(), so the ring is
// mmap'ed and registered by hand.
#ifndef PIMAP_CORE_ENGINE_BUFFER_RING_H_
#define PIMAP_CORE_ENGINE_BUFFER_RING_H_

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pimap::engine {

class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // `count` must be a power of two.
  absl::Status Init(io_uring* ring, uint16_t group_id, unsigned count,
                    unsigned buffer_size);
  uint16_t group_id() const { return group_id_; }
  unsigned buffer_size() const { return buffer_size_; }

  absl::string_view Data(uint16_t buffer_id, size_t length) const {
    return absl::string_view(storage_.get() + size_t{buffer_id} * buffer_size_,
                             length);
  }
  // Gives a buffer back to the kernel once its bytes have been consumed or copied.
  void Recycle(uint16_t buffer_id);

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* entries_ = nullptr;
  size_t entries_bytes_ = 0;
  std::unique_ptr<char[]> storage_;
  unsigned count_ = 0;
  unsigned buffer_size_ = 0;
  uint16_t group_id_ = 0;
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_BUFFER_RING_H_
