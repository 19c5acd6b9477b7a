// An HTTP/1.1 connection of the HTTP binding (http_connection.h), and its
// hand-over to the shard that owns a request's session.
#include "bindings/http/http_connection.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bindings/http/http2_connection.h"
#include "bindings/http/http_server.h"
#include "bindings/tls/detach.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/preauth_gate.h"
#include "core/engine/handoff.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/http/response.h"
#include "core/http/server_connection.h"

namespace pimap::http_binding {

namespace {

// Bytes of later requests read while one is served, and of a streamed body
// the session has not taken, at most: reading pauses beyond (HTTP/1.1
// pipelining is allowed, unbounded buffering is not).
constexpr size_t kMaxReadAhead = 64 * 1024;
// A client that does not read its response: past this much queued output the
// connection is dropped (the session's own backpressure keeps output near
// 256 KiB while the client reads).
constexpr size_t kMaxPendingOutput = 8 << 20;
// A hand-over whose last send never completes (the peer does not read) must
// not pin the connection between shards.
constexpr int64_t kHandoverTimeoutMs = 5000;

class HttpHandoff final : public engine::Handoff {
 public:
  HttpHandoff(SSL* ssl, HttpConnection::Moving moving)
      : ssl_(ssl), moving_(std::move(moving)) {}
  ~HttpHandoff() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  void Arrive(engine::Shard& shard, int slot) override {
    std::unique_ptr<HttpHandoff> self(this);
    HttpServer* server = shard.services().Find<HttpServer>();
    if (slot < 0 || server == nullptr) {
      PIMAP_LOG(WARNING).Conn(moving_.client)
          << "HTTP hand-over arrived without a descriptor";
      return;
    }
    SSL* ssl = std::exchange(ssl_, nullptr);
    HttpConnection::Arrive(server, slot, ssl, std::move(moving_));
  }
  void Failed(engine::Shard& source, int slot, int error) override {
    std::unique_ptr<HttpHandoff> self(this);
    PIMAP_LOG(WARNING).Conn(moving_.client)
        << "HTTP hand-over to the owner shard failed: errno " << error;
    engine::Socket::Adopt(&source, slot)->Abort();
  }

 private:
  SSL* ssl_;
  HttpConnection::Moving moving_;
};

}  // namespace

// ---- Life ------------------------------------------------------------------

namespace {

// Refused at accept: a plain-text 503 where the port speaks plain HTTP; where
// it expects a TLS handshake, clear text would only confuse the client, so the
// connection just closes.
void RefuseAtAccept(engine::Socket* socket, bool tls, absl::string_view why) {
  if (!tls) {
    socket->Write(http::WholeResponse(503, "Retry-After: 1\r\n", "text/plain",
                                      absl::StrCat(why, "\n"), true));
  }
  socket->Close();
}

}  // namespace

void HttpConnection::Accept(HttpServer* server, int slot, bool tls,
                            const ClientAddress& client) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  if (server->connection_count() >= server->config().max_connections) {
    RefuseAtAccept(socket, tls, "Too many connections");
    return;
  }
  bool refused = false;
  PreAuthGate* gate = server->AdmitPreAuth(client, &refused);
  if (refused) {
    RefuseAtAccept(socket, tls, "Too many connections not logged in");
    return;
  }
  engine::Transport* transport = socket;
  if (tls) {
    SSL* ssl = server->tls()->NewServerSsl();
    if (ssl == nullptr) {
      socket->Abort();
      return;
    }
    transport = new tls::TlsTransport(socket, ssl);
  }
  PIMAP_LOG(DEBUG).Conn(client).Event("conn.open")
      << (tls ? "HTTPS" : "HTTP") << " connection to "
      << client.local.ToString();
  auto* connection = new HttpConnection(server, socket, transport, client);
  connection->preauth_ = gate;
  Busy busy(connection);
  connection->http_->Start();
}

