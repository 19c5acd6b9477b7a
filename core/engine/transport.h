// What a byte stream to a peer *is*, apart from how it is carried: a plain socket on
// io_uring (socket.h) or TLS over one (bindings/tls). Protocol code (the IMAP device
// connection, the store client) sees only this interface.
#ifndef PIMAP_CORE_ENGINE_TRANSPORT_H_
#define PIMAP_CORE_ENGINE_TRANSPORT_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace pimap::engine {

class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // Bytes from the peer (decrypted). The view is valid only during the call.
  virtual void OnTransportData(absl::string_view data) = 0;
  // Everything written so far has been handed to the kernel.
  virtual void OnTransportDrained() {}
  // The peer closed or the transport failed. No callback follows; the transport has
  // already started freeing itself and must not be used again.
  virtual void OnTransportClosed(absl::Status reason) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void SetHandler(TransportHandler* handler) = 0;
  // Queues bytes; they leave in order, one send in flight at a time.
  virtual void Write(absl::string_view bytes) = 0;
  virtual void Write(std::string&& bytes) = 0;
  void Write(const char* bytes) { Write(absl::string_view(bytes)); }
  // Bytes queued and not yet accepted by the kernel (the backpressure signal).
  virtual size_t PendingOutput() const = 0;
  // Reading is on by default. Pausing stops arming receives; at most one receive
  // already in flight may still deliver data.
  virtual void SetReading(bool on) = 0;
  // Flushes what is queued (bounded by the shard's linger time), then closes. No
  // callbacks after this call; the object frees itself.
  virtual void Close() = 0;
  // Closes at once, dropping queued output.
  virtual void Abort() = 0;
  virtual bool is_tls() const { return false; }
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_TRANSPORT_H_
