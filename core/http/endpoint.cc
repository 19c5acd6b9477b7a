// A small HTTP/1.1 endpoint on a shard's ring (endpoint.h): the connection
// bound, the route table and content coding; the connections are the shared
// Http1Connection's.
#include "core/http/endpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/base/log.h"
#include "core/engine/inherited_sockets.h"
#include "core/engine/listener.h"
#include "core/engine/service_registry.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/http/content_coding.h"
#include "core/http/http1_connection.h"

namespace pimap::http {

// A deferred answer's state, shared by the endpoint (while the connection
// waits) and the route's EndpointReply copies. All on the shard thread.
struct EndpointReply::Exchange {
  HttpEndpoint* endpoint = nullptr;  // null: nobody waits any more
  ServerConnection* connection = nullptr;
  HttpRequest request;  // for HEAD and content coding at the end
};

void EndpointReply::Send(EndpointResponse response) const {
  if (exchange_ == nullptr || exchange_->endpoint == nullptr) return;
  exchange_->endpoint->CompleteDeferred(*exchange_, std::move(response));
}

bool EndpointReply::waiting() const {
  return exchange_ != nullptr && exchange_->endpoint != nullptr;
}

HttpEndpoint::HttpEndpoint(engine::Shard* shard,
                           const HttpEndpointConfig& config,
                           std::vector<EndpointRoute> routes)
    : shard_(shard), config_(config), routes_(std::move(routes)) {
  connection_config_.max_body_bytes = config_.max_body_bytes;
  connection_config_.idle_timeout_ms = config_.idle_timeout_ms;
  connection_config_.max_pending_output = kMaxPendingOutput;
}

HttpEndpoint::~HttpEndpoint() = default;

absl::StatusOr<HttpEndpoint*> HttpEndpoint::Start(
    engine::Shard* shard, const HttpEndpointConfig& config,
    std::vector<EndpointRoute> routes) {
  for (const EndpointRoute& route : routes) {
    if (route.path.empty() || route.path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(config.name, ": route path must start with '/'"));
    }
  }
  auto* endpoint = new HttpEndpoint(shard, config, std::move(routes));
  auto accept = [endpoint](int slot) { endpoint->Accept(slot); };
  absl::StatusOr<engine::Listener*> listener =
      config.unix_path.empty()
          ? engine::Listener::Start(shard, config.host, config.port,
                                    std::move(accept))
          : engine::Listener::StartUnix(shard, config.unix_path,
                                        config.unix_mode, std::move(accept));
  if (!listener.ok()) {
    delete endpoint;
    return absl::Status(
        listener.status().code(),
        absl::StrCat(config.name, " ",
                     config.unix_path.empty()
                         ? absl::StrCat(config.host, ":", config.port)
                         : config.unix_path,
                     ": ", listener.status().message()));
  }
  endpoint->listener_ = *listener;
  struct stat made {};
  if (!config.unix_path.empty() &&
      lstat(config.unix_path.c_str(), &made) == 0) {
    endpoint->unix_dev_ = made.st_dev;
    endpoint->unix_ino_ = made.st_ino;
  }
  return endpoint;
}

