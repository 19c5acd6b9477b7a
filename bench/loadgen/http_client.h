// The device side of P-IMAP's HTTP binding for pimap-bench (--binding
// http|https): HTTP/1.1 request writing, an incremental response reader
// (head, Content-Length and chunked bodies, bounded sizes), and HttpTransport,
// which makes the binding look like an IMAP byte stream to a bench Device: each
// Write is one POST of a batch of commands, the response bodies come back as
// the stream. The cookie of the session is kept and sent; a batch written while
// a long poll (a batch ending in IDLE) holds the connection goes out on a
// second connection (the DONE of the binding), opened on demand with the same
// target.
#ifndef PIMAP_BENCH_LOADGEN_HTTP_CLIENT_H_
#define PIMAP_BENCH_LOADGEN_HTTP_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bench/loadgen/connect.h"
#include "core/engine/transport.h"

namespace pimap::bench {

// "POST path HTTP/1.1" with Host, Content-Type application/vnd.pimap, the
// session cookie (when not empty) and Content-Length.
std::string BuildPost(absl::string_view host, absl::string_view path,
                      absl::string_view cookie, absl::string_view body);

struct HttpResponseHead {
  int status = 0;
  std::string reason;
  int64_t content_length = -1;  // -1: none given
  bool chunked = false;
  bool close = false;       // Connection: close
  bool has_cookie = false;  // a Set-Cookie for the reader's cookie name
  std::string cookie;       // its value ("" clears it)
};

// One connection's responses, one after another. Sizes are bounded: a head of
// 16 KiB, chunk-size and trailer lines of 1 KiB, chunks of 64 MiB.
class HttpResponseReader {
 public:
  class Visitor {
   public:
    // Each returns false to stop at once (the owner is going away).
    virtual bool OnHead(const HttpResponseHead& head) = 0;
    virtual bool OnBody(absl::string_view bytes) = 0;
    virtual bool OnEnd() = 0;

   protected:
    ~Visitor() = default;
  };

  explicit HttpResponseReader(std::string cookie_name)
      : cookie_name_(std::move(cookie_name)) {}

  // Takes all of `data`. False: the response is malformed (error() says how)
  // or a visitor call stopped it (error() empty).
  bool Feed(absl::string_view data, Visitor& visitor);
  // A response has started (some of its head arrived) and not ended.
  bool in_response() const {
    return state_ != State::kHead || !line_.empty() || head_.status != 0;
  }
  const std::string& error() const { return error_; }

 private:
  enum class State : uint8_t {
    kHead,
    kLength,
    kChunkSize,
    kChunkData,
    kChunkEnd,
    kTrailer
  };
  // Appends to line_ up to a '\n' (consumed from *data); true once complete.
  bool TakeLine(absl::string_view* data, size_t max, const char* what);
  bool HeadLine(absl::string_view line);
  bool Fail(std::string error);

  std::string cookie_name_;
  State state_ = State::kHead;
  std::string line_;
  size_t head_bytes_ = 0;
  int64_t left_ = 0;
  HttpResponseHead head_;
  std::string error_;
};

// What an HttpTransport needs from its owner to open more connections to the
// same target.
class HttpDialer {
 public:
  // Starts a connection; `client` hears of it on this shard.
  virtual void Dial(ConnectClient* client) = 0;
  // The socket as the binding carries it (TLS over it for https), or null
  // (the socket is aborted then).
  virtual engine::Transport* Wrap(engine::Socket* socket) = 0;

 protected:
  ~HttpDialer() = default;
};

struct HttpTarget {
  std::string host;  // Host header
  std::string path;  // the binding's path (pimapd --http-path)
};

class HttpTransport final : public engine::Transport {
 public:
  // `first`: the device's connection, not yet given a handler.
  HttpTransport(HttpDialer* dialer, engine::Transport* first,
                const HttpTarget* target);

  void SetHandler(engine::TransportHandler* handler) override;
  // One POST with `bytes` (whole commands) as its body.
  void Write(absl::string_view bytes) override;
  void Write(std::string&& bytes) override { Write(absl::string_view(bytes)); }
  using Transport::Write;
  size_t PendingOutput() const override;
  void SetReading(bool on) override;
  void Close() override { Shut(false); }
  void Abort() override { Shut(true); }
  bool is_tls() const override { return tls_; }

 private:
  class Link;
  // Defers deletion while a link's callback runs.
  class Guard {
   public:
    explicit Guard(HttpTransport* t) : t_(t) { ++t_->depth_; }
    ~Guard() {
      --t_->depth_;
      t_->MaybeDelete();
    }

   private:
    HttpTransport* t_;
  };

  ~HttpTransport() override;
  void Shut(bool abort);
  // A connection failed with requests open: the handler hears `reason`.
  void Fatal(absl::Status reason);
  void MaybeDelete();

  HttpDialer* dialer_;
  const HttpTarget* target_;
  engine::TransportHandler* handler_ = nullptr;
  std::unique_ptr<Link> links_[2];  // [0]: the device's first connection
  engine::Transport* first_;        // given to links_[0] at SetHandler
  std::string cookie_;
  bool closed_ = false;  // no callbacks any more
  bool tls_ = false;
  int depth_ = 0;
};

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_HTTP_CLIENT_H_
