// Per-shard HTTP binding: listeners, connections, the cookie table, shutdown.
#include "bindings/http/http_server.h"

#include <openssl/rand.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bindings/http/http_connection.h"
#include "core/base/log.h"
#include "core/base/preauth_gate.h"
#include "core/base/shard_for_user.h"
#include "core/cluster/shard_cluster.h"
#include "core/convert/transcoder.h"
#include "core/engine/listener.h"
#include "core/engine/shard.h"
#include "core/http/event_dictionary.h"
#include "core/session/login_throttle.h"

namespace pimap::http_binding {

namespace {

bool AcceptedMediaType(absl::string_view content_type) {
  absl::string_view media = content_type.substr(0, content_type.find(';'));
  media = absl::StripAsciiWhitespace(media);
  return absl::EqualsIgnoreCase(media, "application/vnd.pimap") ||
         absl::EqualsIgnoreCase(media, "application/vnd.lemonade") ||
         absl::EqualsIgnoreCase(media, "text/plain");
}

// The value of cookie "pimap" in the Cookie header(s), or empty. HTTP/2
// clients may send one cookie per header field (RFC 9113 §8.2.3).
std::string SessionCookie(const http::HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name != "cookie") continue;
    for (absl::string_view pair : absl::StrSplit(value, ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      if (absl::StartsWith(pair, "pimap=")) {
        return std::string(pair.substr(6));
      }
    }
  }
  return "";
}

RequestRoute Fail(int status, absl::string_view message, bool close = false,
                  absl::string_view extra_headers = "") {
  RequestRoute route;
  route.kind = RequestRoute::Kind::kFail;
  route.status = status;
  route.message = std::string(message);
  route.extra_headers = std::string(extra_headers);
  route.close = close;
  return route;
}

RequestRoute HandOverTo(int owner) {
  RequestRoute route;
  route.kind = RequestRoute::Kind::kHandOver;
  route.owner = owner;
  return route;
}

}  // namespace

HttpServer::HttpServer(engine::Shard* shard, const HttpServerConfig* config,
                       session::StoreConnector* connector,
                       session::SessionRegistry* sessions,
                       session::StoreLinkPool* pool,
                       session::AuthCache* auth_cache)
    : shard_(shard),
      config_(config),
      tls_(config->tls),
      connector_(connector),
      sessions_(sessions),
      pool_(pool),
      auth_cache_(auth_cache) {}

HttpServer::~HttpServer() {
  if (shard_->services().Find<HttpServer>() == this) {
    shard_->services().Register<HttpServer>(nullptr);
  }
}

http::ShardCompressor& HttpServer::compressor() {
  if (compressor_ == nullptr) {
    compressor_ = shard_->services().Find<http::ShardCompressor>();
    if (compressor_ == nullptr) {
      own_compressor_ = std::make_unique<http::ShardCompressor>();
      compressor_ = own_compressor_.get();
    }
  }
  return *compressor_;
}

void HttpServer::OnConfigChanged() {
  if (http1_config_.has_value()) {
    *http1_config_ = HttpConnection::CoreConfig(this);
  }
}

const http::ServerConnectionConfig* HttpServer::http1_config() {
  if (!http1_config_.has_value()) {
    http1_config_ = HttpConnection::CoreConfig(this);
  }
  return &*http1_config_;
}

absl::Status HttpServer::Start() {
  shard_->services().Register(this);
  struct Spec {
    const std::optional<HttpListenAddress>* address;
    bool tls;
  };
  for (const Spec& spec : {Spec{&config_->http_listen, false},
                           Spec{&config_->https_listen, true}}) {
    if (!spec.address->has_value()) continue;
    const HttpListenAddress& address = **spec.address;
    const bool tls = spec.tls;
    absl::StatusOr<engine::Listener*> listener = engine::Listener::Start(
        shard_, address.host, address.port,
        [this, tls](int slot, const ClientAddress& accepted) {
          engine::AcceptWithProxyPolicy(
              shard_, &config_->proxy_protocol, &proxy_gate_, slot, accepted,
              [this, tls](int slot, const ClientAddress& client) {
                HttpConnection::Accept(this, slot, tls, client);
              });
        });
    if (!listener.ok()) return listener.status();
    listeners_.push_back(*listener);
    if (shard_->id() == 0) {
      PIMAP_LOG(INFO) << "P-IMAP over HTTP" << (tls ? "S" : "") << " on "
                      << address.host << ":" << address.port
                      << config_->session.path;
    }
  }
  shard_->AddStopHook([this] { Stop(); });
  return absl::OkStatus();
}

