// StartHttpsRequest (https_request.h): the request's states are "waiting" (for
// a connection to its origin), "connecting" (the socket's callback pending),
// "exchanging" (the TLS transport open) and done; the deadline timer and the
// connect callback check that the request is still alive (`alive_`) first.
//
// Connection reuse (HTTP/1.1 keep-alive): a per-shard ConnectionPool keeps
// the idle connections of each origin (scheme, host and the target's
// addresses: TLS or plain http, which the EMN webhook may use) for
// kIdleTimeoutMs and bounds the connections of one origin (connecting, busy
// or idle) to kMaxConnectionsPerOrigin; a request beyond that waits, in
// order, for the next connection to come free (within its own deadline). A
// full TLS handshake per wake-up is what capped a shard's wake-ups/s
// (bench/README.md, "Out-of-band wake-ups"). A connection goes back to the
// pool only after a whole response that keeps it alive, to a request that did
// not say "Connection: close"; any error drops it.
#include "bindings/outband_http/https_request.h"

#include <deque>
#include <utility>

#include "absl/container/node_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bindings/tls/tls_context.h"
#include "bindings/tls/tls_transport.h"
#include "core/engine/connect_any.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::outband_http {
namespace {

// Per shard and origin: at most this many connections (connecting, busy or
// idle). Enough to keep a local push service busy; a slow remote one gets at
// most this many requests at a time from one shard.
constexpr size_t kMaxConnectionsPerOrigin = 16;
// An idle connection is closed after this; push services close theirs after
// tens of seconds, so a reused one is rarely already closed by the peer.
constexpr int64_t kIdleTimeoutMs = 4000;
// Requests waiting for a connection, per origin (callers bound their own
// in-flight requests too: WebPushNotifier's max_in_flight).
constexpr size_t kMaxWaitingPerOrigin = 4096;

class HttpsRequest;
class ConnectionPool;

// One idle keep-alive connection: while nobody uses it, it watches for the
// server's close (or stray bytes, which make it unusable).
class IdleConnection final : private engine::TransportHandler {
 public:
  IdleConnection(ConnectionPool* pool, const std::string* key,
                 engine::Transport* transport)
      : pool_(pool), key_(key), transport_(transport) {}
  // Watching starts only once the connection is in the pool: SetHandler may
  // report a close at once (it delivers what is buffered).
  void Watch(engine::Shard* shard);
  // Hands the connection over (its handler unset) and frees this.
  engine::Transport* Take(engine::Shard* shard);
  // Closes the connection and frees this (the pool has forgotten it).
  void Close(engine::Shard* shard);

 private:
  ~IdleConnection() override = default;
  void OnTransportData(absl::string_view) override;
  void OnTransportClosed(absl::Status) override;

  ConnectionPool* pool_;
  const std::string* key_;  // the origin's key, owned by the pool's map
  engine::Transport* transport_;
  TimerWheel::TimerId timer_ = 0;
};

struct Origin {
  size_t open = 0;                    // connecting, busy or idle
  std::vector<IdleConnection*> idle;  // most recently used last
  std::deque<HttpsRequest*> waiting;  // for a connection, in order
};

class ConnectionPool {
 public:
  explicit ConnectionPool(engine::Shard* shard) : shard_(shard) {}
  // This shard's pool, made on first use; null once the shard stops.
  static ConnectionPool* Of(engine::Shard* shard);
  static ConnectionPool* Find(engine::Shard* shard) {
    return shard->services().Find<ConnectionPool>();
  }

  // Gives `request` an idle connection (UseConnection), a slot to open one
  // (MustConnect), or a place in the origin's queue (Waiting).
  void Acquire(HttpsRequest* request, const std::string& key);
  // The request that held a slot is done with it: `transport` (a reusable
  // connection, or null) goes to the next waiting request or the idle list.
  void Release(const std::string& key, engine::Transport* transport);
  void Forget(HttpsRequest* request, const std::string& key);  // left the queue
  void DropIdle(IdleConnection* idle, const std::string& key);

  engine::Shard* shard() const { return shard_; }

 private:
  void Stop();
  void EraseIfUnused(const std::string& key);

