// An incremental, bounded HTTP/1.1 request parser: the one every HTTP endpoint
// of the gateway reads its requests with (the store-event intake, the P-IMAP
// HTTP binding, the admin endpoint). Hand-written and fuzzed: llhttp is not
// in Debian 12 and http-parser, which is, is archived upstream.
//
// Feed() whatever the connection received (any split, down to one byte at a
// time), then call Next() until it stops returning kRequest: several pipelined
// requests in one chunk come out one by one, and the bytes of a request not yet
// complete stay buffered.
//  * Header block (request line + headers + blank line) at most
//    kMaxHeaderBytes and kMaxHeaderFields fields, else 431.
//  * The body by Content-Length or "Transfer-Encoding: chunked" (RFC 9112
//    §7.1; chunk extensions and trailer fields are read and dropped), at most
//    max_body_bytes() decoded, else 413. Any other transfer coding -> 501;
//    both framings at once (a request-smuggling vector), or chunked in
//    HTTP/1.0 -> 400. POST/PUT with neither -> 411.
//  * Lines end in CRLF; a bare LF is accepted too (RFC 9112 §2.2). Obsolete
//    line folding, control characters, a malformed request line or header, a
//    version other than HTTP/1.0 or 1.1, conflicting Content-Length values
//    -> 400.
//  * "Expect: 100-continue": ContinueDue() says once that the client waits for
//    the interim response before it sends the body.
//  * After an error the parser stays failed: the connection answers and closes
//    (it can no longer tell where the next request would start).
//  * keep_alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
//    "Connection: keep-alive".
//  * Responses too (set_parse_responses), for the gateway's HTTP client
//    (bindings/webpush): the same framing and bounds.
#ifndef PIMAP_CORE_HTTP_REQUEST_PARSER_H_
#define PIMAP_CORE_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::http {

// Also the head and body of a response, for the gateway's own requests
// (HttpRequestParser::set_parse_responses): then `status` is set and
// `method`/`target` are empty.
struct HttpRequest {
  std::string method;  // as sent (methods are case-sensitive)
  int status = 0;      // responses only: the status code
  std::string target;  // request-target, e.g. "/dovecot"
  int version_minor = 1;
  // Names lower-cased, values with surrounding whitespace removed, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;
  // Its chunked body streams (HttpRequestParser::NextBody), not in `body`.
  bool streaming = false;

  // The first header named `lower_name` (lower case), or nullptr.
  const std::string* Header(absl::string_view lower_name) const;
};

class HttpRequestParser {
 public:
  static constexpr size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr size_t kMaxHeaderFields = 100;
  static constexpr size_t kMaxBodyBytes = 1024 * 1024;

  enum class Result { kNeedMore, kRequest, kError };

  explicit HttpRequestParser(size_t max_body_bytes = kMaxBodyBytes)
      : max_body_bytes_(max_body_bytes) {}
  size_t max_body_bytes() const { return max_body_bytes_; }

  // Parses responses instead (before the first Feed): a status line
  // "HTTP/1.x NNN reason" instead of a request line, no Host needed, no body
  // for 1xx/204/304, and a response with neither framing header has an empty
  // body and is not keep-alive (its connection closes after it). Errors keep
  // the request statuses (400...): the caller only needs "malformed".
  void set_parse_responses(bool on) { responses_ = on; }

  // Chunked requests come out at their head (HttpRequest::streaming), and
  // their body through NextBody() as it arrives: a body that never ends (a
  // persistent full-duplex exchange) is read chunk by chunk, each chunk
  // within max_body_bytes(). Off by default (whole requests).
  void set_stream_chunked_bodies(bool on) { stream_chunked_bodies_ = on; }
  bool in_streamed_body() const { return streaming_body_; }
  enum class BodyResult { kData, kEnd, kNeedMore, kError };
  // While a streamed body is open: appends the next decoded bytes to `*out`
  // (kData: at most one chunk's worth, so call again while kData), or says it
  // ended (kEnd, with its last bytes), or that nothing new is here
  // (kNeedMore). Next() must not be called until kEnd.
  BodyResult NextBody(std::string* out);

  // Appends received bytes. Cheap; all parsing happens in Next().
  void Feed(absl::string_view data);
  // kRequest: `*out` holds the next complete request. kNeedMore: wait for more
  // bytes. kError: error_status()/error_reason() say why; sticky.
  Result Next(HttpRequest* out);

  // True once per request whose head asked for "100 Continue" while its body
  // has not fully arrived: the caller writes the interim response.
  bool ContinueDue();

  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }
  // Bytes received and not yet consumed by a returned request.
  size_t buffered() const { return buffer_.size() - consumed_; }
  // Those bytes, handed to another parser (a connection moving to another
  // shard); this one starts afresh. Call only between requests.
  std::string TakeBuffered();

 private:
  Result Fail(int status, std::string reason);
  Result ParseHead(absl::string_view head);
  Result ParseRequestLine(absl::string_view line);
  Result ParseStatusLine(absl::string_view line);
  // The header fields (lines[1..]) and the framing they say.
  Result ParseFields(const std::vector<absl::string_view>& lines);
  // Decodes what has arrived of a chunked body into pending_.body.
  Result ParseChunks();
  void Compact();

  enum class ChunkState : uint8_t { kSize, kData, kDataEnd, kTrailer };

  size_t max_body_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;   // bytes of buffer_ that belong to returned requests
  size_t scan_from_ = 0;  // where to resume looking for the end of the head
  bool have_head_ = false;
  size_t head_end_ = 0;  // offset (from consumed_) of the first body byte
  size_t body_length_ = 0;
  // Chunked bodies: where decoding resumes (offset from consumed_), and in
  // which part of a chunk.
  bool chunked_ = false;
  ChunkState chunk_state_ = ChunkState::kSize;
  uint64_t chunk_left_ = 0;
  size_t chunk_pos_ = 0;
  size_t trailer_bytes_ = 0;
  bool continue_due_ = false;
  bool stream_chunked_bodies_ = false;
  bool streaming_body_ = false;
  bool responses_ = false;
  HttpRequest pending_;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_REQUEST_PARSER_H_
