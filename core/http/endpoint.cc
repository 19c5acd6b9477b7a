// A small HTTP/1.1 endpoint on a shard's ring (endpoint.h): connections,
// bounds, the route table, HEAD and content coding.
#include "core/http/endpoint.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/base/log.h"
#include "core/base/timer_wheel.h"
#include "core/engine/listener.h"
#include "core/engine/service_registry.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/http/content_coding.h"
#include "core/http/response.h"

namespace pimap::http {

class EndpointConnection final : public engine::TransportHandler {
 public:
  EndpointConnection(HttpEndpoint* endpoint, engine::Socket* socket)
      : endpoint_(endpoint),
        socket_(socket),
        parser_(endpoint->config_.max_body_bytes) {
    endpoint_->connections_.insert(this);
    if (auto* gauge = endpoint_->config_.connections_gauge) {
      gauge->fetch_add(1, std::memory_order_relaxed);
    }
    last_request_ms_ = MonotonicNowMs();
    ArmIdleTimer(endpoint_->config_.idle_timeout_ms);
    socket_->SetHandler(this);
  }

  // HttpEndpoint::Stop(): close now.
  void Shutdown() {
    socket_->Close();
    Free();
  }

  void OnTransportData(absl::string_view data) override {
    parser_.Feed(data);
    ReadRequests();
  }

  void OnTransportDrained() override {
    if (!paused_) return;
    paused_ = false;
    socket_->SetReading(true);
    ReadRequests();  // pipelined requests held back while output was full
  }

  void OnTransportClosed(absl::Status) override { Free(); }

 private:
  void ReadRequests() {
    HttpRequest request;
    for (;;) {
      // Answers queue up only while the peer reads them: past the bound,
      // the requests already received wait in the parser and nothing more
      // is read until the output drains.
      if (socket_->PendingOutput() > HttpEndpoint::kMaxPendingOutput) {
        if (!paused_) socket_->SetReading(false);
        paused_ = true;
        return;
      }
      switch (parser_.Next(&request)) {
        case HttpRequestParser::Result::kNeedMore:
          if (parser_.ContinueDue()) {
            socket_->Write(absl::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
          }
          return;
        case HttpRequestParser::Result::kError:
          // The parser cannot tell where a next request would start: answer
          // and close.
          endpoint_->Refused(EndpointRefusal::kBadRequest,
                             parser_.error_status(), parser_.error_reason());
          socket_->Write(WholeResponse(
              parser_.error_status(), "", "text/plain",
              absl::StrCat(parser_.error_reason(), "\n"), /*close=*/true));
          CloseAndFree();
          return;
        case HttpRequestParser::Result::kRequest: {
          last_request_ms_ = MonotonicNowMs();
          bool close = !request.keep_alive;
          socket_->Write(endpoint_->Respond(request, &close));
          if (close) {
            CloseAndFree();
            return;
          }
          break;
        }
      }
    }
  }

  // One timer per connection, re-armed for what is left of the timeout since
  // the last complete request (not per byte).
  void ArmIdleTimer(int64_t delay_ms) {
    idle_timer_ = endpoint_->shard_->timers().Schedule(delay_ms, [this] {
      idle_timer_ = 0;
      const int64_t idle = MonotonicNowMs() - last_request_ms_;
      const int64_t limit = endpoint_->config_.idle_timeout_ms;
      if (idle >= limit) {
        // Closed without an answer when idle between requests (RFC 9112
        // §9.5); a half-sent request is dropped the same way.
        CloseAndFree();
      } else {
        ArmIdleTimer(limit - idle);
      }
    });
  }

  void CloseAndFree() {
    socket_->Close();  // flushes the answers, then closes; no callbacks after
    Free();
  }

  void Free() {
    if (idle_timer_ != 0) endpoint_->shard_->timers().Cancel(idle_timer_);
    endpoint_->connections_.erase(this);
    if (auto* gauge = endpoint_->config_.connections_gauge) {
      gauge->fetch_sub(1, std::memory_order_relaxed);
    }
    delete this;
  }

  HttpEndpoint* endpoint_;
  engine::Socket* socket_;
  HttpRequestParser parser_;
  int64_t last_request_ms_ = 0;
  TimerWheel::TimerId idle_timer_ = 0;
  bool paused_ = false;
};

HttpEndpoint::HttpEndpoint(engine::Shard* shard,
                           const HttpEndpointConfig& config,
                           std::vector<EndpointRoute> routes)
    : shard_(shard), config_(config), routes_(std::move(routes)) {}

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
  absl::StatusOr<engine::Listener*> listener = engine::Listener::Start(
      shard, config.host, config.port, [endpoint](int slot) {
        engine::Socket* socket = engine::Socket::Adopt(endpoint->shard_, slot);
        if (endpoint->connections_.size() >=
            endpoint->config_.max_connections) {
          endpoint->Refused(EndpointRefusal::kOverCapacity, 503,
                            "too many connections");
          socket->Write(absl::string_view(
              "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
              "Content-Length: 0\r\nConnection: close\r\n\r\n"));
          socket->Close();
          return;
        }
        new EndpointConnection(endpoint, socket);
      });
  if (!listener.ok()) {
    delete endpoint;
    return absl::Status(
        listener.status().code(),
        absl::StrCat(config.name, " ", config.host, ":", config.port, ": ",
                     listener.status().message()));
  }
  endpoint->listener_ = *listener;
  return endpoint;
}

void HttpEndpoint::Stop() {
  if (listener_ != nullptr) listener_->Stop();
  listener_ = nullptr;
  auto connections = std::move(connections_);
  connections_.clear();
  for (EndpointConnection* c : connections) c->Shutdown();
  delete this;
}

EndpointResponse HttpEndpoint::Dispatch(
    const std::vector<EndpointRoute>& routes, const HttpRequest& request,
    bool* routed) {
  if (routed != nullptr) *routed = false;
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

std::string HttpEndpoint::Respond(const HttpRequest& request, bool* close) {
  bool routed = false;
  EndpointResponse r = Dispatch(routes_, request, &routed);
  if (!routed) {
    Refused(EndpointRefusal::kNoRoute, r.status,
            absl::StripSuffix(r.body, "\n"));
  }
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
  std::string out =
      WholeResponse(r.status, r.extra_headers, r.content_type, r.body, *close);
  // HEAD: the same headers (Content-Length of the GET body), no body.
  if (request.method == "HEAD") out.resize(out.find("\r\n\r\n") + 4);
  return out;
}

}  // namespace pimap::http
