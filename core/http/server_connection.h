// What an HTTP/1.1 server connection *is* to the code that answers its
// requests, and what such a handler is to the connection, apart from any
// implementation (Http1Connection, http1_connection.h, is the one over an
// engine::Transport). The gateway's one HTTP server core: every HTTP/1.1
// endpoint reads its requests and writes its answers through these (the admin
// endpoint and the store-event intake through HttpEndpoint's route table,
// endpoint.h; P-IMAP over HTTP through the binding's HttpConnection,
// bindings/http/http_connection.h).
//
// One request at a time is served: the connection hands a complete request to
// the handler (OnRequest) and reads no further request until the handler has
// ended its response, at once (Respond) or later and streamed (WriteHead,
// WriteBody..., EndResponse: a long poll). Pipelined requests are thus
// answered in order.
#ifndef PIMAP_CORE_HTTP_SERVER_CONNECTION_H_
#define PIMAP_CORE_HTTP_SERVER_CONNECTION_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/http/content_coding.h"
#include "core/http/request_parser.h"

namespace pimap::http {

class ServerConnection {
 public:
  // Whether the connection stays open after the response being written: the
  // request's wish (HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
  // "Connection: keep-alive") unless CloseAfterResponse() was called.
  virtual bool keep_alive() const = 0;
  // The connection closes once the response being written has been sent
  // ("Connection: close" goes with its head). Before Respond()/WriteHead().
  virtual void CloseAfterResponse() = 0;

  // The whole response to the request being served, as WholeResponse() writes
  // it; to HEAD, the same head (the body's Content-Length) and no body. Ends
  // the exchange: the next request is read (or the connection closes).
  virtual void Respond(int status, absl::string_view extra_headers,
                       absl::string_view content_type,
                       absl::string_view body) = 0;

  // A streamed response: the status line and `headers` ("Name: value\r\n"
  // lines), then Content-Length when `length` >= 0 or chunked framing when it
  // is -1. With a content coding (not identity) the body is coded on the way
  // out: held whole when its length is known (to send the coded length), else
  // coded and sent burst by burst, each decodable at once.
  virtual void WriteHead(int status, absl::string_view headers, int64_t length,
                         ContentCoding coding = ContentCoding::kIdentity) = 0;
  virtual void WriteBody(absl::string_view bytes) = 0;
  // The body is complete: the exchange ends as after Respond().
  virtual void EndResponse() = 0;

  // Bytes queued for the peer and not yet taken by the kernel.
  virtual size_t PendingOutput() const = 0;
  // Reading from the peer, while a request is served: a handler that takes a
  // streamed request body (OnRequestBody) pauses it while it has a backlog.
  virtual void SetReading(bool on) = 0;
  virtual bool is_tls() const = 0;
  // Closes now, dropping what is queued (a peer that does not read).
  virtual void Abort() = 0;
  // Closes now, after what is queued has been sent. The handler's OnClosed()
  // runs once the outermost call into the connection has returned (before
  // this returns when called from outside the handler's callbacks).
  virtual void Close() = 0;

 protected:
  ~ServerConnection() = default;
};

// Runs on the connection's shard thread, between the shard's other work: no
// call may block.
class ServerHandler {
 public:
  // Bytes as they arrive, before they are parsed (counters, the time of the
  // peer's last bytes). A handler that finds another protocol in the first
  // bytes may take the transport here (Http1Connection::Release).
  virtual void OnBytes(ServerConnection& connection, absl::string_view data) {}
  // One complete request (with stream_chunked_bodies, a chunked request at its
  // head: request.streaming, its body follows through OnRequestBody). Answer
  // through `connection`, now or later.
  virtual void OnRequest(ServerConnection& connection, HttpRequest request) = 0;
  // The decoded bytes of a streamed request body as they arrive; `end`: the
  // body is complete.
  virtual void OnRequestBody(ServerConnection& connection,
                             absl::string_view data, bool end) {}
  // The connection refused a request itself (the parser's 4xx/5xx, or 408 for
  // one not complete in time) and closes: `answered` with `reason`, or not
  // when the response was open already (a streamed request body broke). For
  // the handler's counters and logs.
  virtual void OnRequestError(ServerConnection& connection, int status,
                              absl::string_view reason, bool answered) {}
  // The response's last bytes are queued (Respond, EndResponse); the next
  // request has not been read yet, nor has the connection closed.
  virtual void OnResponseComplete(ServerConnection& connection) {}
  // Everything written so far has been taken by the kernel.
  virtual void OnDrained(ServerConnection& connection) {}
  // The last call: the connection closed. `output_lost`: the peer closed or
  // the transport failed, or Abort(): what was queued may not have reached
  // the peer; else this side closed (Close(), a deadline, an error answer)
  // and what was queued still goes out. The connection is freed after this
  // returns. Never called from inside OnRequest() and the other calls above:
  // it waits for them to return.
  virtual void OnClosed(ServerConnection& connection, bool output_lost) = 0;

 protected:
  ~ServerHandler() = default;
};

struct ServerConnectionConfig {
  // The parser's body bound (413 past it).
  size_t max_body_bytes = HttpRequestParser::kMaxBodyBytes;
  // Chunked request bodies reach the handler as they arrive (OnRequestBody)
  // rather than whole.
  bool stream_chunked_bodies = false;
  // No complete request for this long since the last exchange ended (or the
  // connection opened): closed without an answer (RFC 9112 §9.5). Unless
  // request_timeout_ms is set, this also bounds a request stuck half-way: the
  // clock is not reset by each byte, so a trickling client cannot hold it.
  int64_t idle_timeout_ms = 30000;
  // > 0: a request begun (its first byte) must be complete within this long,
  // else 408 and the connection closes; the idle clock then only runs while
  // no request is begun.
  int64_t request_timeout_ms = 0;
  // A peer that does not read its answers: past this much queued output no
  // further request is read (nor anything more from the peer) until it drains.
  size_t max_pending_output = 256 * 1024;
  // While a request is served, bytes of later ones are read ahead up to this
  // much; reading pauses beyond.
  size_t max_read_ahead = 64 * 1024;
  // For coded streamed responses (WriteHead with a coding); may be null when
  // no handler asks for one.
  ShardCompressor* compressor = nullptr;
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_SERVER_CONNECTION_H_
