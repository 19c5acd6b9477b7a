// An HTTP/1.1 connection of the HTTP binding (http_connection.h), and its
// hand-over to the shard that owns a request's session.
#include "bindings/http/http_connection.h"

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

namespace pimap::http_binding {

namespace {

// Bytes of later requests read while one is served, at most: reading pauses
// beyond (HTTP/1.1 pipelining is allowed, unbounded buffering is not).
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
      PIMAP_LOG(WARNING) << moving_.client
                         << " HTTP hand-over arrived without a descriptor";
      return;
    }
    SSL* ssl = std::exchange(ssl_, nullptr);
    HttpConnection::Arrive(server, slot, ssl, std::move(moving_));
  }
  void Failed(engine::Shard& source, int slot, int error) override {
    std::unique_ptr<HttpHandoff> self(this);
    PIMAP_LOG(WARNING) << moving_.client
                       << " HTTP hand-over to the owner shard failed: errno "
                       << error;
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
  auto* connection = new HttpConnection(server, socket, transport, client);
  connection->preauth_ = gate;
  connection->Start();
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
  connection->parser_ = std::move(moving.parser);
  connection->keep_alive_ = moving.keep_alive;
  // Counted again here, as an IMAP hand-over is: the owner shard's bounds hold
  // for arrivals too. A request of a logged-in session leaves at once (Handle).
  bool refused = false;
  connection->preauth_ = server->AdmitPreAuth(moving.client, &refused);
  if (refused) {
    connection->Start();
    if (moving.replay.has_value()) {
      connection->Close();  // mid-response: no status line can follow
    } else {
      connection->Fail(503, "Too many connections not logged in", true,
                       "Retry-After: 1\r\n");
    }
    return;
  }
  if (moving.replay.has_value()) {
    connection->ResumePersistent(std::move(*moving.replay), moving.input_ended);
  } else {
    connection->Handle(std::move(moving.request));
  }
  connection->Start();
  if (connection->state_ == State::kReading) connection->ReadRequests();
}

HttpConnection::HttpConnection(HttpServer* server, engine::Socket* socket,
                               engine::Transport* transport,
                               const ClientAddress& client)
    : server_(server),
      socket_(socket),
      transport_(transport),
      parser_(server->config().max_body_bytes),
      client_(client) {
  // Chunked request bodies stream into the session (persistent mode).
  parser_.set_stream_chunked_bodies(true);
  server_->Register(this);
  GaugeAdd(server_->shard().counters().http_connections, 1);
  last_activity_ms_ = MonotonicNowMs();
  ArmTimer(server_->config().keepalive_timeout_ms);
}

void HttpConnection::Start() {
  Busy busy(this);
  if (transport_ != nullptr) transport_->SetHandler(this);
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
  state_ = State::kClosing;
  if (HttpSession* session = std::exchange(session_, nullptr)) {
    session->OnSinkGone(this);
  }
  unsent_session_ = nullptr;  // what is queued is still flushed
  if (transport_ != nullptr) {
    transport_->Close();  // flushes what is queued, then closes
    transport_ = nullptr;
  }
  Destroy();
}

void HttpConnection::OnTransportClosed(absl::Status) {
  Busy busy(this);
  transport_ = nullptr;
  if (sink_calls_ > 0) {
    // Failed under a write of the session's (TLS can fail in Write).
    LoseLater();
    return;
  }
  state_ = State::kClosing;
  if (HttpSession* session = std::exchange(session_, nullptr)) {
    session->OnSinkGone(this);
  }
  TellUnsentSession();
  Destroy();
}

// ---- Requests ---------------------------------------------------------------

void HttpConnection::OnTransportData(absl::string_view data) {
  Busy busy(this);
  server_->shard().counters().bytes_in.fetch_add(data.size(),
                                                 std::memory_order_relaxed);
  last_activity_ms_ = MonotonicNowMs();
  if (state_ == State::kClosing) return;
  if (!protocol_known_) {
    protocol_known_ = true;
    if (SpeaksHttp2(data)) {
      // The connection is HTTP/2's from its first byte: hand it over whole.
      engine::Socket* socket = std::exchange(socket_, nullptr);
      engine::Transport* transport = std::exchange(transport_, nullptr);
      state_ = State::kClosing;
      Http2Connection::Start(server_, socket, transport, client_, data,
                             std::exchange(preauth_, nullptr));
      Destroy();
      return;
    }
  }
  parser_.Feed(data);
  if (state_ == State::kMoving) return;  // travels with the connection
  if (request_started_ms_ == 0) {
    // A request starts: its deadline runs from its first byte.
    request_started_ms_ = last_activity_ms_;
    if (state_ == State::kReading) {
      ArmTimer(server_->config().request_timeout_ms);
    }
  }
  if (state_ == State::kReading) {
    ReadRequests();
  } else if (state_ == State::kServing && parser_.in_streamed_body()) {
    PumpBody();
  } else if (parser_.buffered() > kMaxReadAhead && transport_ != nullptr) {
    transport_->SetReading(false);
  }
}

