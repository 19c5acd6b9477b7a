// An HTTP/2 connection of the HTTP binding (http2_connection.h): nghttp2 in
// memory mode over the connection's transport, streams as requests, and the
// hand-over of the whole connection to its sessions' shard.
#include "bindings/http/http2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bindings/http/http2_stream.h"
#include "bindings/tls/detach.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/preauth_gate.h"
#include "core/engine/handoff.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::http_binding {

namespace {

// Requests in flight per connection (SETTINGS_MAX_CONCURRENT_STREAMS); a
// session takes a few at most (HttpSessionConfig::max_exchanges).
constexpr uint32_t kMaxConcurrentStreams = 8;
// Header block of one request: bytes (HPACK-decoded, +32 per field as
// RFC 9113 §6.5.2 counts them) and fields.
constexpr size_t kMaxHeaderListBytes = 16 * 1024;
constexpr size_t kMaxHeaderFields = 100;
// nghttp2 is asked for frames only while less than this waits in the
// transport: a client that does not read cannot grow our memory.
constexpr size_t kMaxQueuedOutput = 256 * 1024;
// A hand-over whose last send never completes must not pin the connection.
constexpr int64_t kHandoverTimeoutMs = 5000;

}  // namespace

// ---- nghttp2 callbacks ------------------------------------------------------

struct Http2Callbacks {
  static Http2Connection* Self(void* user_data) {
    return static_cast<Http2Connection*>(user_data);
  }
  static int BeginHeaders(nghttp2_session*, const nghttp2_frame* frame,
                          void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    return Self(user_data)->OnBeginHeaders(frame->hd.stream_id);
  }
  static int Header(nghttp2_session*, const nghttp2_frame* frame,
                    const uint8_t* name, size_t name_length,
                    const uint8_t* value, size_t value_length, uint8_t,
                    void* user_data) {
    return Self(user_data)->OnHeader(
        frame->hd.stream_id,
        absl::string_view(reinterpret_cast<const char*>(name), name_length),
        absl::string_view(reinterpret_cast<const char*>(value), value_length));
  }
  static int DataChunk(nghttp2_session*, uint8_t, int32_t stream_id,
                       const uint8_t* data, size_t length, void* user_data) {
    return Self(user_data)->OnData(
        stream_id,
        absl::string_view(reinterpret_cast<const char*>(data), length));
  }
  static int FrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                       void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
      return 0;
    }
    return Self(user_data)->OnFrame(
        frame->hd.stream_id, frame->hd.type == NGHTTP2_HEADERS,
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
  }
  static int StreamClose(nghttp2_session*, int32_t stream_id, uint32_t,
                         void* user_data) {
    return Self(user_data)->OnStreamClose(stream_id);
  }

  static const nghttp2_session_callbacks* Get() {
    static const nghttp2_session_callbacks* callbacks = [] {
      nghttp2_session_callbacks* cb = nullptr;
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_on_begin_headers_callback(cb, BeginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(cb, Header);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, DataChunk);
      nghttp2_session_callbacks_set_on_frame_recv_callback(cb, FrameRecv);
      nghttp2_session_callbacks_set_on_stream_close_callback(cb, StreamClose);
      return cb;
    }();
    return callbacks;
  }
};

// ---- Hand-over --------------------------------------------------------------

