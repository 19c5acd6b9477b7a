// COMPRESS=DEFLATE over a Transport (deflate_transport.h).
#include "bindings/compress/deflate_transport.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::compress {
namespace {

// zlib's allocations carry their size in front, so that the state bytes of
// every compressed connection can be counted (metrics, the memory targets).
constexpr size_t kHeader = alignof(std::max_align_t);

}  // namespace

void* DeflateTransport::Alloc(void* opaque, unsigned items, unsigned size) {
  auto* self = static_cast<DeflateTransport*>(opaque);
  const size_t bytes = static_cast<size_t>(items) * size;
  char* p = static_cast<char*>(std::malloc(bytes + kHeader));
  if (p == nullptr) return Z_NULL;
  std::memcpy(p, &bytes, sizeof(bytes));
  self->state_bytes_ += bytes;
  if (self->counters_ != nullptr) {
    self->counters_->compress_state_bytes.fetch_add(static_cast<int64_t>(bytes),
                                                    std::memory_order_relaxed);
  }
  return p + kHeader;
}

void DeflateTransport::Free(void* opaque, void* address) {
  if (address == nullptr) return;
  auto* self = static_cast<DeflateTransport*>(opaque);
  char* p = static_cast<char*>(address) - kHeader;
  size_t bytes = 0;
  std::memcpy(&bytes, p, sizeof(bytes));
  self->state_bytes_ -= bytes;
  if (self->counters_ != nullptr) {
    self->counters_->compress_state_bytes.fetch_sub(static_cast<int64_t>(bytes),
                                                    std::memory_order_relaxed);
  }
  std::free(p);
}

DeflateTransport::DeflateTransport(engine::Transport* inner,
                                   DeflateConfig config,
                                   ShardCounters* counters, TimerWheel* timers)
    : inner_(inner), config_(config), counters_(counters), timers_(timers) {
  inflater_.zalloc = &DeflateTransport::Alloc;
  inflater_.zfree = &DeflateTransport::Free;
  inflater_.opaque = this;
  // -15: raw deflate, any window the peer chose (up to 32 KiB).
  inflating_ = inflateInit2(&inflater_, -15) == Z_OK;
  if (counters_ != nullptr) {
    counters_->compress_connections.fetch_add(1, std::memory_order_relaxed);
  }
  inner_->SetHandler(this);
}

DeflateTransport::~DeflateTransport() {
  if (free_timer_ != 0) timers_->Cancel(free_timer_);
  EndDeflater();
  if (inflating_) inflateEnd(&inflater_);
  if (counters_ != nullptr) {
    counters_->compress_connections.fetch_sub(1, std::memory_order_relaxed);
  }
}

void DeflateTransport::SetHandler(engine::TransportHandler* handler) {
  handler_ = handler;
  if (handler_ != nullptr) Pump();
}

void DeflateTransport::Feed(absl::string_view compressed) {
  input_.insert(0, compressed.data(), compressed.size());
}

void DeflateTransport::SetReading(bool on) {
  reading_ = on;
  if (inner_ != nullptr) inner_->SetReading(on);
  if (on) Pump();
}

bool DeflateTransport::StartDeflater() {
  if (deflating_) return true;
  deflater_ = z_stream{};
  deflater_.zalloc = &DeflateTransport::Alloc;
  deflater_.zfree = &DeflateTransport::Free;
  deflater_.opaque = this;
  deflating_ =
      deflateInit2(&deflater_, config_.level, Z_DEFLATED, -config_.window_bits,
                   config_.mem_level, Z_DEFAULT_STRATEGY) == Z_OK;
  return deflating_;
}

void DeflateTransport::EndDeflater() {
  if (!deflating_) return;
  std::string tail;
  if (config_.flush != Z_SYNC_FLUSH) {
    // Byte-align the stream first (an empty stored block): the bits of the
    // last partial flush must not die with the compressor, and a new one
    // starts on a byte boundary.
    char buf[64];
    deflater_.next_in = nullptr;
    deflater_.avail_in = 0;
    deflater_.next_out = reinterpret_cast<Bytef*>(buf);
    deflater_.avail_out = sizeof(buf);
    if (deflate(&deflater_, Z_SYNC_FLUSH) == Z_OK) {
      tail.assign(buf, sizeof(buf) - deflater_.avail_out);
    }
  }
  deflateEnd(&deflater_);
  deflating_ = false;
  // Last: the write may fail at once and close us (callers hold a Busy).
  if (!tail.empty() && inner_ != nullptr && !dead_) {
    if (counters_ != nullptr) {
      counters_->compress_out_wire.fetch_add(tail.size(),
                                             std::memory_order_relaxed);
    }
    inner_->Write(std::move(tail));
  }
}