void HttpServer::Stop() { Drain("Server shutting down"); }

size_t HttpServer::Drain(absl::string_view reason) {
  stopping_ = true;
  for (engine::Listener* listener : listeners_) listener->Stop();
  listeners_.clear();
  proxy_gate_.AbortAll();  // not served: nothing is accepted any more
  // Shutdown() unregisters: iterate over copies.
  std::vector<HttpServerConnection*> connections(connections_.begin(),
                                                 connections_.end());
  size_t told = 0;
  for (HttpServerConnection* connection : connections) {
    if (!connections_.contains(connection)) continue;
    connection->Shutdown();
    ++told;
  }
  std::vector<HttpSession*> sessions;
  for (const auto& [cookie, session] : cookies_) sessions.push_back(session);
  for (HttpSession* session : sessions) session->End(reason);
  return told + sessions.size();
}

void HttpServer::Register(HttpServerConnection* connection) {
  connections_.insert(connection);
}

void HttpServer::Unregister(HttpServerConnection* connection) {
  connections_.erase(connection);
}

ShardCounters& HttpServer::counters() { return shard_->counters(); }
TimerWheel& HttpServer::timers() { return shard_->timers(); }

PreAuthGate* HttpServer::AdmitPreAuth(const ClientAddress& client,
                                      bool* refused) {
  *refused = false;
  PreAuthGate* gate = shard_->services().Find<PreAuthGate>();
  if (gate == nullptr || gate->Admit(client.peer)) return gate;
  *refused = true;
  CounterAdd(shard_->counters().preauth_refused);
  PIMAP_LOG(INFO).Conn(client) << "refused: too many connections not logged in";
  return nullptr;
}
int HttpServer::shard_id() const { return shard_->id(); }
int HttpServer::shard_count() const { return shard_->count(); }
cluster::ShardCluster* HttpServer::cluster() {
  return shard_->services().Find<cluster::ShardCluster>();
}

session::LoginServices HttpServer::LoginServices() {
  return {{sessions_, &shard_->counters(), &shard_->timers(), pool_,
           config_->store_timeout_ms, &compressor(), config_->max_output_bytes,
           shard_->services().Find<convert::Transcoder>()},
          connector_,
          auth_cache_,
          config_->session.limits,
          config_->park,
          shard_->services().Find<session::LoginThrottle>(),
          shard_->services().Find<cluster::ShardCluster>()};
}