void HttpEndpoint::Accept(int slot) {
  engine::Socket* socket = engine::Socket::Adopt(shard_, slot);
  if (connections_.size() >= config_.max_connections) {
    Refused(EndpointRefusal::kOverCapacity, 503, "too many connections");
    socket->Write(absl::string_view(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"));
    socket->Close();
    return;
  }
  auto* connection =
      new Http1Connection(socket, &shard_->timers(), this, &connection_config_);
  connections_.insert(connection);
  if (auto* gauge = config_.connections_gauge) {
    gauge->fetch_add(1, std::memory_order_relaxed);
  }
  connection->Start();
}

void HttpEndpoint::OnClosed(ServerConnection& connection, bool) {
  connections_.erase(&connection);
  if (auto it = pending_.find(&connection); it != pending_.end()) {
    it->second->endpoint = nullptr;  // its answer, when it comes, is dropped
    it->second->connection = nullptr;
    pending_.erase(it);
  }
  if (auto* gauge = config_.connections_gauge) {
    gauge->fetch_sub(1, std::memory_order_relaxed);
  }
}

void HttpEndpoint::Stop() {
  if (listener_ != nullptr) listener_->Stop();
  listener_ = nullptr;
  // Each Close() tells OnClosed, which erases: iterate over a copy.
  std::vector<ServerConnection*> connections(connections_.begin(),
                                             connections_.end());
  for (ServerConnection* c : connections) c->Close();
  for (auto& [connection, exchange] : pending_) {
    exchange->endpoint = nullptr;
    exchange->connection = nullptr;
  }
  // Only its own file: a new pimapd may have put its socket there since (an
  // overlapping restart), and after an upgrade the file names the socket the
  // new process inherited (the same one).
  struct stat now {};
  if (!config_.unix_path.empty() && !engine::ListenersHandedOver() &&
      lstat(config_.unix_path.c_str(), &now) == 0 && now.st_dev == unix_dev_ &&
      now.st_ino == unix_ino_) {
    unlink(config_.unix_path.c_str());
  }
  delete this;
}

EndpointResponse HttpEndpoint::Dispatch(
    const std::vector<EndpointRoute>& routes, const HttpRequest& request,
    bool* routed, const EndpointRoute** deferred) {
  if (routed != nullptr) *routed = false;
  if (deferred != nullptr) *deferred = nullptr;
  absl::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  for (const EndpointRoute& route : routes) {
    if (route.path != path) continue;
    bool get = false;
    bool match = false;
    for (const std::string& method : route.methods) {
      match = match || method == request.method;
      get = get || method == "GET";
    }
    if (match || (get && request.method == "HEAD")) {
      if (routed != nullptr) *routed = true;
      if (route.deferred) {
        EndpointResponse r;
        if (deferred != nullptr) {
          *deferred = &route;
          r.status = 0;
        } else {
          r.status = 500;
          r.body = "deferred route answered synchronously\n";
        }
        return r;
      }
      return route.handler(request);
    }
    std::vector<std::string> allowed = route.methods;
    if (get) allowed.push_back("HEAD");
    EndpointResponse r;
    r.status = 405;
    r.extra_headers =
        absl::StrCat("Allow: ", absl::StrJoin(allowed, ", "), "\r\n");
    r.body = absl::StrCat("method not allowed; use ",
                          absl::StrJoin(allowed, " or "), "\n");
    return r;
  }
  EndpointResponse r;
  r.status = 404;
  std::vector<absl::string_view> paths;
  for (const EndpointRoute& route : routes) paths.push_back(route.path);
  r.body = absl::StrCat("not found; try ", absl::StrJoin(paths, " "), "\n");
  return r;
}

void HttpEndpoint::Refused(EndpointRefusal why, int status,
                           absl::string_view reason) {
  if (config_.on_refusal) config_.on_refusal(why, status, reason);
}

void HttpEndpoint::OnRequest(ServerConnection& connection,
                             HttpRequest request) {
  bool routed = false;
  const EndpointRoute* deferred = nullptr;
  EndpointResponse r = Dispatch(routes_, request, &routed, &deferred);
  if (deferred != nullptr) {
    auto exchange = std::make_shared<EndpointReply::Exchange>();
    exchange->endpoint = this;
    exchange->connection = &connection;
    exchange->request = std::move(request);
    pending_[&connection] = exchange;
    // The handler may answer before it returns; the copy keeps the route's
    // handler alive whatever it does.
    DeferredEndpointHandler handler = deferred->deferred;
    handler(exchange->request, EndpointReply(exchange));
    return;
  }
  if (!routed) {
    Refused(EndpointRefusal::kNoRoute, r.status,
            absl::StripSuffix(r.body, "\n"));
  }
  bool close = false;
  Finish(request, r, &close);
  if (close) connection.CloseAfterResponse();
  connection.Respond(r.status, r.extra_headers, r.content_type, r.body);
}

void HttpEndpoint::CompleteDeferred(EndpointReply::Exchange& exchange,
                                    EndpointResponse response) {
  ServerConnection* connection = exchange.connection;
  exchange.endpoint = nullptr;  // answered: later Send()s are dropped
  exchange.connection = nullptr;
  // Keeps `exchange` (and its request) alive past the erase.
  std::shared_ptr<EndpointReply::Exchange> held = pending_[connection];
  pending_.erase(connection);
  bool close = false;
  Finish(held->request, response, &close);
  if (close) connection->CloseAfterResponse();
  connection->Respond(response.status, response.extra_headers,
                      response.content_type, response.body);
}

void HttpEndpoint::OnRequestError(ServerConnection&, int status,
                                  absl::string_view reason, bool) {
  Refused(EndpointRefusal::kBadRequest, status, reason);
}

EndpointResponse HttpEndpoint::Answer(const HttpRequest& request, bool* close) {
  bool routed = false;
  EndpointResponse r = Dispatch(routes_, request, &routed);
  if (!routed) {
    Refused(EndpointRefusal::kNoRoute, r.status,
            absl::StripSuffix(r.body, "\n"));
  }
  Finish(request, r, close);
  return r;
}

void HttpEndpoint::Finish(const HttpRequest& request, EndpointResponse& r,
                          bool* close) {
  if (config_.close_after_client_errors && r.status >= 400 && r.status < 500) {
    *close = true;
  }
  if (r.compressible) {
    ShardCompressor* compressor = shard_->services().Find<ShardCompressor>();
    const ContentCoding coding =
        compressor == nullptr
            ? ContentCoding::kIdentity
            : NegotiateResponseCoding(request.Header("accept-encoding"));
    // The answer depends on Accept-Encoding whether coded or not (caches).
    r.extra_headers += "Vary: Accept-Encoding\r\n";
    if (coding != ContentCoding::kIdentity) {
      ResponseEncoder encoder(coding, compressor);
      std::string coded = encoder.Encode(r.body);
      coded += encoder.Finish();
      r.body = std::move(coded);
      absl::StrAppend(&r.extra_headers,
                      "Content-Encoding: ", ContentCodingName(coding), "\r\n");
    }
  }
}

}  // namespace pimap::http