void HttpConnection::Arrive(HttpServer* server, int slot, SSL* ssl,
                            Moving moving) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  engine::Transport* transport = socket;
  if (ssl != nullptr) transport = new tls::TlsTransport(socket, ssl);
  auto* connection =
      new HttpConnection(server, socket, transport, moving.client);
  Busy busy(connection);
  connection->protocol_known_ = true;
  connection->http_->Resume({std::move(moving.parser), moving.keep_alive});
  // Counted again here, as an IMAP hand-over is: the owner shard's bounds hold
  // for arrivals too. A request of a logged-in session leaves at once
  // (OnRequest).
  bool refused = false;
  connection->preauth_ = server->AdmitPreAuth(moving.client, &refused);
  if (refused && moving.replay.has_value()) {
    connection->Close();  // mid-response: no status line can follow
    return;
  }
  if (refused) {
    connection->refuse_arrival_ = true;  // the carried request gets 503
    connection->http_->Serve(std::move(moving.request));
  } else if (moving.replay.has_value()) {
    connection->ResumePersistent(std::move(*moving.replay), moving.input_ended);
  } else {
    connection->http_->Serve(std::move(moving.request));
  }
  // Reads what came along after the request (or goes on with its body).
  if (connection->http_ != nullptr) connection->http_->Start();
}

HttpConnection::HttpConnection(HttpServer* server, engine::Socket* socket,
                               engine::Transport* transport,
                               const ClientAddress& client)
    : server_(server),
      http_(nullptr),
      socket_(socket),
      transport_(transport),
      client_(client) {
  http_ = new http::Http1Connection(transport, &server_->shard().timers(), this,
                                    server_->http1_config());
  server_->Register(this);
  GaugeAdd(server_->shard().counters().http_connections, 1);
  last_activity_ms_ = MonotonicNowMs();
}

http::ServerConnectionConfig HttpConnection::CoreConfig(HttpServer* server) {
  const HttpServerConfig& config = server->config();
  http::ServerConnectionConfig http;
  http.max_body_bytes = config.max_body_bytes;
  // Chunked request bodies stream into the session (persistent mode).
  http.stream_chunked_bodies = true;
  http.idle_timeout_ms = config.keepalive_timeout_ms;
  http.request_timeout_ms = config.request_timeout_ms;
  // A client that does not read is dropped (WriteBody), not paused.
  http.max_pending_output = SIZE_MAX;
  http.max_read_ahead = kMaxReadAhead;
  http.compressor = &server->compressor();
  return http;
}

HttpConnection::~HttpConnection() {
  LeavePreAuth();
  if (timer_ != 0) server_->shard().timers().Cancel(timer_);
  server_->Unregister(this);
  GaugeAdd(server_->shard().counters().http_connections, -1);
}

void HttpConnection::LeavePreAuth() {
  if (preauth_ == nullptr) return;
  preauth_->Leave(client_.peer);
  preauth_ = nullptr;
}

// Out of line: deletion must wait for the outermost call to unwind.
[[gnu::noinline]] HttpConnection::Busy::~Busy() {
  if (--c_->busy_ == 0 && c_->destroy_pending_) delete c_;
}

[[gnu::noinline]] void HttpConnection::Destroy() {
  if (destroy_pending_) return;
  destroy_pending_ = true;
  if (busy_ == 0) delete this;
}

void HttpConnection::Shutdown() {
  Busy busy(this);
  // An open response gets the session's goodbye and ends first.
  if (session_ != nullptr) session_->End("Server shutting down");
  Close();
}

void HttpConnection::Close() {
  if (state_ == State::kClosing) return;
  Busy busy(this);
  if (http_ != nullptr) {
    http_->Close();  // flushes what is queued, then closes; OnClosed follows
    return;
  }
  state_ = State::kClosing;
  if (HttpSession* session = std::exchange(session_, nullptr)) {
    session->OnSinkGone(this);
  }
  unsent_session_ = nullptr;
  Destroy();
}

void HttpConnection::OnClosed(http::ServerConnection&, bool output_lost) {
  Busy busy(this);
  http_ = nullptr;
  transport_ = nullptr;
  socket_ = nullptr;
  if (losing_) return;  // LoseLater's timer tells the session
  if (output_lost && sink_calls_ > 0) {
    // Failed under a write of the session's (TLS can fail in Write).
    LoseLater();
    return;
  }
  state_ = State::kClosing;
  PIMAP_LOG(DEBUG).Conn(client_).Event("conn.close")
      << "HTTP connection closed";
  if (HttpSession* session = std::exchange(session_, nullptr)) {
    session->OnSinkGone(this);
  }
  if (output_lost) {
    TellUnsentSession();
  } else {
    unsent_session_ = nullptr;  // closed here: what is queued still leaves
  }
  Destroy();
}

// ---- Requests ---------------------------------------------------------------