void DeflateTransport::Write(absl::string_view bytes) {
  if (dead_ || bytes.empty()) return;
  Busy busy(this);
  if (free_timer_ != 0) {
    timers_->Cancel(free_timer_);
    free_timer_ = 0;
  }
  if (!StartDeflater()) {
    Fail(absl::ResourceExhaustedError("deflate: out of memory"));
    return;
  }
  std::string out;
  // A sync flush adds at most 5 bytes per 16 KiB stored block beyond the input.
  out.resize(deflateBound(&deflater_, bytes.size()) + 16);
  deflater_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  deflater_.avail_in = static_cast<uInt>(bytes.size());
  size_t used = 0;
  for (;;) {
    deflater_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    deflater_.avail_out = static_cast<uInt>(out.size() - used);
    const int rc = deflate(&deflater_, config_.flush);
    used = out.size() - deflater_.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      Fail(absl::InternalError(absl::StrCat("deflate failed: ", rc)));
      return;
    }
    // Done once all input is taken and the flush fit (output space left).
    if (deflater_.avail_in == 0 && deflater_.avail_out != 0) break;
    out.resize(out.size() * 2);
  }
  out.resize(used);
  if (counters_ != nullptr) {
    counters_->compress_out_raw.fetch_add(bytes.size(),
                                          std::memory_order_relaxed);
    counters_->compress_out_wire.fetch_add(out.size(),
                                           std::memory_order_relaxed);
  }
  inner_->Write(std::move(out));
}

void DeflateTransport::OnTransportData(absl::string_view data) {
  Busy busy(this);
  if (!inflating_) {  // inflateInit2 failed (out of memory)
    Fail(absl::ResourceExhaustedError("inflate: out of memory"));
    return;
  }
  if (counters_ != nullptr) {
    counters_->compress_in_wire.fetch_add(data.size(),
                                          std::memory_order_relaxed);
  }
  input_.append(data.data(), data.size());
  Pump();
}

void DeflateTransport::Pump() {
  if (dead_ || pumping_ || !inflating_) return;
  Busy busy(this);
  pumping_ = true;
  char buf[kChunk];
  bool more = !input_.empty();
  while (more && reading_ && handler_ != nullptr && !dead_) {
    inflater_.next_in = reinterpret_cast<Bytef*>(input_.data());
    inflater_.avail_in = static_cast<uInt>(input_.size());
    inflater_.next_out = reinterpret_cast<Bytef*>(buf);
    inflater_.avail_out = sizeof(buf);
    const int rc = inflate(&inflater_, Z_SYNC_FLUSH);
    const size_t consumed = input_.size() - inflater_.avail_in;
    const size_t produced = sizeof(buf) - inflater_.avail_out;
    input_.erase(0, consumed);
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
      pumping_ = false;
      Fail(absl::InvalidArgumentError(
          absl::StrCat("invalid compressed data (", rc, ")")));
      return;
    }
    // A full piece may leave more in zlib's window even without input.
    more = produced == sizeof(buf) || (consumed > 0 && !input_.empty());
    if (produced > 0) {
      if (counters_ != nullptr) {
        counters_->compress_in_raw.fetch_add(produced,
                                             std::memory_order_relaxed);
      }
      handler_->OnTransportData(absl::string_view(buf, produced));
    }
    if (rc == Z_STREAM_END && !dead_) {
      // RFC 4978: compression lasts for the rest of the connection. What
      // came before the end was delivered first.
      pumping_ = false;
      Fail(absl::InvalidArgumentError("compressed stream ended"));
      return;
    }
  }
  pumping_ = false;
}

void DeflateTransport::OnTransportDrained() {
  Busy busy(this);
  // Everything written has left: an idle connection holds no compressor
  // (after a grace period in which the next event still finds its history).
  if (timers_ == nullptr || config_.idle_free_ms <= 0) {
    EndDeflater();
  } else if (deflating_ && free_timer_ == 0) {
    free_timer_ = timers_->Schedule(config_.idle_free_ms, [this] {
      free_timer_ = 0;
      Busy busy(this);
      EndDeflater();
    });
  }
  if (handler_ != nullptr) handler_->OnTransportDrained();
}

void DeflateTransport::OnTransportClosed(absl::Status reason) {
  inner_ = nullptr;  // gone already
  engine::TransportHandler* handler = handler_;
  handler_ = nullptr;
  dead_ = true;
  if (handler != nullptr) handler->OnTransportClosed(std::move(reason));
  DeleteSoon();
}

void DeflateTransport::Fail(absl::Status reason) {
  if (dead_) return;
  dead_ = true;
  engine::TransportHandler* handler = handler_;
  handler_ = nullptr;
  if (inner_ != nullptr) {
    inner_->SetHandler(nullptr);
    inner_->Abort();
    inner_ = nullptr;
  }
  if (handler != nullptr) handler->OnTransportClosed(std::move(reason));
  DeleteSoon();
}

void DeflateTransport::Close() {
  if (dead_) return;
  Busy busy(this);
  handler_ = nullptr;  // no callback after Close(), even if the tail fails
  EndDeflater();       // the stream's last bits (after a partial flush)
  if (dead_) return;   // that write failed: closed already
  dead_ = true;
  if (inner_ != nullptr) {
    inner_->Close();  // flushes what is queued, then closes
    inner_ = nullptr;
  }
  DeleteSoon();
}

void DeflateTransport::Abort() {
  if (dead_) return;
  dead_ = true;
  handler_ = nullptr;
  if (inner_ != nullptr) {
    inner_->Abort();
    inner_ = nullptr;
  }
  DeleteSoon();
}

void DeflateTransport::DeleteSoon() {
  if (busy_ > 0) {
    delete_pending_ = true;
  } else {
    delete this;
  }
}

}  // namespace pimap::compress