class Http2Connection::Handoff final : public engine::Handoff {
 public:
  Handoff(Http2Connection* connection, SSL* ssl)
      : connection_(connection), ssl_(ssl) {}
  ~Handoff() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
    delete connection_;  // detached: no server, no transport
  }
  void Arrive(engine::Shard& shard, int slot) override {
    std::unique_ptr<Handoff> self(this);
    HttpServer* server = shard.services().Find<HttpServer>();
    if (slot < 0 || server == nullptr) {
      PIMAP_LOG(WARNING).Conn(connection_->client_)
          << "HTTP/2 hand-over arrived without a descriptor";
      return;
    }
    engine::Socket* socket = engine::Socket::Adopt(&shard, slot);
    engine::Transport* transport = socket;
    if (ssl_ != nullptr) {
      transport = new tls::TlsTransport(socket, std::exchange(ssl_, nullptr));
    }
    Http2Connection* c = std::exchange(connection_, nullptr);
    Busy busy(c);
    c->Attach(server, socket, transport);
    if (std::exchange(c->readmit_, false)) {
      // The owner shard's bounds hold for arrivals too (as for IMAP).
      bool refused = false;
      c->preauth_ = server->AdmitPreAuth(c->client_, &refused);
      if (refused) {
        c->Close();
        return;
      }
    }
    c->state_ = State::kOpen;
    c->ServeReady();
    c->Flush();
    c->ArmTimer();
  }
  void Failed(engine::Shard& source, int slot, int error) override {
    std::unique_ptr<Handoff> self(this);
    PIMAP_LOG(WARNING).Conn(connection_->client_)
        << "HTTP/2 hand-over to the owner shard failed: errno " << error;
    engine::Socket::Adopt(&source, slot)->Abort();
  }

 private:
  Http2Connection* connection_;
  SSL* ssl_;
};

// ---- Life -------------------------------------------------------------------

void Http2Connection::Start(HttpServer* server, engine::Socket* socket,
                            engine::Transport* transport,
                            const ClientAddress& client,
                            absl::string_view received, PreAuthGate* preauth) {
  auto* c = new Http2Connection(server, socket, transport);
  c->client_ = client;
  c->preauth_ = preauth;
  Busy busy(c);
  c->ArmTimer();
  c->OnTransportData(received);
}

Http2Connection::Http2Connection(HttpServer* server, engine::Socket* socket,
                                 engine::Transport* transport) {
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // Peers' SETTINGS are bounded by nghttp2; our own limits are sent below.
  nghttp2_option_set_max_send_header_block_length(option, 64 * 1024);
  nghttp2_session_server_new2(&h2_, Http2Callbacks::Get(), this, option);
  nghttp2_option_del(option);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, kMaxHeaderListBytes},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, settings,
                          sizeof(settings) / sizeof(settings[0]));
  Attach(server, socket, transport);
}

Http2Connection::~Http2Connection() {
  if (server_ != nullptr) Detach();
  if (h2_ != nullptr) nghttp2_session_del(h2_);
}

void Http2Connection::Attach(HttpServer* server, engine::Socket* socket,
                             engine::Transport* transport) {
  server_ = server;
  socket_ = socket;
  transport_ = transport;
  server_->Register(this);
  GaugeAdd(server_->shard().counters().http_connections, 1);
  last_activity_ms_ = MonotonicNowMs();
  transport_->SetHandler(this);
}

void Http2Connection::LeavePreAuth() {
  if (preauth_ == nullptr) return;
  preauth_->Leave(client_.peer);
  preauth_ = nullptr;
}

// Leaves the shard (hand-over, or the end): timers, registration and the
// pre-auth count are the shard's.
void Http2Connection::Detach() {
  readmit_ = preauth_ != nullptr;
  LeavePreAuth();
  if (timer_ != 0) server_->shard().timers().Cancel(timer_);
  timer_ = 0;
  server_->Unregister(this);
  GaugeAdd(server_->shard().counters().http_connections, -1);
  server_ = nullptr;
  socket_ = nullptr;
  transport_ = nullptr;
}

Http2Connection::Busy::~Busy() {
  if (--c_->busy_ != 0) return;
  c_->closed_.clear();
  if (c_->destroy_pending_) delete c_;
}

void Http2Connection::Destroy() {
  if (destroy_pending_) return;
  destroy_pending_ = true;
  if (busy_ == 0) delete this;
}

void Http2Connection::Shutdown() {
  Busy busy(this);
  std::vector<HttpSession*> sessions;
  for (auto& [id, stream] : streams_) {
    if (stream->session_ != nullptr) sessions.push_back(stream->session_);
  }
  // Open responses end with the session's goodbye.
  // (Several streams may be one session's; End() frees it.)
  std::sort(sessions.begin(), sessions.end());
  sessions.erase(std::unique(sessions.begin(), sessions.end()), sessions.end());
  for (HttpSession* session : sessions) session->End("Server shutting down");
  nghttp2_session_terminate_session(h2_, NGHTTP2_NO_ERROR);
  Flush();
  Close();
}

