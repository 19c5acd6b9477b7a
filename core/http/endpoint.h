// An HTTP/1.1 endpoint on a shard's io_uring ring: a listener, its
// connections and a route table (path -> methods -> handler), for the
// gateway's small endpoints: the operator's (--admin-listen: GET /metrics;
// issue 17 adds its pimapctl commands as more routes) and the store-event
// intake (store/events/event_intake.h, a POST route). Its connections are the
// gateway's one HTTP/1.1 server connection (http1_connection.h, shared with
// the P-IMAP binding), whose handler the endpoint is: they read requests with
// the shared parser (request_parser.h) and answer with the shared response
// writer (response.h); the endpoint adds content coding (content_coding.h).
//
// Connection handling (the connection's), all bounded and none of it blocking
// the shard:
//  * keep-alive, pipelined requests answered in order; a peer that does not
//    read its answers (more than kMaxPendingOutput queued) is not read either
//    until they drain;
//  * the parser's bounds (header block 16 KiB -> 431, body max_body_bytes ->
//    413); its errors close the connection after their answer (so do 4xx
//    answers with close_after_client_errors);
//  * "Expect: 100-continue" is answered 100 before the body is read;
//  * a connection with no complete request for idle_timeout_ms is closed,
//    whether idle or stuck half-way through a request (the clock is not reset
//    by each byte, so a trickling client cannot hold it);
//  * at most max_connections at once; more get 503 + Retry-After: 1 and are
//    closed.
// Routing: an unknown path -> 404; a known path with another method -> 405
// with Allow; HEAD is served wherever GET is, with GET's headers and no body.
//
// A route answers at once (handler) or later (deferred: it needs answers from
// other shards, say): the connection then waits, reading no further request,
// until the route's EndpointReply is sent, on the endpoint's shard thread.
#ifndef PIMAP_CORE_HTTP_ENDPOINT_H_
#define PIMAP_CORE_HTTP_ENDPOINT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/http/request_parser.h"
#include "core/http/server_connection.h"

namespace pimap::engine {
class Listener;
class Shard;
}  // namespace pimap::engine

namespace pimap::http {

struct EndpointResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::string extra_headers;  // "Name: value\r\n" lines
  // The body may be sent with the content coding the request accepts (gzip,
  // zstd) when the shard has a compressor.
  bool compressible = false;
};

// A handler runs on the endpoint's shard thread, between the shard's other
// work: it must not block.
using EndpointHandler = std::function<EndpointResponse(const HttpRequest&)>;

class HttpEndpoint;

// The one answer of a deferred route, sent later on the endpoint's shard
// thread (post it back there first). Copyable; only the first Send() counts.
// When the connection closed (or the endpoint stopped) in between, Send()
// drops the answer: nobody is waiting for it.
class EndpointReply {
 public:
  EndpointReply() = default;
  void Send(EndpointResponse response) const;
  // The connection still waits for this answer (shard thread only).
  bool waiting() const;

 private:
  friend class HttpEndpoint;
  struct Exchange;
  explicit EndpointReply(std::shared_ptr<Exchange> exchange)
      : exchange_(std::move(exchange)) {}
  std::shared_ptr<Exchange> exchange_;
};

// Runs on the endpoint's shard thread like EndpointHandler; it must not block
// either, but answers through `reply` whenever it is ready.
using DeferredEndpointHandler =
    std::function<void(const HttpRequest&, EndpointReply reply)>;

struct EndpointRoute {
  std::string path;                  // exact match; the query is ignored
  std::vector<std::string> methods;  // e.g. {"GET"}; HEAD is implied by GET
  EndpointHandler handler;           // either this ...
  DeferredEndpointHandler deferred = nullptr;  // ... or this
};

// Why the endpoint answered without a handler.
enum class EndpointRefusal {
  kOverCapacity,  // 503: past max_connections; closed before any request
  kBadRequest,    // the parser's error (400, 411, 413, 431, 501, ...); closed
  kNoRoute,       // 404 unknown path, or 405 another method
};

