// One HTTP(S) request of the gateway's own (to a push service or an operator's
// webhook), on the shard's ring: connect (engine::Socket), TLS
// (tls::TlsTransport over a verified client context) unless the target is
// plain http, write the request, read the response with the HTTP core's
// parser (core/http/request_parser.h in response mode), all within a
// deadline. Connections are HTTP/1.1 keep-alive and reused: a per-shard pool
// keeps a few idle ones per origin (scheme, host and addresses) and bounds the
// connections per origin (requests beyond wait for one); a request that says
// "Connection: close", or a response that does, ends its connection. Never
// blocks the shard; `done` runs exactly once, on the shard's thread, and the
// object frees itself.
#ifndef PIMAP_BINDINGS_OUTBAND_HTTP_HTTPS_REQUEST_H_
#define PIMAP_BINDINGS_OUTBAND_HTTP_HTTPS_REQUEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/engine/resolver.h"
#include "core/http/request_parser.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::tls {
class TlsContext;
}

namespace pimap::outband_http {

struct HttpsTarget {
  // Tried in order until one connects (e.g. ::1 then 127.0.0.1 for
  // "localhost"); at least one.
  std::vector<engine::ResolvedAddress> addresses;
  std::string host;  // SNI and the certificate's name (or IP literal)
};

// Largest response body read by default (push services answer with a few
// bytes); a caller that expects more (etcd's ranges) passes its own bound.
inline constexpr size_t kMaxResponseBody = 16 * 1024;

using HttpsDone = absl::AnyInvocable<void(absl::StatusOr<http::HttpRequest>)>;

// `request`: the whole request (head and body). `tls` null: plain HTTP (the
// caller allows it only where it may: an operator's webhook on a private
// address). Errors: Unavailable (connect,
// TLS, closed before a whole response), DeadlineExceeded (`timeout_ms`),
// InvalidArgument (a malformed response, or a body over
// `max_response_body`). Bodies may come with Content-Length or chunked (with
// trailer fields, dropped).
void StartHttpsRequest(engine::Shard* shard, const tls::TlsContext* tls,
                       const HttpsTarget& target, std::string request,
                       int64_t timeout_ms, HttpsDone done,
                       size_t max_response_body = kMaxResponseBody);

}  // namespace pimap::outband_http

#endif  // PIMAP_BINDINGS_OUTBAND_HTTP_HTTPS_REQUEST_H_