// Streams closed under a session's call: their sessions are told now.
void Http2Connection::ReleaseLingering() {
  std::vector<std::unique_ptr<Stream>> streams = std::move(lingering_);
  lingering_.clear();
  for (auto& stream : streams) {
    if (HttpSession* session = std::exchange(stream->session_, nullptr)) {
      session->OnSinkGone(stream.get());
    }
    closed_.push_back(std::move(stream));
  }
}

void Http2Connection::Close() {
  if (state_ == State::kClosing) return;
  Busy busy(this);
  state_ = State::kClosing;
  ReleaseLingering();
  for (auto& [id, stream] : streams_) {
    if (HttpSession* session = std::exchange(stream->session_, nullptr)) {
      session->OnSinkGone(stream.get());
    }
  }
  if (transport_ != nullptr) transport_->Close();  // flushes, then closes
  if (server_ != nullptr) Detach();
  Destroy();
}

void Http2Connection::Abort() {
  if (transport_ != nullptr) {
    transport_->Abort();
    transport_ = nullptr;
  }
  Close();
}

void Http2Connection::OnTransportClosed(absl::Status) {
  Busy busy(this);
  transport_ = nullptr;
  Close();
}

// ---- Input ------------------------------------------------------------------

void Http2Connection::OnTransportData(absl::string_view data) {
  Busy busy(this);
  if (state_ == State::kClosing) return;
  if (server_ != nullptr) {
    server_->shard().counters().bytes_in.fetch_add(data.size(),
                                                   std::memory_order_relaxed);
  }
  last_activity_ms_ = MonotonicNowMs();
  in_nghttp2_ = true;
  const ssize_t used = nghttp2_session_mem_recv(
      h2_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  in_nghttp2_ = false;
  if (used < 0) {
    // Not HTTP/2 at all (a bad preface) or nghttp2 failed: nothing to say.
    PIMAP_LOG(INFO).Conn(client_)
        << "HTTP/2 connection failed: " << nghttp2_strerror(used);
    Abort();
    return;
  }
  if (state_ == State::kMoving) return;  // served on arrival
  ServeReady();
  Flush();
  ArmTimer();
}

int Http2Connection::OnBeginHeaders(int32_t stream_id) {
  if (streams_.size() >= 2 * kMaxConcurrentStreams) {
    // More than SETTINGS allow (closed ones linger briefly): refuse.
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  streams_[stream_id] = std::make_unique<Stream>(this, stream_id);
  return 0;
}

int Http2Connection::OnHeader(int32_t stream_id, absl::string_view name,
                              absl::string_view value) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  Stream& s = *it->second;
  if (s.phase_ != Stream::Phase::kReceiving) return 0;  // trailers: dropped
  s.header_bytes_ += name.size() + value.size() + 32;
  if (++s.header_fields_ > kMaxHeaderFields ||
      s.header_bytes_ > kMaxHeaderListBytes) {
    s.reject_status_ = 431;
    return 0;
  }
  if (s.reject_status_ != 0) return 0;
  http::HttpRequest& r = s.request_;
  if (name == ":method") {
    r.method = std::string(value);
  } else if (name == ":path") {
    r.target = std::string(value);
  } else if (name == ":authority") {
    r.headers.emplace_back("host", std::string(value));
  } else if (!name.empty() && name[0] != ':') {
    // nghttp2 has checked the field (lower-case name, no bad characters).
    r.headers.emplace_back(std::string(name), std::string(value));
  }
  return 0;
}

int Http2Connection::OnData(int32_t stream_id, absl::string_view data) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  Stream& s = *it->second;
  if (s.phase_ != Stream::Phase::kReceiving || s.reject_status_ != 0) return 0;
  if (s.request_.body.size() + data.size() > server_->config().max_body_bytes) {
    s.reject_status_ = 413;
    s.request_.body.clear();
    s.phase_ = Stream::Phase::kReady;
    ready_.push_back(stream_id);
    return 0;
  }
  s.request_.body.append(data.data(), data.size());
  return 0;
}