// ALPN "h2" over TLS; on the plain port, HTTP/2 with prior knowledge starts
// with the connection preface (RFC 9113 §3.3), which HTTP/1.1 cannot.
bool HttpConnection::SpeaksHttp2(absl::string_view first) const {
  if (transport_->is_tls()) {
    return static_cast<tls::TlsTransport*>(transport_)->alpn_protocol() == "h2";
  }
  return absl::StartsWith(first, Http2Connection::kPreface.substr(0, 16));
}

void HttpConnection::ReadRequests() {
  // A request answered at once ends its response inside Handle(), and
  // EndBody() asks for the next request: the loop below takes it, rather
  // than one more stack frame per pipelined request.
  if (in_read_requests_) return;
  Busy busy(this);
  in_read_requests_ = true;
  struct Reset {
    bool* flag;
    ~Reset() { *flag = false; }
  } reset{&in_read_requests_};
  while (state_ == State::kReading) {
    http::HttpRequest request;
    switch (parser_.Next(&request)) {
      case http::HttpRequestParser::Result::kNeedMore:
        if (parser_.buffered() == 0) request_started_ms_ = 0;
        if (parser_.ContinueDue() && transport_ != nullptr) {
          // The client waits for this before it sends the body (curl does
          // for large or chunked bodies).
          transport_->Write("HTTP/1.1 100 Continue\r\n\r\n");
        }
        if (transport_ != nullptr) transport_->SetReading(true);
        return;
      case http::HttpRequestParser::Result::kError:
        Fail(parser_.error_status(), parser_.error_reason(), true);
        return;
      case http::HttpRequestParser::Result::kRequest:
        // The next request's clock starts with its first byte (maybe here).
        request_started_ms_ = parser_.buffered() > 0 ? MonotonicNowMs() : 0;
        if (request.streaming && parser_.ContinueDue() &&
            transport_ != nullptr) {
          transport_->Write("HTTP/1.1 100 Continue\r\n\r\n");
        }
        Handle(std::move(request));
        break;
    }
  }
}