  engine::Shard* shard_;
  absl::node_hash_map<std::string, Origin> origins_;
};

class HttpsRequest final : private engine::TransportHandler {
 public:
  HttpsRequest(engine::Shard* shard, const tls::TlsContext* tls,
               std::string host, std::string request, HttpsDone done,
               size_t max_response_body)
      : shard_(shard),
        tls_(tls),
        host_(std::move(host)),
        request_(std::move(request)),
        done_(std::move(done)),
        parser_(max_response_body) {
    parser_.set_parse_responses(true);
    // The head only: a body may say anything.
    const size_t head_end = request_.find("\r\n\r\n");
    const std::string head =
        absl::AsciiStrToLower(absl::string_view(request_).substr(0, head_end));
    wants_close_ = absl::StrContains(head, "\r\nconnection: close");
  }

  void Start(const HttpsTarget& target, int64_t timeout_ms) {
    timer_ = shard_->timers().Schedule(timeout_ms, [this] {
      timer_ = 0;
      Finish(absl::DeadlineExceededError(
          "the HTTP server did not answer in time"));
    });
    addresses_ = target.addresses;
    key_ = absl::StrCat(tls_ != nullptr ? "https:" : "http:", target.host);
    for (const engine::ResolvedAddress& a : addresses_) {
      key_.push_back('\0');
      key_.append(reinterpret_cast<const char*>(&a.address), a.len);
    }
    ConnectionPool* pool = ConnectionPool::Of(shard_);
    if (pool == nullptr) {  // the shard stops: one connection, not kept
      holds_slot_ = false;
      Connect();
      return;
    }
    pool->Acquire(this, key_);
  }

  // From the pool: a slot for a new connection.
  void MustConnect() {
    holds_slot_ = true;
    waiting_ = false;
    Connect();
  }

  // From the pool: an idle connection to reuse.
  void UseConnection(engine::Transport* transport) {
    holds_slot_ = true;
    waiting_ = false;
    reused_ = true;
    transport_ = transport;
    transport_->SetHandler(this);  // may report a close at once
    if (transport_ != nullptr) transport_->Write(absl::string_view(request_));
  }

  void Waiting() { waiting_ = true; }
  // The origin's queue is full: fails soon, not inside StartHttpsRequest.
  void Refuse() {
    shard_->timers().Cancel(timer_);
    timer_ = shard_->timers().Schedule(0, [this] {
      timer_ = 0;
      Finish(absl::UnavailableError(
          "too many requests waiting for a connection to the HTTP server"));
    });
  }

 private:
  // A new connection to the target (each retry starts from its first
  // address again).
  void Connect() {
    std::weak_ptr<bool> alive = alive_;
    engine::ConnectAny(
        shard_, addresses_,
        [this, alive](absl::StatusOr<engine::Socket*> socket) {
          if (alive.expired()) {  // finished meanwhile (the deadline)
            if (socket.ok()) (*socket)->Abort();
            return;
          }
          if (!socket.ok()) {
            Finish(absl::UnavailableError(
                absl::StrCat("connect: ", socket.status().message())));
            return;
          }
          OnConnected(*socket);
        });
  }

  ~HttpsRequest() override = default;

  void OnConnected(engine::Socket* socket) {
    if (tls_ == nullptr) {  // plain http
      transport_ = socket;
      // Kept: a failed reused connection sends it again on a new one.
      transport_->Write(absl::string_view(request_));
      transport_->SetHandler(this);
      return;
    }
    SSL* ssl = tls_->NewClientSsl(host_);
    if (ssl == nullptr) {
      socket->Abort();
      Finish(absl::InternalError("no TLS client session"));
      return;
    }
    transport_ = new tls::TlsTransport(socket, ssl);
    // Held until the handshake is done, then sent. Kept: a failed reused
    // connection sends it again on a new one.
    transport_->Write(absl::string_view(request_));
    transport_->SetHandler(this);  // starts the handshake
  }

  void OnTransportData(absl::string_view data) override {
    got_response_bytes_ = true;
    parser_.Feed(data);
    http::HttpRequest response;
    while (true) {
      switch (parser_.Next(&response)) {
        case http::HttpRequestParser::Result::kNeedMore:
          return;
        case http::HttpRequestParser::Result::kError:
          Finish(absl::InvalidArgumentError(
              absl::StrCat("malformed response: ", parser_.error_reason())));
          return;
        case http::HttpRequestParser::Result::kRequest:
          if (response.status < 200) continue;  // interim (1xx)
          reusable_ = response.keep_alive && !wants_close_;
          Finish(std::move(response));
          return;
      }
    }
  }