void HttpConnection::OnBytes(http::ServerConnection&, absl::string_view data) {
  Busy busy(this);
  server_->shard().counters().bytes_in.fetch_add(data.size(),
                                                 std::memory_order_relaxed);
  last_activity_ms_ = MonotonicNowMs();
  if (protocol_known_) return;
  protocol_known_ = true;
  if (!SpeaksHttp2(data)) return;
  // The connection is HTTP/2's from its first byte: hand it over whole.
  engine::Socket* socket = std::exchange(socket_, nullptr);
  engine::Transport* transport = std::exchange(transport_, nullptr);
  std::exchange(http_, nullptr)->Release();
  state_ = State::kClosing;
  Http2Connection::Start(server_, socket, transport, client_, data,
                         std::exchange(preauth_, nullptr));
  Destroy();
}

// ALPN "h2" over TLS; on the plain port, HTTP/2 with prior knowledge starts
// with the connection preface (RFC 9113 §3.3), which HTTP/1.1 cannot.
bool HttpConnection::SpeaksHttp2(absl::string_view first) const {
  if (transport_->is_tls()) {
    return static_cast<tls::TlsTransport*>(transport_)->alpn_protocol() == "h2";
  }
  return absl::StartsWith(first, Http2Connection::kPreface.substr(0, 16));
}

void HttpConnection::OnRequestError(http::ServerConnection&, int status,
                                    absl::string_view reason, bool answered) {
  if (answered) {
    CounterAdd(server_->shard().counters().http_errors);
  } else {
    PIMAP_LOG(INFO).Conn(client_)
        << "HTTP streamed request body broken: " << reason;
  }
}

void HttpConnection::OnRequest(http::ServerConnection&,
                               http::HttpRequest request) {
  Busy busy(this);
  if (refuse_arrival_) {
    refuse_arrival_ = false;
    Fail(503, "Too many connections not logged in", true, "Retry-After: 1\r\n");
    return;
  }
  CounterAdd(server_->shard().counters().http_requests);
  RequestRoute route = server_->Route(request, http_->is_tls());
  switch (route.kind) {
    case RequestRoute::Kind::kFail:
      Fail(route.status, route.message, route.close, route.extra_headers);
      return;
    case RequestRoute::Kind::kDocument:
      http_->Respond(200, route.extra_headers, route.content_type, route.body);
      return;
    case RequestRoute::Kind::kHandOver:
      HandOver(route.owner, std::move(request));
      return;
    case RequestRoute::Kind::kServe:
      break;
  }
  state_ = State::kServing;
  session_ = route.session;
  if (route.session->authenticated()) LeavePreAuth();
  coding_ = route.coding;
  if (request.streaming) {
    // Persistent mode: the response opens now and lines go out one chunk
    // each; coding them would cost a frame per line, so they go uncoded.
    // Its body follows (OnRequestBody).
    coding_ = http::ContentCoding::kIdentity;
    streamed_since_ms_ = MonotonicNowMs();
    ArmTimer(server_->config().request_timeout_ms);
    if (!route.session->Open(this, false)) {
      session_ = nullptr;
      state_ = State::kReading;
      Fail(429, "Another request of this session is open", true,
           "Retry-After: 1\r\n");
    }
    return;
  }
  if (!route.session->Submit(std::move(request.body), this)) {
    session_ = nullptr;
    state_ = State::kReading;
    Fail(429, "Too many requests of this session are waiting", false,
         "Retry-After: 1\r\n");
  }
}

void HttpConnection::Fail(int status, absl::string_view message, bool close,
                          absl::string_view extra_headers) {
  CounterAdd(server_->shard().counters().http_errors);
  if (http_ == nullptr) return;
  // (A refused streamed request's body would have to be read to its end
  // first: the connection closes instead, as after any answer given before
  // such a body ended.)
  if (close) http_->CloseAfterResponse();
  http_->Respond(status, extra_headers, "text/plain",
                 absl::StrCat(message, "\n"));
}

// ---- The session's response -------------------------------------------------

void HttpConnection::WriteHead(absl::string_view extra_headers,
                               int64_t length) {
  SinkCall call(this);
  if (http_ == nullptr) return;
  http_->WriteHead(200,
                   absl::StrCat("Content-Type: application/vnd.pimap\r\n"
                                "Cache-Control: no-store\r\n",
                                extra_headers),
                   length, coding_);
}