void HttpConnection::Handle(http::HttpRequest request) {
  Busy busy(this);
  CounterAdd(server_->shard().counters().http_requests);
  keep_alive_ = request.keep_alive;
  const bool tls = transport_ != nullptr && transport_->is_tls();
  RequestRoute route = server_->Route(request, tls);
  switch (route.kind) {
    case RequestRoute::Kind::kFail:
      Fail(route.status, route.message, route.close, route.extra_headers);
      return;
    case RequestRoute::Kind::kDocument:
      if (parser_.in_streamed_body()) keep_alive_ = false;
      if (transport_ != nullptr) {
        transport_->Write(http::WholeResponse(200, route.extra_headers,
                                              route.content_type, route.body,
                                              !keep_alive_));
      }
      if (!keep_alive_) Close();
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
  chunked_ = false;
  if (request.streaming) {
    // Persistent mode: the response opens now and lines go out one chunk
    // each; coding them would cost a frame per line, so they go uncoded.
    coding_ = http::ContentCoding::kIdentity;
    streamed_since_ms_ = MonotonicNowMs();
    ArmTimer(server_->config().request_timeout_ms);
    if (!route.session->Open(this, false)) {
      session_ = nullptr;
      state_ = State::kReading;
      Fail(429, "Another request of this session is open", true,
           "Retry-After: 1\r\n");
      return;
    }
    PumpBody();
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
  // A refused streamed request's body would have to be read to its end
  // first: the connection closes instead.
  if (close || parser_.in_streamed_body()) keep_alive_ = false;
  if (transport_ != nullptr) {
    transport_->Write(http::WholeResponse(status, extra_headers, "text/plain",
                                          absl::StrCat(message, "\n"),
                                          !keep_alive_));
  }
  if (!keep_alive_) Close();
}

// ---- The session's response -------------------------------------------------

void HttpConnection::WriteHead(absl::string_view extra_headers,
                               int64_t length) {
  SinkCall call(this);
  if (transport_ == nullptr) return;
  encoder_ = http::ResponseEncoder(coding_, &server_->compressor());
  if (coding_ == http::ContentCoding::kIdentity) {
    WriteHeadNow(extra_headers, length);
    return;
  }
  std::string headers = absl::StrCat(
      extra_headers, "Content-Encoding: ", http::ContentCodingName(coding_),
      "\r\nVary: Accept-Encoding\r\n");
  if (length >= 0) {
    holding_ = true;
    coded_head_ = std::move(headers);
    coded_body_.clear();
    return;
  }
  WriteHeadNow(headers, -1);
}

void HttpConnection::WriteHeadNow(absl::string_view extra_headers,
                                  int64_t length) {
  std::string out;
  http::AppendStatusLine(&out, 200);
  absl::StrAppend(&out,
                  "Content-Type: application/vnd.pimap\r\n"
                  "Cache-Control: no-store\r\n",
                  extra_headers);
  chunked_ = length < 0;
  if (chunked_) {
    out += "Transfer-Encoding: chunked\r\n";
  } else {
    absl::StrAppend(&out, "Content-Length: ", length, "\r\n");
  }
  if (!keep_alive_) out += "Connection: close\r\n";
  out += "\r\n";
  transport_->Write(std::move(out));
}

void HttpConnection::WriteBody(absl::string_view plain) {
  SinkCall call(this);
  if (transport_ == nullptr) return;
  std::string coded;
  absl::string_view bytes = plain;
  if (coding_ != http::ContentCoding::kIdentity) {
    // Each burst is decodable at once (a long poll's event is not held).
    coded = encoder_.Encode(plain);
    if (holding_) {
      coded_body_ += coded;
      return;
    }
    bytes = coded;
  }
  if (bytes.empty()) return;
  if (chunked_) {
    std::string chunk;
    http::AppendChunk(&chunk, bytes);
    transport_->Write(std::move(chunk));
  } else {
    transport_->Write(bytes);
  }
  if (transport_->PendingOutput() > kMaxPendingOutput) {
    PIMAP_LOG(INFO) << client_
                    << " HTTP client does not read its response; closing";
    LoseLater();
  }
}

// The response can no longer be carried while the session is writing it (a
// call of the session's is on the stack): telling the session now would
// re-enter it, and freeing this would pull the sink from under it. The event
// loop does both, a moment later; until then this is a sink that drops all.
void HttpConnection::LoseLater() {
  state_ = State::kClosing;
  if (transport_ != nullptr) {
    transport_->Abort();
    transport_ = nullptr;
  }
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
  if (state_ != State::kServing) return;
  Busy busy(this);  // outlives `call`: the last to go may free this
  SinkCall call(this);
  if (coding_ != http::ContentCoding::kIdentity && transport_ != nullptr) {
    std::string tail = encoder_.Finish();
    if (holding_) {
      holding_ = false;
      coded_body_ += tail;
      WriteHeadNow(coded_head_, static_cast<int64_t>(coded_body_.size()));
      transport_->Write(std::exchange(coded_body_, {}));
    } else if (!tail.empty()) {
      std::string chunk;
      http::AppendChunk(&chunk, tail);
      transport_->Write(std::move(chunk));
    }
  }
  if (chunked_ && transport_ != nullptr) transport_->Write(http::kLastChunk);
  // Until the response has left, a broken connection must still reach the
  // session: the device's next request would acknowledge what it never got.
  if (transport_ != nullptr && transport_->PendingOutput() > 0) {
    unsent_session_ = session_;
    unsent_alive_ = session_->liveness();
  }
  session_ = nullptr;
  coding_ = http::ContentCoding::kIdentity;
  // A persistent exchange the session ended (LOGOUT, a takeover) before its
  // request body ended: the rest of that body cannot be told from a next
  // request. The connection closes after the response.
  if (parser_.in_streamed_body()) keep_alive_ = false;
  state_ = State::kReading;
  last_activity_ms_ = MonotonicNowMs();
  if (!keep_alive_) {
    Close();
    return;
  }
  ArmTimer(request_started_ms_ != 0 ? server_->config().request_timeout_ms
                                    : server_->config().keepalive_timeout_ms);
  ReadRequests();  // a pipelined request may be waiting
}

// ---- Persistent mode --------------------------------------------------------

// Decoded chunks of a streamed body go to the session as they arrive; past
// kMaxReadAhead of them not yet taken, reading pauses until the session
// has taken them (OnInputConsumed).
void HttpConnection::PumpBody() {
  Busy busy(this);
  while (state_ == State::kServing && parser_.in_streamed_body()) {
    std::string data;
    const http::HttpRequestParser::BodyResult r = parser_.NextBody(&data);
    if (r == http::HttpRequestParser::BodyResult::kError) {
      // The response is open already: no status can be said any more.
      PIMAP_LOG(INFO) << client_ << " HTTP streamed request body broken: "
                      << parser_.error_reason();
      Close();
      return;
    }
    HttpSession* session = session_;
    if (!data.empty() && session != nullptr) session->Append(data);
    if (r == http::HttpRequestParser::BodyResult::kEnd) {
      if (session_ != nullptr) {
        session_->EndInput();
      } else if (state_ == State::kMoving) {
        input_ended_ = true;  // the exchange moved at this very login
      }
      break;
    }
    if (r == http::HttpRequestParser::BodyResult::kNeedMore) break;
  }
  if (transport_ == nullptr || state_ != State::kServing) return;
  const bool backlog =
      session_ != nullptr && session_->input_backlog() > kMaxReadAhead;
  transport_->SetReading(!backlog);
}

void HttpConnection::OnInputConsumed() {
  if (transport_ != nullptr && state_ == State::kServing) {
    transport_->SetReading(true);
  }
}

// Arrived from another shard in the middle of a persistent exchange: its
// response is open (chunked); a new session starts with the login.
void HttpConnection::ResumePersistent(std::string replay, bool input_ended) {
  Busy busy(this);
  auto* session = new HttpSession(server_, transport_->is_tls(), false);
  state_ = State::kServing;
  session_ = session;
  chunked_ = true;
  if (!session->Open(this, true)) {
    Close();
    return;
  }
  session->Append(replay);
  if (input_ended && session_ != nullptr) session_->EndInput();
  PumpBody();
}

size_t HttpConnection::PendingOutput() const {
  return transport_ == nullptr ? 0 : transport_->PendingOutput();
}

void HttpConnection::OnTransportDrained() {
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
  moving.keep_alive = keep_alive_;
  moving.client = client_;
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
        payload->parser = std::move(parser_);
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
        PIMAP_LOG(INFO)
            << client_ << " HTTP hand-over did not complete (peer not reading)";
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

// One timer per connection: the request deadline while a request is being
// read, the keep-alive limit while none is; a served request (a long poll)
// has the session's own limits.
void HttpConnection::OnTimer() {
  Busy busy(this);
  const HttpServerConfig& config = server_->config();
  const int64_t now = MonotonicNowMs();
  if (state_ == State::kMoving || state_ == State::kClosing) return;
  if (state_ == State::kReading && request_started_ms_ != 0) {
    const int64_t left = request_started_ms_ + config.request_timeout_ms - now;
    if (left <= 0) {
      Fail(408, "Request not received in time", true);
      return;
    }
    ArmTimer(left);
    return;
  }
  if (state_ == State::kReading) {
    const int64_t left = last_activity_ms_ + config.keepalive_timeout_ms - now;
    if (left <= 0) {
      Close();
      return;
    }
    ArmTimer(std::min(left, config.request_timeout_ms));
    return;
  }
  if (parser_.in_streamed_body() && session_ != nullptr) {
    // A persistent exchange has no end of its own: before login it gets the
    // request deadline (a slow sender cannot hold a connection), after it
    // the session's idle limit, counted from the device's last bytes.
    const bool logged_in = session_->authenticated();
    const int64_t left =
        logged_in ? last_activity_ms_ + config.session.session_idle_ms - now
                  : streamed_since_ms_ + config.request_timeout_ms - now;
    if (left <= 0) {
      PIMAP_LOG(INFO) << client_
                      << " HTTP persistent exchange idle too long; closing";
      Close();
      return;
    }
    ArmTimer(std::min(left, config.keepalive_timeout_ms));
    return;
  }
  ArmTimer(config.keepalive_timeout_ms);
}

}  // namespace pimap::http_binding