  void OnTransportClosed(absl::Status reason) override {
    transport_ = nullptr;  // it frees itself
    if (reused_ && !got_response_bytes_ && !retried_) {
      // Hazard: the server may close an idle keep-alive connection at any
      // time, also just as our request goes out on it (RFC 9112 §9.3.1).
      // Nothing came back, so the request is sent once more on a new
      // connection; at worst the server had taken it and the device gets
      // the same wake-up twice (the Topic makes the push service replace
      // it), which beats losing it.
      retried_ = true;
      reused_ = false;
      Connect();
      return;
    }
    Finish(absl::UnavailableError(
        reason.ok() ? std::string("the HTTP server closed before answering")
                    : absl::StrCat("HTTP server: ", reason.message())));
  }

  void Finish(absl::StatusOr<http::HttpRequest> result) {
    if (finished_) return;
    finished_ = true;
    alive_.reset();
    if (timer_ != 0) shard_->timers().Cancel(timer_);
    timer_ = 0;
    engine::Transport* keep = nullptr;
    if (transport_ != nullptr) {
      transport_->SetHandler(nullptr);
      if (result.ok() && reusable_) {
        keep = transport_;
      } else {
        transport_->Abort();  // closing, or unusable after an error
      }
      transport_ = nullptr;
    }
    ConnectionPool* pool = ConnectionPool::Find(shard_);
    if (pool != nullptr && waiting_) pool->Forget(this, key_);
    const std::string key = std::move(key_);
    const bool holds_slot = pool != nullptr && holds_slot_;
    HttpsDone done = std::move(done_);
    // Deleted before the pool hands the connection on and before `done`
    // runs: either may start other requests at once, and nothing of this one
    // is touched after.
    delete this;
    if (holds_slot) {
      pool->Release(key, keep);
    } else if (keep != nullptr) {
      keep->Abort();
    }
    done(std::move(result));
  }