void HttpConnection::WriteBody(absl::string_view plain) {
  SinkCall call(this);
  if (http_ == nullptr) return;
  http_->WriteBody(plain);
  if (http_ != nullptr && http_->PendingOutput() > kMaxPendingOutput) {
    PIMAP_LOG(INFO).Conn(client_)
        << "HTTP client does not read its response; closing";
    LoseLater();
  }
}

// The response can no longer be carried while the session is writing it (a
// call of the session's is on the stack): telling the session now would
// re-enter it, and freeing this would pull the sink from under it. The event
// loop does both, a moment later; until then this is a sink that drops all.
void HttpConnection::LoseLater() {
  state_ = State::kClosing;
  losing_ = true;
  if (http_ != nullptr) http_->Abort();  // OnClosed: nothing more to do
  http_ = nullptr;
  transport_ = nullptr;
  socket_ = nullptr;
  TimerWheel& timers = server_->shard().timers();
  if (timer_ != 0) timers.Cancel(timer_);
  std::weak_ptr<bool> alive;
  if (session_ != nullptr) alive = session_->liveness();
  timer_ = timers.Schedule(1, [this, alive] {
    timer_ = 0;
    Busy busy(this);
    HttpSession* session = std::exchange(session_, nullptr);
    if (session != nullptr && !alive.expired()) session->OnSinkGone(this);
    TellUnsentSession();
    Destroy();
  });
}

void HttpConnection::EndBody() {
  if (state_ != State::kServing || http_ == nullptr) return;
  Busy busy(this);  // outlives `call`: the last to go may free this
  SinkCall call(this);
  ending_ = session_;
  // The core writes the coded tail or the last chunk, tells
  // OnResponseComplete, then reads a pipelined request (or closes).
  http_->EndResponse();
}

// The session's response has its last bytes queued: until they have left, a
// broken connection must still reach the session (the device's next request
// would acknowledge what it never got).
void HttpConnection::OnResponseComplete(http::ServerConnection& connection) {
  HttpSession* ending = std::exchange(ending_, nullptr);
  if (ending == nullptr) return;  // an answer of HTTP's own
  if (connection.PendingOutput() > 0) {
    unsent_session_ = ending;
    unsent_alive_ = ending->liveness();
  }
  session_ = nullptr;
  coding_ = http::ContentCoding::kIdentity;
  state_ = State::kReading;
  last_activity_ms_ = MonotonicNowMs();
  // The core's deadlines take over until the next request is served.
  if (timer_ != 0) server_->shard().timers().Cancel(timer_);
  timer_ = 0;
}

// ---- Persistent mode --------------------------------------------------------

// Decoded chunks of a streamed body go to the session as they arrive; past
// kMaxReadAhead of them not yet taken, reading pauses until the session
// has taken them (OnInputConsumed).
void HttpConnection::OnRequestBody(http::ServerConnection&,
                                   absl::string_view data, bool end) {
  Busy busy(this);
  HttpSession* session = session_;
  if (!data.empty() && session != nullptr) session->Append(data);
  if (end) {
    if (session_ != nullptr) {
      session_->EndInput();
    } else if (state_ == State::kMoving) {
      input_ended_ = true;  // the exchange moved at this very login
    }
  }
  if (http_ == nullptr || state_ != State::kServing) return;
  const bool backlog =
      session_ != nullptr && session_->input_backlog() > kMaxReadAhead;
  http_->SetReading(!backlog);
}

void HttpConnection::OnInputConsumed() {
  if (http_ != nullptr && state_ == State::kServing) http_->SetReading(true);
}

// Arrived from another shard in the middle of a persistent exchange: its
// response is open (chunked); a new session starts with the login.
void HttpConnection::ResumePersistent(std::string replay, bool input_ended) {
  Busy busy(this);
  auto* session = new HttpSession(server_, http_->is_tls(), false);
  state_ = State::kServing;
  session_ = session;
  // The pre-login deadline of the exchange counts from here: unset, it read
  // as long past, and OnTimer closed the exchange if the login took longer
  // than one keep-alive period.
  streamed_since_ms_ = MonotonicNowMs();
  last_activity_ms_ = streamed_since_ms_;
  http_->ResumeResponse();
  ArmTimer(server_->config().keepalive_timeout_ms);
  if (!session->Open(this, true)) {
    Close();
    return;
  }
  session->Append(replay);
  if (input_ended && session_ != nullptr) session_->EndInput();
  // The rest of its body is read at Start().
}