struct HttpEndpointConfig {
  std::string name = "http endpoint";  // in logs
  std::string host;
  uint16_t port = 0;
  // Instead of host:port: a Unix stream socket at this path (created anew,
  // with unix_mode: file permissions are its access control).
  std::string unix_path;
  uint32_t unix_mode = 0600;
  size_t max_connections = 64;
  int64_t idle_timeout_ms = 30000;
  size_t max_body_bytes = 4096;
  // Every 4xx answer (a handler's or the route table's) closes the connection
  // after it, as the parser's errors do: for peers whose errors mean a
  // misconfigured or hostile sender rather than a next request worth reading.
  bool close_after_client_errors = false;
  // Optional: the number of open connections, kept here (a metric's gauge).
  std::atomic<int64_t>* connections_gauge = nullptr;
  // Optional, on the shard thread: an answer the endpoint gave itself, for the
  // owner's counters and logs. It must not block.
  std::function<void(EndpointRefusal why, int status, absl::string_view reason)>
      on_refusal;
};

class HttpEndpoint final : private ServerHandler {
 public:
  // Stop reading a connection whose peer does not read our answers.
  static constexpr size_t kMaxPendingOutput = 256 * 1024;

  // Shard thread: binds (SO_REUSEPORT) and starts accepting. Freed by Stop(),
  // which the caller registers as a stop hook of the shard.
  static absl::StatusOr<HttpEndpoint*> Start(engine::Shard* shard,
                                             const HttpEndpointConfig& config,
                                             std::vector<EndpointRoute> routes);
  // Shard thread: stops accepting, closes every connection, frees itself.
  void Stop();

  // The answer to one request by the route table, before HEAD and content
  // coding are applied (no I/O: unit-tested on its own). *routed (if given):
  // false for the table's own 404/405. A deferred route's request: *deferred
  // is set to the route and the answer's status is 0 (none yet); without
  // `deferred`, 500.
  static EndpointResponse Dispatch(const std::vector<EndpointRoute>& routes,
                                   const HttpRequest& request,
                                   bool* routed = nullptr,
                                   const EndpointRoute** deferred = nullptr);
  // The answer to `request` as it goes out: Dispatch(), then the content
  // coding (the connection sends HEAD's headers only). *close: the connection
  // closes after this answer (close_after_client_errors).
  EndpointResponse Answer(const HttpRequest& request, bool* close);

  size_t connection_count() const { return connections_.size(); }
  // Deferred answers not sent yet.
  size_t pending_count() const { return pending_.size(); }

 private:
  friend class EndpointReply;
  HttpEndpoint(engine::Shard* shard, const HttpEndpointConfig& config,
               std::vector<EndpointRoute> routes);
  ~HttpEndpoint();
  void Accept(int slot);
  void Refused(EndpointRefusal why, int status, absl::string_view reason);
  // The 4xx close rule and content coding, for any answer.
  void Finish(const HttpRequest& request, EndpointResponse& r, bool* close);
  void CompleteDeferred(EndpointReply::Exchange& exchange,
                        EndpointResponse response);

  // ServerHandler: every request is answered at once, from the route table.
  void OnRequest(ServerConnection& connection, HttpRequest request) override;
  void OnRequestError(ServerConnection& connection, int status,
                      absl::string_view reason, bool answered) override;
  void OnClosed(ServerConnection& connection, bool output_lost) override;

  engine::Shard* shard_;
  HttpEndpointConfig config_;
  std::vector<EndpointRoute> routes_;
  ServerConnectionConfig connection_config_;  // all its connections'
  engine::Listener* listener_ = nullptr;
  // The Unix socket file this endpoint made (device and inode): Stop removes
  // the path only while it is still that file. Another process (a new pimapd
  // taking over in a restart) may have put its own socket there since.
  uint64_t unix_dev_ = 0;
  uint64_t unix_ino_ = 0;
  absl::flat_hash_set<ServerConnection*> connections_;
  // The deferred answer each waiting connection waits for (one at most: a
  // connection reads no further request until it is answered).
  absl::flat_hash_map<ServerConnection*,
                      std::shared_ptr<EndpointReply::Exchange>>
      pending_;
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_ENDPOINT_H_
