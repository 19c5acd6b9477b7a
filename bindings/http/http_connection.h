// One HTTP/1.1 connection of the HTTP binding, over a plain socket or TLS: the
// P-IMAP handler (http::ServerHandler) of the gateway's one HTTP/1.1 server
// connection (core/http/http1_connection.h), which reads the requests and
// writes the responses. This answers what is P-IMAP's: it routes each request
// (HttpServer::Route: path, method, media type, coding, load, the session its
// cookie names), hands each POST to that session (http_session.h), whose
// response it carries as the session's ResponseSink, and keeps the persistent
// exchange's deadlines. A request for a session (or a login) owned by another
// shard moves the connection there first; a connection whose first bytes speak
// HTTP/2 goes to Http2Connection.
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
#include "core/http/http1_connection.h"
#include "core/http/request_parser.h"
#include "core/http/server_connection.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::http_binding {

class HttpConnection final : public HttpServerConnection,
                             private http::ServerHandler,
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

  // What the core connection is told of the server's settings.
  static http::ServerConnectionConfig CoreConfig(HttpServer* server);

 private:
  enum class State : uint8_t { kReading, kServing, kMoving, kClosing };

  HttpConnection(HttpServer* server, engine::Socket* socket,
                 engine::Transport* transport, const ClientAddress& client);
  ~HttpConnection();

  // http::ServerHandler
  void OnBytes(http::ServerConnection&, absl::string_view data) override;
  void OnRequest(http::ServerConnection&, http::HttpRequest request) override;
  void OnRequestBody(http::ServerConnection&, absl::string_view data,
                     bool end) override;
  void OnRequestError(http::ServerConnection&, int status,
                      absl::string_view reason, bool answered) override;
  void OnResponseComplete(http::ServerConnection&) override;
  void OnDrained(http::ServerConnection&) override;
  void OnClosed(http::ServerConnection&, bool output_lost) override;
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

  bool SpeaksHttp2(absl::string_view first) const;
  // An HTTP-level answer to the request being served; `close` ends the
  // connection after it.
  void Fail(int status, absl::string_view message, bool close,
            absl::string_view extra_headers = "");
  void HandOver(int owner, http::HttpRequest request);
  void HandOver(int owner, Moving moving);
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
  // The core connection; null once it closed, was lost or left.
  http::Http1Connection* http_;
  // Its transport and socket, for ALPN, HTTP/2 and a hand-over (the core
  // connection owns them; null with it).
  engine::Socket* socket_;
  engine::Transport* transport_;
  ClientAddress client_;
  HttpSession* session_ = nullptr;  // whose response is being written
  HttpSession* ending_ = nullptr;   // whose response EndBody() is ending
  PreAuthGate* preauth_ = nullptr;  // counted there while not logged in
  // Whose finished response is still being sent (OnDrained clears).
  HttpSession* unsent_session_ = nullptr;
  std::weak_ptr<bool> unsent_alive_;
  // The coding of the session's response (the core codes it).
  http::ContentCoding coding_ = http::ContentCoding::kIdentity;
  // A persistent exchange's deadline; a hand-over's; a lost sink's.
  TimerWheel::TimerId timer_ = 0;
  int64_t last_activity_ms_ = 0;
  int busy_ = 0;
  int sink_calls_ = 0;
  State state_ = State::kReading;
  bool protocol_known_ = false;  // HTTP/1.1, or moved on to HTTP/2
  bool input_ended_ = false;     // a moving persistent exchange's body ended
  bool refuse_arrival_ = false;  // arrived past the pre-auth bound: 503
  bool losing_ = false;          // LoseLater: its timer tells the session
  int64_t streamed_since_ms_ = 0;  // a persistent exchange began (pre-login)
  bool destroy_pending_ = false;
};

}  // namespace pimap::http_binding

#endif  // PIMAP_BINDINGS_HTTP_HTTP_CONNECTION_H_