size_t HttpConnection::PendingOutput() const {
  return http_ == nullptr ? 0 : http_->PendingOutput();
}

void HttpConnection::OnDrained(http::ServerConnection&) {
  Busy busy(this);
  unsent_session_ = nullptr;  // everything written has left
  if (session_ != nullptr) session_->OnSinkDrained();
}

// The connection broke with a finished response not yet sent whole: its
// session ends (a LOGIN resumes it and replays what was not acknowledged).
void HttpConnection::TellUnsentSession() {
  HttpSession* session = std::exchange(unsent_session_, nullptr);
  if (session != nullptr && !unsent_alive_.expired()) {
    session->OnSinkGone(this);
  }
}

// ---- Hand-over --------------------------------------------------------------

void HttpConnection::HandOver(int owner, http::HttpRequest request) {
  Moving moving;
  moving.request = std::move(request);
  HandOver(owner, std::move(moving));
}

void HttpConnection::MoveTo(int owner, std::string replay) {
  // The session forgot this sink; the response stays open (chunked) and
  // goes on from the owner shard.
  session_ = nullptr;
  Moving moving;
  moving.replay = std::move(replay);
  HandOver(owner, std::move(moving));
}

void HttpConnection::HandOver(int owner, Moving moving) {
  state_ = State::kMoving;
  CounterAdd(server_->shard().counters().http_handovers);
  moving.keep_alive = http_->keep_alive();
  moving.client = client_;
  // Bytes that still arrive stay in the parser, which travels whole.
  http_->Suspend();
  auto payload = std::make_shared<Moving>(std::move(moving));
  HttpServer* server = server_;
  TimerWheel& timers = server_->shard().timers();
  if (timer_ != 0) timers.Cancel(timer_);
  timer_ = tls::DetachForHandOver(
      socket_, transport_, timers, kHandoverTimeoutMs,
      [this, payload, server, owner](int slot, SSL* ssl) {
        timer_ = 0;
        // The parser travels whole: bytes read ahead, a streamed body's
        // state.
        payload->parser = std::exchange(http_, nullptr)->Release().parser;
        payload->input_ended = input_ended_;
        auto handoff = std::make_unique<HttpHandoff>(ssl, std::move(*payload));
        engine::Shard& shard = server->shard();
        socket_ = nullptr;
        transport_ = nullptr;
        state_ = State::kClosing;
        Destroy();
        shard.HandOver(slot, owner, std::move(handoff));
      },
      [this] {
        timer_ = 0;
        Busy busy(this);
        PIMAP_LOG(INFO).Conn(client_)
            << "HTTP hand-over did not complete (peer not reading)";
        std::exchange(http_, nullptr)->Release();  // the transport is gone
        transport_ = nullptr;
        socket_ = nullptr;
        state_ = State::kClosing;
        Destroy();
      });
}

// ---- Deadlines --------------------------------------------------------------

void HttpConnection::ArmTimer(int64_t delay_ms) {
  TimerWheel& timers = server_->shard().timers();
  if (timer_ != 0) timers.Cancel(timer_);
  timer_ = timers.Schedule(std::max<int64_t>(delay_ms, 1), [this] {
    timer_ = 0;
    OnTimer();
  });
}

// A served request (a long poll) has the session's own limits; the core
// connection keeps the request and keep-alive deadlines. A persistent
// exchange has no end of its own: before login it gets the request deadline
// (a slow sender cannot hold a connection), after it the session's idle
// limit, counted from the device's last bytes.
void HttpConnection::OnTimer() {
  Busy busy(this);
  const HttpServerConfig& config = server_->config();
  if (state_ != State::kServing || http_ == nullptr) return;
  if (http_->request_body_open() && session_ != nullptr) {
    const int64_t now = MonotonicNowMs();
    const bool logged_in = session_->authenticated();
    const int64_t left =
        logged_in ? last_activity_ms_ + config.session.session_idle_ms - now
                  : streamed_since_ms_ + config.request_timeout_ms - now;
    if (left <= 0) {
      PIMAP_LOG(INFO).Conn(client_)
          << "HTTP persistent exchange idle too long; closing";
      Close();
      return;
    }
    ArmTimer(std::min(left, config.keepalive_timeout_ms));
    return;
  }
  ArmTimer(config.keepalive_timeout_ms);
}

}  // namespace pimap::http_binding
