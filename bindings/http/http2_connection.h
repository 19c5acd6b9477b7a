// One HTTP/2 connection of the HTTP binding (RFC 9113, through nghttp2): ALPN
// "h2" on the HTTPS port, or prior knowledge on the plain port. Each stream is
// one request; a complete one is routed exactly as an HTTP/1.1 request
// (HttpServer::Route) and its response is the stream's ResponseSink, so long
// polls stream as DATA frames while other streams of the connection go on.
//
// Shards: a connection lives on one shard. It moves to the shard of its first
// routed request while no stream is being answered (the whole object, with
// its nghttp2 state, travels in the hand-over); a request for another shard's
// session after that gets 421 (Misdirected Request: retry on a new
// connection), which a device that keeps its one session never sees.
//
// Hazards named where they are handled:
//  * nghttp2 must not be re-entered from its own callbacks: output is produced
//    (mem_send) only outside mem_recv, so a session that ends inside a stream
//    close callback only marks output as due.
//  * Memory: concurrent streams, header bytes per stream and body bytes are
//    bounded (SETTINGS and checks here); inbound DATA beyond the body limit
//    gets 413 and is dropped.
#ifndef PIMAP_BINDINGS_HTTP_HTTP2_CONNECTION_H_
#define PIMAP_BINDINGS_HTTP_HTTP2_CONNECTION_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "bindings/http/http_server.h"
#include "bindings/http/http_session.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"

struct nghttp2_session;

namespace pimap::engine {
class Socket;
}

namespace pimap::http_binding {

class Http2Connection final : public HttpServerConnection,
                              private engine::TransportHandler {
 public:
  // The 24-byte client connection preface (RFC 9113 §3.4).
  static constexpr absl::string_view kPreface =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

  // Takes over an accepted connection that speaks HTTP/2; `received`: what
  // was read of it already (the preface, maybe more); `preauth`: the gate
  // that counts it as not logged in (HttpServer::AdmitPreAuth), or null.
  static void Start(HttpServer* server, engine::Socket* socket,
                    engine::Transport* transport, const ClientAddress& client,
                    absl::string_view received, PreAuthGate* preauth);

  void Shutdown() override;

 private:
  class Stream;
  class Handoff;
  friend class Stream;
  friend class Handoff;
  friend struct Http2Callbacks;
  enum class State : uint8_t { kOpen, kMoving, kClosing };

  Http2Connection(HttpServer* server, engine::Socket* socket,
                  engine::Transport* transport);
  ~Http2Connection() override;
  void Attach(HttpServer* server, engine::Socket* socket,
              engine::Transport* transport);
  void Detach();
  // Not logged in no more: one of its streams serves a logged-in session.
  void LeavePreAuth();

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;

  // nghttp2 callbacks (static trampolines in the .cc).
  int OnBeginHeaders(int32_t stream_id);
  int OnHeader(int32_t stream_id, absl::string_view name,
               absl::string_view value);
  int OnData(int32_t stream_id, absl::string_view data);
  int OnFrame(int32_t stream_id, bool headers, bool end_stream);
  int OnStreamClose(int32_t stream_id);

  // Routes the requests that completed, in arrival order.
  void ServeReady();
  // A response that is not the session's (errors): whole, with END_STREAM.
  void Respond(Stream& stream, int status, absl::string_view message,
               absl::string_view extra_headers = "");
  // Submits a response's HEADERS (and its DATA source: the stream's output).
  void SubmitHead(Stream& stream, int status, absl::string_view content_type,
                  absl::string_view extra_headers, int64_t length);
  bool AnsweringAny() const;
  void HandOver(int owner);
  // Writes what nghttp2 has to send, within the output bound; closes when
  // the connection is done.
  void Flush();
  void CloseSoon(bool abort);
  void ReleaseLingering();
  void DropStreamLater(int32_t stream_id);
  void ArmTimer();
  void OnTimer();
  void Close();
  void Abort();
  void Destroy();

  // Counts the session's calls into a stream (its sink) on the stack.
  class SinkCall {
   public:
    explicit SinkCall(Http2Connection* c) : c_(c) { ++c_->sink_calls_; }
    ~SinkCall() { --c_->sink_calls_; }

   private:
    Http2Connection* c_;
  };

  class Busy {
   public:
    explicit Busy(Http2Connection* c) : c_(c) { ++c_->busy_; }
    ~Busy();

   private:
    Http2Connection* c_;
  };

  HttpServer* server_;
  engine::Socket* socket_;
  engine::Transport* transport_;
  ClientAddress client_;  // travels with the connection when it moves
  PreAuthGate* preauth_ = nullptr;  // this shard's, while not logged in
  // Counted as not logged in when it left for another shard: counted there
  // again on arrival.
  bool readmit_ = false;
  nghttp2_session* h2_ = nullptr;
  absl::flat_hash_map<int32_t, std::unique_ptr<Stream>> streams_;
  // Streams nghttp2 closed, freed once no call of ours is on the stack (a
  // stream's own sink method may have led to its close).
  std::vector<std::unique_ptr<Stream>> closed_;
  // Streams closed while a session was writing, whose session is still to
  // be told (from the loop: ReleaseLingering).
  std::vector<std::unique_ptr<Stream>> lingering_;
  std::deque<int32_t> ready_;  // complete requests, not yet routed
  TimerWheel::TimerId timer_ = 0;
  int64_t last_activity_ms_ = 0;
  int busy_ = 0;
  int sink_calls_ = 0;
  // Expires with this: timers scheduled for later check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  State state_ = State::kOpen;
  bool in_nghttp2_ = false;  // inside mem_recv: no mem_send now
  bool flush_due_ = false;
  bool destroy_pending_ = false;
};

}  // namespace pimap::http_binding

#endif  // PIMAP_BINDINGS_HTTP_HTTP2_CONNECTION_H_