int Http2Connection::OnFrame(int32_t stream_id, bool headers, bool end_stream) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  Stream& s = *it->second;
  if (s.phase_ != Stream::Phase::kReceiving) return 0;
  // A request is complete with END_STREAM; one refused at its headers is
  // answered at once.
  if (end_stream || (headers && s.reject_status_ != 0)) {
    s.phase_ = Stream::Phase::kReady;
    ready_.push_back(stream_id);
  }
  return 0;
}

int Http2Connection::OnStreamClose(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  std::unique_ptr<Stream> stream = std::move(it->second);
  streams_.erase(it);
  HttpSession* session = std::exchange(stream->session_, nullptr);
  if (sink_calls_ > 0) {
    // Closed while a session writes to some stream (maybe this one): the
    // session hears of it, and the stream is freed, from the loop.
    stream->dead_ = true;
    stream->session_ = session;  // still the session's sink until told
    lingering_.push_back(std::move(stream));
    auto token = std::weak_ptr<bool>(alive_);
    server_->shard().timers().Schedule(1, [this, token] {
      if (token.expired()) return;
      Busy busy(this);
      ReleaseLingering();
    });
    return 0;
  }
  // The client cancelled a response (or the connection ends): the session
  // cannot know what arrived (http_session.h).
  if (session != nullptr) session->OnSinkGone(stream.get());
  closed_.push_back(std::move(stream));
  return 0;
}

// Called while the session writes (never re-enter it, never free the stream
// under it): the loop tells the session and resets the stream.
void Http2Connection::DropStreamLater(int32_t stream_id) {
  std::weak_ptr<bool> alive;
  auto it = streams_.find(stream_id);
  if (it != streams_.end() && it->second->session_ != nullptr) {
    alive = it->second->session_->liveness();
  }
  auto token = std::weak_ptr<bool>(alive_);
  server_->shard().timers().Schedule(1, [this, stream_id, alive, token] {
    if (token.expired()) return;  // the connection is gone
    Busy busy(this);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    HttpSession* session = std::exchange(it->second->session_, nullptr);
    if (session != nullptr && !alive.expired()) {
      session->OnSinkGone(it->second.get());
    }
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream_id,
                              NGHTTP2_CANCEL);
    Flush();
  });
}

// ---- Requests ---------------------------------------------------------------

bool Http2Connection::AnsweringAny() const {
  for (const auto& [id, stream] : streams_) {
    if (stream->phase_ == Stream::Phase::kServing ||
        stream->phase_ == Stream::Phase::kResponded) {
      return true;
    }
  }
  return false;
}

void Http2Connection::ServeReady() {
  Busy busy(this);
  ShardCounters& counters = server_->shard().counters();
  const bool tls = transport_ != nullptr && transport_->is_tls();
  while (!ready_.empty() && state_ == State::kOpen) {
    auto it = streams_.find(ready_.front());
    if (it == streams_.end()) {
      ready_.pop_front();  // reset by the client meanwhile
      continue;
    }
    Stream& s = *it->second;
    CounterAdd(counters.http_requests);
    switch (s.reject_status_) {
      case 0:
        break;
      case 408:
        ready_.pop_front();
        Respond(s, 408, "Request not received in time");
        continue;
      case 413:
        ready_.pop_front();
        Respond(s, 413, "Request body too large");
        continue;
      default:
        ready_.pop_front();
        Respond(s, s.reject_status_, "Request header fields too large");
        continue;
    }
    RequestRoute route = server_->Route(s.request_, tls);
    if (route.kind == RequestRoute::Kind::kHandOver) {
      if (!AnsweringAny()) {
        HandOver(route.owner);  // this request is served there
        return;
      }
      ready_.pop_front();
      Respond(s, 421,
              "This connection serves another shard's sessions; open a new "
              "connection");
      continue;
    }
    ready_.pop_front();
    if (route.kind == RequestRoute::Kind::kFail) {
      Respond(s, route.status, route.message, route.extra_headers);
      continue;
    }
    if (route.kind == RequestRoute::Kind::kDocument) {
      s.phase_ = Stream::Phase::kResponded;
      s.out_ = std::move(route.body);
      s.out_pos_ = 0;
      s.eof_ = true;
      SubmitHead(s, 200, route.content_type, route.extra_headers,
                 static_cast<int64_t>(s.out_.size()));
      continue;
    }
    s.phase_ = Stream::Phase::kServing;
    s.session_ = route.session;
    if (route.session->authenticated()) LeavePreAuth();
    s.coding_ = route.coding;
    if (!route.session->Submit(std::move(s.request_.body), &s)) {
      s.session_ = nullptr;
      Respond(s, 429, "Too many requests of this session are waiting",
              "Retry-After: 1\r\n");
    }
  }
}