  engine::Shard* shard_;
  const tls::TlsContext* tls_;
  std::string host_;
  std::string request_;
  HttpsDone done_;
  http::HttpRequestParser parser_;
  std::vector<engine::ResolvedAddress> addresses_;
  std::string key_;                         // the origin: host and addresses
  engine::Transport* transport_ = nullptr;  // the socket, or TLS over it
  TimerWheel::TimerId timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool finished_ = false;
  bool wants_close_ = false;         // the request said "Connection: close"
  bool reusable_ = false;            // the response keeps the connection
  bool waiting_ = false;             // in the origin's queue
  bool holds_slot_ = false;          // counts in the origin's `open`
  bool reused_ = false;              // on a connection from the pool
  bool retried_ = false;             // sent again after a reused one failed
  bool got_response_bytes_ = false;  // on the current connection
};

// ------------------------------------------------------------ IdleConnection

void IdleConnection::Watch(engine::Shard* shard) {
  timer_ = shard->timers().Schedule(kIdleTimeoutMs, [this] {
    timer_ = 0;
    pool_->DropIdle(this, *key_);
  });
  transport_->SetHandler(this);
}

engine::Transport* IdleConnection::Take(engine::Shard* shard) {
  if (timer_ != 0) shard->timers().Cancel(timer_);
  engine::Transport* transport = transport_;
  transport->SetHandler(nullptr);
  delete this;
  return transport;
}

void IdleConnection::Close(engine::Shard* shard) {
  if (timer_ != 0) shard->timers().Cancel(timer_);
  if (transport_ != nullptr) transport_->Close();  // close_notify
  delete this;
}

void IdleConnection::OnTransportData(absl::string_view) {
  // Nothing was asked: the connection is out of step, so it goes.
  transport_->SetHandler(nullptr);
  transport_->Abort();
  transport_ = nullptr;
  pool_->DropIdle(this, *key_);
}

void IdleConnection::OnTransportClosed(absl::Status) {
  transport_ = nullptr;  // it frees itself
  pool_->DropIdle(this, *key_);
}

// ------------------------------------------------------------ ConnectionPool

ConnectionPool* ConnectionPool::Of(engine::Shard* shard) {
  if (shard->stopping()) return nullptr;
  ConnectionPool* pool = Find(shard);
  if (pool == nullptr) {
    pool = new ConnectionPool(shard);
    shard->services().Register(pool);
    shard->AddStopHook([pool] { pool->Stop(); });
  }
  return pool;
}

void ConnectionPool::Acquire(HttpsRequest* request, const std::string& key) {
  auto [it, added] = origins_.try_emplace(key);
  Origin& o = it->second;
  if (!o.idle.empty()) {
    IdleConnection* idle = o.idle.back();
    o.idle.pop_back();
    request->UseConnection(idle->Take(shard_));
    return;
  }
  if (o.open < kMaxConnectionsPerOrigin) {
    ++o.open;
    request->MustConnect();
    return;
  }
  if (o.waiting.size() >= kMaxWaitingPerOrigin) {
    request->Refuse();
    return;
  }
  o.waiting.push_back(request);
  request->Waiting();
}

void ConnectionPool::Release(const std::string& key,
                             engine::Transport* transport) {
  auto it = origins_.find(key);
  if (it == origins_.end()) {  // not ours (cannot happen): not kept
    if (transport != nullptr) transport->Abort();
    return;
  }
  Origin& o = it->second;
  if (!o.waiting.empty()) {
    // The slot passes to the next request as it is; the calls come last,
    // since they may finish requests and start others (which changes
    // origins_).
    HttpsRequest* next = o.waiting.front();
    o.waiting.pop_front();
    if (transport != nullptr) {
      next->UseConnection(transport);
    } else {
      next->MustConnect();
    }
    return;
  }
  if (transport == nullptr) {
    --o.open;
    EraseIfUnused(key);
    return;
  }
  auto* idle = new IdleConnection(this, &it->first, transport);
  o.idle.push_back(idle);
  idle->Watch(shard_);  // last: it may drop itself at once
}

void ConnectionPool::Forget(HttpsRequest* request, const std::string& key) {
  auto it = origins_.find(key);
  if (it == origins_.end()) return;
  std::deque<HttpsRequest*>& waiting = it->second.waiting;
  for (auto w = waiting.begin(); w != waiting.end(); ++w) {
    if (*w == request) {
      waiting.erase(w);
      break;
    }
  }
}

void ConnectionPool::DropIdle(IdleConnection* idle, const std::string& key) {
  auto it = origins_.find(key);
  if (it == origins_.end()) return;
  Origin& o = it->second;
  for (auto i = o.idle.begin(); i != o.idle.end(); ++i) {
    if (*i == idle) {
      o.idle.erase(i);
      break;
    }
  }
  // `key` lives in origins_: the slot goes before the origin may.
  --o.open;
  idle->Close(shard_);
  if (o.waiting.empty()) {
    EraseIfUnused(it->first);
    return;
  }
  ++o.open;
  HttpsRequest* next = o.waiting.front();
  o.waiting.pop_front();
  next->MustConnect();
}

void ConnectionPool::EraseIfUnused(const std::string& key) {
  auto it = origins_.find(key);
  if (it != origins_.end() && it->second.open == 0 &&
      it->second.waiting.empty()) {
    origins_.erase(it);
  }
}

void ConnectionPool::Stop() {
  // Idle connections would keep the shard alive; busy ones finish on their
  // own (Find() is null from now on, so they are not kept), and so do the
  // requests still waiting: each opens its own connection now.
  shard_->services().Register<ConnectionPool>(nullptr);
  std::vector<HttpsRequest*> waiting;
  for (auto& [key, o] : origins_) {
    for (IdleConnection* idle : o.idle) idle->Close(shard_);
    waiting.insert(waiting.end(), o.waiting.begin(), o.waiting.end());
  }
  origins_.clear();
  delete this;
  for (HttpsRequest* request : waiting) request->MustConnect();
}

}  // namespace

void StartHttpsRequest(engine::Shard* shard, const tls::TlsContext* tls,
                       const HttpsTarget& target, std::string request,
                       int64_t timeout_ms, HttpsDone done,
                       size_t max_response_body) {
  auto* r = new HttpsRequest(shard, tls, target.host, std::move(request),
                             std::move(done), max_response_body);
  r->Start(target, timeout_ms);
}

}  // namespace pimap::outband_http
