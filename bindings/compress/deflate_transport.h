// COMPRESS=DEFLATE (RFC 4978) as a Transport over another one (the socket, or
// TLS): raw deflate both ways, one deflate stream per direction for the rest
// of the connection.
//
// Memory is what matters at a million idle phones (zlib's defaults cost about
// 256 KiB to deflate and 44 KiB to inflate per connection):
//  * Outbound: a small window and memLevel (DeflateConfig), every Write()
//    ends in a flush (the client sees each response at once; a sync flush
//    by default, see DeflateConfig::flush), and the
//    compressor is freed once output has been idle for `idle_free_ms` (or
//    at once when everything written has left, without a timer wheel). That
//    is legal mid-stream: after a sync flush the stream is at a byte-aligned
//    block boundary, and a new raw compressor simply does not refer to
//    earlier data, which the peer's inflater does not require. Events close
//    together compress against each other; an idle connection holds none.
//  * Inbound: the client may use a 32 KiB window, so the inflater (and its
//    window) lives as long as the connection.
//
// Hazards:
//  * Decompression bombs: input is inflated in 16 KiB pieces, each handed to
//    the handler before the next; while the handler has reading off nothing
//    more is inflated (the compressed rest waits here, and the inner
//    transport is paused too), so memory stays bounded whatever the ratio.
//    The IMAP framer's line and literal limits bound what a piece can build.
//  * Handlers may Close() this from inside a callback: deletion waits until
//    the pump has unwound (as TlsTransport does).
#ifndef PIMAP_BINDINGS_COMPRESS_DEFLATE_TRANSPORT_H_
#define PIMAP_BINDINGS_COMPRESS_DEFLATE_TRANSPORT_H_

#include <zlib.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"

namespace pimap::compress {

struct DeflateConfig {
  int window_bits = 11;  // 9..15: the outbound window is 2^bits bytes
  int mem_level = 4;     // 1..9: zlib's memLevel (hash table size)
  int level = 6;         // compression level
  // The compressor is kept this long after output went idle (history for
  // the next event); 0 frees it as soon as everything written has left.
  int64_t idle_free_ms = 10000;
  // How each write ends: Z_SYNC_FLUSH (an empty stored block, 4-5 bytes)
  // or Z_PARTIAL_FLUSH (an empty fixed block, ~2 bytes; everything written
  // is decodable, but some inflaters, e.g. Go's compress/flate, hand data
  // over only at a stored block, so their clients would stall). The
  // compressor is always sync-flushed before it is freed.
  int flush = Z_SYNC_FLUSH;
};

class DeflateTransport final : public engine::Transport,
                               private engine::TransportHandler {
 public:
  // Inflated bytes handed to the handler per call.
  static constexpr size_t kChunk = 16 * 1024;

  // Takes ownership of `inner` (closed with this). `counters` (may be null)
  // get the byte counts and the zlib state bytes. `timers` (may be null:
  // then the compressor goes as soon as output has left) must outlive this.
  DeflateTransport(engine::Transport* inner, DeflateConfig config,
                   ShardCounters* counters, TimerWheel* timers = nullptr);

  // Compressed bytes the peer sent that were read before the switch: they
  // go before anything the inner transport delivered since (kept until a
  // handler is set and reading is on).
  void Feed(absl::string_view compressed);

  void SetHandler(engine::TransportHandler* handler) override;
  void Write(absl::string_view bytes) override;
  void Write(std::string&& bytes) override { Write(absl::string_view(bytes)); }
  using Transport::Write;
  size_t PendingOutput() const override {
    return inner_ != nullptr ? inner_->PendingOutput() : 0;
  }
  void SetReading(bool on) override;
  void Close() override;
  void Abort() override;
  bool is_tls() const override { return inner_ != nullptr && inner_->is_tls(); }

  // zlib memory held now (tests, metrics).
  size_t state_bytes() const { return state_bytes_; }
  bool deflater_allocated() const { return deflating_; }

 private:
  ~DeflateTransport() override;
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;

  // Keeps this alive while a call that may reach the handler or the inner
  // transport runs; the last one out frees it if it was closed meanwhile.
  class Busy {
   public:
    explicit Busy(DeflateTransport* t) : t_(t) { ++t_->busy_; }
    ~Busy() {
      if (--t_->busy_ == 0 && t_->delete_pending_) delete t_;
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    DeflateTransport* t_;
  };

  void Pump();
  bool StartDeflater();
  void EndDeflater();
  void Fail(absl::Status reason);
  void DeleteSoon();
  static void* Alloc(void* opaque, unsigned items, unsigned size);
  static void Free(void* opaque, void* address);

  engine::Transport* inner_;
  engine::TransportHandler* handler_ = nullptr;
  DeflateConfig config_;
  ShardCounters* counters_;
  TimerWheel* timers_;
  TimerWheel::TimerId free_timer_ = 0;
  z_stream inflater_{};
  z_stream deflater_{};
  bool inflating_ = false;  // inflater_ initialised
  bool deflating_ = false;  // deflater_ initialised
  std::string input_;       // compressed, not yet inflated
  bool reading_ = true;
  bool dead_ = false;
  bool pumping_ = false;  // inside Pump() (no nested pumping)
  int busy_ = 0;          // calls on the stack (Busy): deletion waits
  bool delete_pending_ = false;
  size_t state_bytes_ = 0;
};

}  // namespace pimap::compress

#endif  // PIMAP_BINDINGS_COMPRESS_DEFLATE_TRANSPORT_H_