void Http2Connection::SubmitHead(Stream& stream, int status,
                                 absl::string_view content_type,
                                 absl::string_view extra_headers,
                                 int64_t length) {
  if (stream.head_sent_ || h2_ == nullptr) return;
  stream.head_sent_ = true;
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back(":status", absl::StrCat(status));
  fields.emplace_back("content-type", std::string(content_type));
  if (!absl::StrContains(absl::AsciiStrToLower(extra_headers),
                         "cache-control:")) {
    fields.emplace_back("cache-control", "no-store");
  }
  if (length >= 0) fields.emplace_back("content-length", absl::StrCat(length));
  // "Name: value\r\n" lines (shared with HTTP/1.1) become fields.
  for (absl::string_view line :
       absl::StrSplit(extra_headers, "\r\n", absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    fields.emplace_back(
        absl::AsciiStrToLower(line.substr(0, colon)),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size());
  for (auto& [name, value] : fields) {
    nv.push_back({reinterpret_cast<uint8_t*>(name.data()),
                  reinterpret_cast<uint8_t*>(value.data()), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &stream;
  provider.read_callback = &Stream::Read;
  // nghttp2 copies the fields.
  nghttp2_submit_response(h2_, stream.id_, nv.data(), nv.size(), &provider);
}

void Http2Connection::Respond(Stream& stream, int status,
                              absl::string_view message,
                              absl::string_view extra_headers) {
  CounterAdd(server_->shard().counters().http_errors);
  stream.phase_ = Stream::Phase::kResponded;
  stream.out_ = absl::StrCat(message, "\n");
  stream.out_pos_ = 0;
  stream.eof_ = true;
  SubmitHead(stream, status, "text/plain", extra_headers,
             static_cast<int64_t>(stream.out_.size()));
}

// ---- Output -----------------------------------------------------------------

void Http2Connection::Flush() {
  if (in_nghttp2_ || state_ != State::kOpen || transport_ == nullptr) {
    flush_due_ = state_ != State::kClosing;
    return;
  }
  Busy busy(this);
  flush_due_ = false;
  while (transport_ != nullptr &&
         transport_->PendingOutput() < kMaxQueuedOutput) {
    const uint8_t* data = nullptr;
    // Stream close callbacks run in here: they must not flush again.
    in_nghttp2_ = true;
    const ssize_t n = nghttp2_session_mem_send(h2_, &data);
    in_nghttp2_ = false;
    if (n < 0) {
      PIMAP_LOG(INFO).Conn(client_)
          << "HTTP/2 send failed: " << nghttp2_strerror(n);
      CloseSoon(/*abort=*/true);
      return;
    }
    if (n == 0) break;
    transport_->Write(
        absl::string_view(reinterpret_cast<const char*>(data), n));
  }
  if (flush_due_) {
    flush_due_ = false;
    Flush();
    return;
  }
  if (!nghttp2_session_want_read(h2_) && !nghttp2_session_want_write(h2_)) {
    CloseSoon(/*abort=*/false);  // GOAWAY sent and every stream done
  }
}

// Closing tells the sessions of open streams: not from inside one of their
// calls (re-entry, and the stream freed under the caller), from the loop.
void Http2Connection::CloseSoon(bool abort) {
  if (sink_calls_ == 0) {
    abort ? Abort() : Close();
    return;
  }
  auto token = std::weak_ptr<bool>(alive_);
  server_->shard().timers().Schedule(1, [this, abort, token] {
    if (token.expired()) return;
    Busy busy(this);
    abort ? Abort() : Close();
  });
}

void Http2Connection::OnTransportDrained() {
  Busy busy(this);
  Flush();
  for (auto& [id, stream] : streams_) {
    if (stream->session_ != nullptr) stream->session_->OnSinkDrained();
  }
}

// ---- Hand-over --------------------------------------------------------------

void Http2Connection::HandOver(int owner) {
  state_ = State::kMoving;
  CounterAdd(server_->shard().counters().http_handovers);
  TimerWheel& timers = server_->shard().timers();
  if (timer_ != 0) timers.Cancel(timer_);
  timer_ =
      tls::DetachForHandOver(
          socket_, transport_, timers, kHandoverTimeoutMs,
          [this, owner](int slot, SSL* ssl) {
            timer_ = 0;
            engine::Shard& shard = server_->shard();
            Detach();  // the object itself travels
            shard.HandOver(slot, owner, std::make_unique<Handoff>(this, ssl));
          },
          [this] {
            timer_ = 0;
            Busy busy(this);
            PIMAP_LOG(INFO).Conn(client_)
                << "HTTP/2 hand-over did not complete (peer not reading)";
            state_ = State::kClosing;
            transport_ = nullptr;
            if (server_ != nullptr) Detach();
            Destroy();
          });
}

// ---- Deadlines --------------------------------------------------------------

// One timer: the earliest deadline of a request still being received, or the
// keep-alive limit while no stream is open; long polls have the session's.
void Http2Connection::ArmTimer() {
  if (state_ != State::kOpen || server_ == nullptr) return;
  const HttpServerConfig& config = server_->config();
  int64_t deadline = -1;
  for (const auto& [id, stream] : streams_) {
    if (stream->phase_ != Stream::Phase::kReceiving) continue;
    const int64_t d = stream->started_ms_ + config.request_timeout_ms;
    if (deadline < 0 || d < deadline) deadline = d;
  }
  bool serving = false;
  for (const auto& [id, stream] : streams_) {
    if (stream->phase_ == Stream::Phase::kServing) serving = true;
  }
  if (deadline < 0 && !serving) {
    // No request being read, none being answered by a session (a stream
    // answered early may wait forever for its client's END_STREAM): the
    // keep-alive limit holds.
    deadline = last_activity_ms_ + config.keepalive_timeout_ms;
  }
  TimerWheel& timers = server_->shard().timers();
  if (timer_ != 0) timers.Cancel(timer_);
  timer_ = 0;
  if (deadline < 0) return;
  timer_ = timers.Schedule(std::max<int64_t>(1, deadline - MonotonicNowMs()),
                           [this] {
                             timer_ = 0;
                             OnTimer();
                           });
}

void Http2Connection::OnTimer() {
  Busy busy(this);
  if (state_ != State::kOpen) return;
  const HttpServerConfig& config = server_->config();
  const int64_t now = MonotonicNowMs();
  for (auto& [id, stream] : streams_) {
    if (stream->phase_ == Stream::Phase::kReceiving &&
        now >= stream->started_ms_ + config.request_timeout_ms) {
      stream->reject_status_ = 408;
      stream->phase_ = Stream::Phase::kReady;
      ready_.push_back(id);
    }
  }
  bool busy_streams = false;
  for (auto& [id, stream] : streams_) {
    if (stream->phase_ == Stream::Phase::kServing ||
        stream->phase_ == Stream::Phase::kReceiving) {
      busy_streams = true;
    }
  }
  if (!busy_streams && now >= last_activity_ms_ + config.keepalive_timeout_ms) {
    nghttp2_session_terminate_session(h2_, NGHTTP2_NO_ERROR);
  }
  ServeReady();
  Flush();
  ArmTimer();
}

}  // namespace pimap::http_binding
