// One HTTP/1.1 connection of the HTTP binding, over a plain socket or TLS: an
// explicit state machine (reading a request → serving it → reading the next;
// closing) that parses requests with the shared core/http parser, answers what
// is HTTP's (path, method, media type, sizes, deadlines, load) and hands each
// POST to the P-IMAP session its cookie names (http_session.h), whose response
// it carries as the session's ResponseSink. A request for a session (or a
// login) owned by another shard moves the connection there first.
#ifndef PIMAP_BINDINGS_HTTP_HTTP_CONNECTION_H_
#define PIMAP_BINDINGS_HTTP_HTTP_CONNECTION_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "bindings/http/http_server.h"
#include "bindings/http/http_session.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/http/request_parser.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::http_binding {

class HttpConnection final : public HttpServerConnection,
                             private engine::TransportHandler,
                             private ResponseSink {
 public:
  static void Accept(HttpServer* server, int slot, bool tls,
                     const ClientAddress& client);

  // What a connection takes along to another shard: its parser (bytes read
  // ahead, a streamed body's state), and the request to serve first or the
  // persistent exchange to go on with.
  struct Moving {
    http::HttpRequestParser parser;
    http::HttpRequest request;
    std::optional<std::string> replay;  // persistent exchange: the login on
    bool input_ended = false;           // ... and its request body has ended
    bool keep_alive = true;
    ClientAddress client;
  };
  static void Arrive(HttpServer* server, int slot, SSL* ssl, Moving moving);

  // Server stop: close (an open session says goodbye first).
  void Shutdown() override;

 private:
  enum class State : uint8_t { kReading, kServing, kMoving, kClosing };

  HttpConnection(HttpServer* server, engine::Socket* socket,
                 engine::Transport* transport, const ClientAddress& client);
  ~HttpConnection() override;

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;
  // ResponseSink
  void WriteHead(absl::string_view extra_headers, int64_t length) override;
  void WriteBody(absl::string_view bytes) override;
  void EndBody() override;
  size_t PendingOutput() const override;
  const ClientAddress& client_address() const override { return client_; }
  void OnInputConsumed() override;
  void MoveTo(int owner, std::string replay) override;
  void OnAuthenticated() override { LeavePreAuth(); }
  // No longer counted as "not logged in" (the shard's pre-auth gate).
  void LeavePreAuth();

  void Start();
  // The status line and headers of a 200 response to the session's request.
  void WriteHeadNow(absl::string_view extra_headers, int64_t length);
  bool SpeaksHttp2(absl::string_view first) const;
  void ReadRequests();
  void Handle(http::HttpRequest request);
  // An HTTP-level answer; `close` ends the connection after it.
  void Fail(int status, absl::string_view message, bool close,
            absl::string_view extra_headers = "");
  void HandOver(int owner, http::HttpRequest request);
  void HandOver(int owner, Moving moving);
  void PumpBody();
  void ResumePersistent(std::string replay, bool input_ended);
  void ArmTimer(int64_t delay_ms);
  void OnTimer();
  void Close();
  void Destroy();

  void LoseLater();
  void TellUnsentSession();
  // Counts the session's calls into this sink that are on the stack.
  class SinkCall {
   public:
    explicit SinkCall(HttpConnection* c) : c_(c) { ++c_->sink_calls_; }
    ~SinkCall() { --c_->sink_calls_; }

   private:
    HttpConnection* c_;
  };

  class Busy {
   public:
    explicit Busy(HttpConnection* c) : c_(c) { ++c_->busy_; }
    [[gnu::noinline]] ~Busy();

   private:
    HttpConnection* c_;
  };

  HttpServer* server_;
  engine::Socket* socket_;
  engine::Transport* transport_;
  http::HttpRequestParser parser_;
  ClientAddress client_;
  HttpSession* session_ = nullptr;  // whose response is being written
  PreAuthGate* preauth_ = nullptr;  // counted there while not logged in
  // Whose finished response is still being sent (OnTransportDrained clears).
  HttpSession* unsent_session_ = nullptr;
  std::weak_ptr<bool> unsent_alive_;
  // The response's content coding. A coded response whose length the
  // session knows is held whole (at most the session's held output, 64 KiB)
  // to send its coded Content-Length.
  http::ContentCoding coding_ = http::ContentCoding::kIdentity;
  http::ResponseEncoder encoder_{http::ContentCoding::kIdentity, nullptr};
  std::string coded_head_;  // extra headers of a held response
  std::string coded_body_;
  bool holding_ = false;
  TimerWheel::TimerId timer_ = 0;
  int64_t request_started_ms_ = 0;  // first byte of the request being read
  int64_t last_activity_ms_ = 0;
  int busy_ = 0;
  int sink_calls_ = 0;
  State state_ = State::kReading;
  bool protocol_known_ = false;  // HTTP/1.1, or moved on to HTTP/2
  bool input_ended_ = false;     // a moving persistent exchange's body ended
  bool in_read_requests_ = false;
  int64_t streamed_since_ms_ = 0;  // a persistent exchange began (pre-login)
  bool keep_alive_ = true;
  bool chunked_ = false;
  bool destroy_pending_ = false;
};

}  // namespace pimap::http_binding

#endif  // PIMAP_BINDINGS_HTTP_HTTP_CONNECTION_H_