RequestRoute HttpServer::Route(http::HttpRequest& request, bool tls) {
  absl::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (absl::StartsWith(path, config_->session.path) &&
      absl::StartsWith(path.substr(config_->session.path.size()), "/dict/")) {
    return EventDictionaryDocument(
        request, path.substr(config_->session.path.size() + 6));
  }
  if (path != config_->session.path) return Fail(404, "Not found");
  if (request.method != "POST") {
    return Fail(405, "Only POST carries P-IMAP commands", false,
                "Allow: POST\r\n");
  }
  if (request.version_minor == 0) {
    // Responses stream (chunked, long polls): HTTP/1.0 cannot carry them.
    return Fail(505, "P-IMAP over HTTP needs HTTP/1.1", true);
  }
  const std::string* content_type = request.Header("content-type");
  if (!request.body.empty() &&
      (content_type == nullptr || !AcceptedMediaType(*content_type))) {
    return Fail(415,
                "Send application/vnd.pimap (or application/vnd.lemonade, "
                "text/plain)");
  }
  absl::StatusOr<http::ContentCoding> body_coding =
      http::ParseContentEncoding(request.Header("content-encoding"));
  if (!body_coding.ok()) {
    return Fail(415, "Request bodies may be coded with gzip or zstd only",
                false, "Accept-Encoding: zstd, gzip\r\n");
  }
  if (*body_coding != http::ContentCoding::kIdentity) {
    // Decoded within the same bound as a plain body: a ratio bomb stops
    // there and the connection closes (the rest of it is not wanted).
    absl::StatusOr<std::string> decoded =
        http::DecodeBody(*body_coding, request.body, config_->max_body_bytes);
    if (absl::IsResourceExhausted(decoded.status())) {
      return Fail(413, "Decoded request body too large", true);
    }
    if (!decoded.ok()) {
      return Fail(400, absl::StrCat("Request body does not decode: ",
                                    decoded.status().message()));
    }
    request.body = *std::move(decoded);
    // Decoded once: a hand-over must not decode it again on the owner shard.
    for (auto& [name, value] : request.headers) {
      if (name == "content-encoding") value = "identity";
    }
  }
  if (stopping_) {
    return Fail(503, "Server shutting down", true, "Retry-After: 5\r\n");
  }
  RequestRoute route;
  route.kind = RequestRoute::Kind::kServe;
  route.coding =
      http::NegotiateResponseCoding(request.Header("accept-encoding"));
  const std::string cookie = SessionCookie(request);
  if (!cookie.empty()) {
    const int owner = ShardOfCookie(cookie);
    if (owner >= 0 && owner != shard_->id()) return HandOverTo(owner);
    route.session = FindSession(cookie);
    // An unknown cookie never finds another session: it logs in afresh.
    if (route.session == nullptr)
      route.session = new HttpSession(this, tls, true);
    return route;
  }
  if (std::optional<std::string> user =
          FirstLoginUser(request.body, config_->session.limits,
                         &config_->session.user_name_format)) {
    const int owner = static_cast<int>(
        ShardForUser(*user, static_cast<uint32_t>(shard_->count())));
    if (owner != shard_->id()) return HandOverTo(owner);
  }
  route.session = new HttpSession(this, tls, false);
  return route;
}

// GET <path>/dict/<id>: the dictionary of pushed-event frames
// (docs/zstd-event-frames.md), for devices that fetch it over HTTPS rather
// than with XZSTDDICT. Its content never changes under an id: cacheable.
RequestRoute HttpServer::EventDictionaryDocument(
    const http::HttpRequest& request, absl::string_view id) {
  if (request.method != "GET" && request.method != "HEAD") {
    return Fail(405, "Dictionaries are read with GET", false, "Allow: GET\r\n");
  }
  const http::EventDictionary* dictionary = compressor().event_dictionary();
  uint32_t asked = 0;
  if (dictionary == nullptr || !absl::SimpleAtoi(id, &asked) ||
      asked != dictionary->id()) {
    return Fail(404, "No such dictionary");
  }
  RequestRoute route;
  route.kind = RequestRoute::Kind::kDocument;
  route.status = 200;
  route.content_type = "application/octet-stream";
  route.extra_headers =
      "Cache-Control: public, max-age=31536000, immutable\r\n";
  if (request.method == "GET") route.body = std::string(dictionary->bytes());
  return route;
}

// "<shard>-<32 hex digits>": 128 random bits, and the shard that owns the
// session so that any shard can route the request without a lookup.
std::string HttpServer::Authenticated(HttpSession* session) {
  uint8_t random[16];
  RAND_bytes(random, sizeof(random));
  std::string cookie =
      absl::StrCat(shard_->id(), "-",
                   absl::BytesToHexString(absl::string_view(
                       reinterpret_cast<const char*>(random), sizeof(random))));
  cookies_[cookie] = session;
  return cookie;
}

void HttpServer::Ended(HttpSession* session) {
  auto it = cookies_.find(session->cookie());
  if (it != cookies_.end() && it->second == session) cookies_.erase(it);
}

HttpSession* HttpServer::FindSession(absl::string_view cookie) const {
  auto it = cookies_.find(cookie);
  return it == cookies_.end() ? nullptr : it->second;
}

int HttpServer::ShardOfCookie(absl::string_view cookie) const {
  const size_t dash = cookie.find('-');
  int shard = -1;
  if (dash == absl::string_view::npos ||
      !absl::SimpleAtoi(cookie.substr(0, dash), &shard) || shard < 0 ||
      shard >= shard_->count()) {
    return -1;
  }
  return shard;
}

}  // namespace pimap::http_binding
