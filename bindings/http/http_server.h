// The HTTP binding of one shard (the draft's HTTPS binding for P-IMAP): its
// listeners (--https-listen with TLS and ALPN, --http-listen plain behind a TLS
// terminator), its connections, and the cookie table of the P-IMAP sessions it
// carries. A cookie names the shard that owns its session, so a request is
// moved to that shard before it runs, as a LOGIN moves a TCP connection.
#ifndef PIMAP_BINDINGS_HTTP_HTTP_SERVER_H_
#define PIMAP_BINDINGS_HTTP_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "bindings/http/http_session.h"
#include "bindings/tls/tls_context.h"
#include "core/engine/proxy_accept.h"
#include "core/http/content_coding.h"
#include "core/http/request_parser.h"
#include "core/http/server_connection.h"
#include "core/session/auth_cache.h"
#include "core/session/session_driver.h"
#include "core/session/session_registry.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"

namespace pimap::engine {
class Listener;
class Shard;
}  // namespace pimap::engine

namespace pimap {
class PreAuthGate;
}  // namespace pimap

namespace pimap::http_binding {

// What the server needs of a connection, HTTP/1.1 or HTTP/2: to stop it.
class HttpServerConnection {
 public:
  // Server stop: open responses get the session's goodbye, then it closes.
  virtual void Shutdown() = 0;

 protected:
  ~HttpServerConnection() = default;
};

// What to do with one complete request (an HTTP/1.1 request or an HTTP/2
// stream), decided the same way for both.
struct RequestRoute {
  enum class Kind : uint8_t { kServe, kHandOver, kFail, kDocument };
  Kind kind = Kind::kFail;
  HttpSession* session = nullptr;  // kServe: submit the body to it
  // kServe: the coding of the response (Accept-Encoding).
  http::ContentCoding coding = http::ContentCoding::kIdentity;
  int owner = -1;  // kHandOver: the shard that must serve it
  // kFail: an HTTP-level answer; `close` ends the connection after it.
  int status = 0;
  std::string message;
  std::string extra_headers;  // "Name: value\r\n" lines
  bool close = false;
  // kDocument: a 200 response the server has whole (the event dictionary).
  std::string content_type;
  std::string body;
};

struct HttpListenAddress {
  std::string host;
  uint16_t port = 0;
};

// Read-only after start-up; shared by all shards.
struct HttpServerConfig {
  HttpSessionConfig session;
  std::shared_ptr<tls::TlsContext> tls;  // with ALPN http/1.1; for https
  std::optional<HttpListenAddress> http_listen;
  std::optional<HttpListenAddress> https_listen;
  // --proxy-protocol-from: load balancers whose PROXY header is believed.
  engine::ProxyProtocolPolicy proxy_protocol;
  // A request body larger than this is refused (413).
  size_t max_body_bytes = 8 << 20;
  // --max-output-bytes: what one answer may hold (an XZIP's, an XCONVERT's).
  size_t max_output_bytes = 4 << 20;
  // Reading one request, head and body, may take this long at most (a
  // deadline, not reset by each byte: slow clients cannot hold it open).
  int64_t request_timeout_ms = 30000;
  // A kept-alive connection with no request for this long is closed.
  int64_t keepalive_timeout_ms = 60000;
  // Open HTTP connections per shard, at most (more get 503 and are closed).
  size_t max_connections = 10000;
  int64_t store_timeout_ms = 15000;
  session::RelayParkConfig park;  // unused by P-IMAP sessions; for the login
};

class HttpServer final : public HttpSessionOwner {
 public:
  HttpServer(engine::Shard* shard, const HttpServerConfig* config,
             session::StoreConnector* connector,
             session::SessionRegistry* sessions, session::StoreLinkPool* pool,
             session::AuthCache* auth_cache);
  ~HttpServer();

  // On the shard thread, during set-up: binds the listeners, registers the
  // stop hook and itself in the shard's services (for hand-overs).
  absl::Status Start();

  const HttpServerConfig& config() const { return *config_; }
  // The TLS context of new HTTPS handshakes: config().tls until a
  // certificate reload brings a new one (as ImapServer::tls()).
  const std::shared_ptr<tls::TlsContext>& tls() const { return tls_; }
  void SetTls(std::shared_ptr<tls::TlsContext> tls) { tls_ = std::move(tls); }
  bool stopping() const { return stopping_; }
  // As ImapServer::Drain: no more accepting; open exchanges get the sessions'
  // goodbye (`reason`), every connection closes. Returns connections plus
  // sessions told.
  size_t Drain(absl::string_view reason);
  size_t connection_count() const { return connections_.size(); }
  // A connection not logged in yet, from `client`, counted by the shard's
  // pre-auth gate (core/base/preauth_gate.h, shared with the IMAP binding):
  // the gate to leave later (null: the shard has none), or null with
  // *refused set past a bound (counted in pimap_preauth_refused_total).
  PreAuthGate* AdmitPreAuth(const ClientAddress& client, bool* refused);
  // The shard's compressor, shared by every coded response and compressed
  // session output (no per-response compressor memory: content_coding.h).
  http::ShardCompressor& compressor();
  // The settings of its HTTP/1.1 connections (HttpConnection::CoreConfig),
  // one for all of them.
  const http::ServerConnectionConfig* http1_config();
  // A reload changed config() in place: the connections' settings follow
  // (in place too: every connection points at them).
  void OnConfigChanged();

  // The session a cookie value names on this shard, or null.
  HttpSession* FindSession(absl::string_view cookie) const;
  // The shard a cookie value names, or -1 when it names none.
  int ShardOfCookie(absl::string_view cookie) const;

  // Checks what is HTTP's (path, method, version, media type, coding, load)
  // and finds the request's session: the cookie's, a new one, or the shard
  // that owns it. Decodes a coded body in place (bounded like a plain one:
  // a ratio bomb gets 413 and the connection closes).
  RequestRoute Route(http::HttpRequest& request, bool tls);

  void Register(HttpServerConnection* connection);
  void Unregister(HttpServerConnection* connection);

  // HttpSessionOwner
  const HttpSessionConfig& session_config() const override {
    return config_->session;
  }
  session::LoginServices LoginServices() override;
  engine::Shard& shard() { return *shard_; }
  ShardCounters& counters() override;
  TimerWheel& timers() override;
  int shard_id() const override;
  int shard_count() const override;
  cluster::ShardCluster* cluster() override;
  std::string Authenticated(HttpSession* session) override;
  void Ended(HttpSession* session) override;

 private:
  void Stop();
  RequestRoute EventDictionaryDocument(const http::HttpRequest& request,
                                       absl::string_view id);

  engine::Shard* shard_;
  const HttpServerConfig* config_;
  std::shared_ptr<tls::TlsContext> tls_;
  session::StoreConnector* connector_;
  session::SessionRegistry* sessions_;
  session::StoreLinkPool* pool_;
  session::AuthCache* auth_cache_;
  std::vector<engine::Listener*> listeners_;
  absl::flat_hash_set<HttpServerConnection*> connections_;
  absl::flat_hash_map<std::string, HttpSession*> cookies_;
  // The shard's (registered in its services), or one of its own.
  http::ShardCompressor* compressor_ = nullptr;
  std::unique_ptr<http::ShardCompressor> own_compressor_;
  std::optional<http::ServerConnectionConfig> http1_config_;
  bool stopping_ = false;
  // Connections from load balancers waiting for their PROXY header.
  engine::ProxyHeaderGate proxy_gate_;
};

}  // namespace pimap::http_binding

#endif  // PIMAP_BINDINGS_HTTP_HTTP_SERVER_H_
