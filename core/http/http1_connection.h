// Http1Connection: the gateway's HTTP/1.1 server connection
// (server_connection.h) over an engine::Transport, a plain socket or TLS over
// one. An explicit state machine: reading a request -> serving it (the handler
// answers, at once or later) -> reading the next; closing. It owns everything
// HTTP/1.1 about a connection, all bounded and none of it blocking the shard:
//  * requests are read with the shared parser (request_parser.h); keep-alive,
//    pipelined requests answered in order;
//  * the parser's bounds and errors (431, 413, 400, ...): answered with their
//    reason, then the connection closes;
//  * "Expect: 100-continue" is answered 100 before the body is read;
//  * the idle deadline, and the stuck-request deadline (config);
//  * backpressure: a peer that does not read its answers is not read either;
//    read-ahead of later requests while one is served is bounded;
//  * response heads and bodies: whole, Content-Length or chunked, content
//    coded or not; HEAD gets the head only.
#ifndef PIMAP_CORE_HTTP_HTTP1_CONNECTION_H_
#define PIMAP_CORE_HTTP_HTTP1_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/http/content_coding.h"
#include "core/http/request_parser.h"
#include "core/http/server_connection.h"

namespace pimap::http {

class Http1Connection final : public ServerConnection,
                              private engine::TransportHandler {
 public:
  // Takes `transport`; `timers` (the shard's), `config` (its owner's: one for
  // all its connections) and `handler` must outlive the connection (the
  // handler is told OnClosed). Nothing is read until Start(), so that the
  // caller can count the connection first.
  Http1Connection(engine::Transport* transport, TimerWheel* timers,
                  ServerHandler* handler, const ServerConnectionConfig* config);
  Http1Connection(const Http1Connection&) = delete;
  Http1Connection& operator=(const Http1Connection&) = delete;

  // Installs itself as the transport's handler: reading starts (requests
  // already buffered, e.g. carried from another shard, are read now).
  void Start();

  // ---- Moving the connection to another shard (the P-IMAP binding) ----
  // What travels: the parser (bytes read ahead, a streamed body's state) and
  // the keep-alive wish of the request being served.
  struct Carried {
    HttpRequestParser parser;
    bool keep_alive = true;
  };
  // The connection is leaving: bytes that still arrive are kept in the
  // parser, nothing more is parsed or timed.
  void Suspend();
  // Hands over the parser and forgets the transport (its owner takes it
  // over, or it is gone already). No handler call follows; the connection is
  // freed once the outermost call into it has returned.
  Carried Release();
  // On arrival, before Start(): go on with what came along.
  void Resume(Carried carried);
  // ... serving a request read on the other shard;
  void Serve(HttpRequest request);
  // ... or the chunked response begun there (a persistent exchange), whose
  // request body goes on streaming (OnRequestBody).
  void ResumeResponse();
  // A streamed request body is still open (its end not read yet).
  bool request_body_open() const { return parser_.in_streamed_body(); }

  // ServerConnection
  bool keep_alive() const override { return keep_alive_; }
  void CloseAfterResponse() override { keep_alive_ = false; }
  void Respond(int status, absl::string_view extra_headers,
               absl::string_view content_type, absl::string_view body) override;
  void WriteHead(int status, absl::string_view headers, int64_t length,
                 ContentCoding coding) override;
  void WriteBody(absl::string_view bytes) override;
  void EndResponse() override;
  size_t PendingOutput() const override;
  void SetReading(bool on) override;
  bool is_tls() const override;
  void Abort() override;
  void Close() override;

 private:
  enum class State : uint8_t { kReading, kServing, kMoving, kClosing };

  ~Http1Connection() override;

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;

  void ReadRequests();
  void Dispatch(HttpRequest request);
  void PumpBody();
  void EndExchange();
  void WriteHeadNow(int status, absl::string_view headers, int64_t length);
  void ArmTimer(int64_t delay_ms);
  void OnTimer();
  // The transport is gone or closing: the handler is told and the
  // connection freed once the outermost call into it has returned.
  void Closed(bool output_lost);

  // Holds off deletion while a call into the connection is on the stack (a
  // handler may close it from inside OnRequest).
  class Busy {
   public:
    explicit Busy(Http1Connection* c) : c_(c) { ++c_->busy_; }
    ~Busy();

   private:
    Http1Connection* c_;
  };

  engine::Transport* transport_;
  TimerWheel* timers_;
  ServerHandler* handler_;
  const ServerConnectionConfig* config_;
  HttpRequestParser parser_;
  State state_ = State::kReading;
  TimerWheel::TimerId timer_ = 0;
  int64_t last_exchange_ms_ = 0;    // the last request completed, or opened
  int64_t request_started_ms_ = 0;  // first byte of the request being read
  // A streamed response with a content coding (off the connection while
  // there is none: most responses are not coded). One whose length is known
  // is held whole to send its coded Content-Length.
  struct Coded {
    Coded(ContentCoding coding, ShardCompressor* compressor)
        : encoder(coding, compressor) {}
    ResponseEncoder encoder;
    bool holding = false;
    int held_status = 0;
    std::string held_head;
    std::string held_body;
  };
  std::unique_ptr<Coded> coded_;
  int busy_ = 0;
  bool chunked_ = false;
  bool head_only_ = false;  // serving HEAD
  bool keep_alive_ = true;
  bool output_paused_ = false;  // the peer does not read its answers
  bool reading_off_ = false;    // read-ahead bound, or the handler's backlog
  bool in_read_requests_ = false;
  bool closed_ = false;
  bool output_lost_ = false;
  bool released_ = false;  // no OnClosed
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_HTTP1_CONNECTION_H_
