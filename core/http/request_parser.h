// An incremental, bounded HTTP/1.1 request parser: the one every HTTP endpoint of
// the gateway reads its requests with (the store-event intake, the P-IMAP HTTP
// binding).
//
// Feed() whatever the connection received (any split, down to one byte at a time),
// then call Next() until it stops returning kRequest: several pipelined requests in
// one chunk come out one by one, and the bytes of a request not yet complete stay
// buffered. Deliberately small: requests with Content-Length bodies only.
//  * Header block (request line + headers + blank line) at most kMaxHeaderBytes,
//    else 431. Body only by Content-Length, at most max_body_bytes() (default kMaxBodyBytes), else 413. Any
//    Transfer-Encoding (chunked) -> 411. POST/PUT without Content-Length -> 411.
//  * Lines end in CRLF; a bare LF is accepted too (RFC 9112 §2.2). Obsolete line
//    folding, control characters, a malformed request line or header, a version
//    other than HTTP/1.0 or 1.1, conflicting Content-Length values -> 400.
//  * After an error the parser stays failed: the connection answers and closes
//    (it can no longer tell where the next request would start).
//  * keep_alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
//    "Connection: keep-alive".
#ifndef PIMAP_CORE_HTTP_REQUEST_PARSER_H_
#define PIMAP_CORE_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::http {

struct HttpRequest {
  std::string method;  // as sent (methods are case-sensitive)
  std::string target;  // request-target, e.g. "/dovecot"
  int version_minor = 1;
  // Names lower-cased, values with surrounding whitespace removed, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;

  // The first header named `lower_name` (lower case), or nullptr.
  const std::string* Header(absl::string_view lower_name) const;
};

class HttpRequestParser {
 public:
  static constexpr size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr size_t kMaxBodyBytes = 1024 * 1024;

  enum class Result { kNeedMore, kRequest, kError };

  explicit HttpRequestParser(size_t max_body_bytes = kMaxBodyBytes)
      : max_body_bytes_(max_body_bytes) {}
  size_t max_body_bytes() const { return max_body_bytes_; }

  // Appends received bytes. Cheap; all parsing happens in Next().
  void Feed(absl::string_view data);
  // kRequest: `*out` holds the next complete request. kNeedMore: wait for more
  // bytes. kError: error_status()/error_reason() say why; sticky.
  Result Next(HttpRequest* out);

  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }
  // Bytes received and not yet consumed by a returned request.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  Result Fail(int status, std::string reason);
  Result ParseHead(absl::string_view head);
  void Compact();

  size_t max_body_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;    // bytes of buffer_ that belong to returned requests
  size_t scan_from_ = 0;   // where to resume looking for the end of the head
  bool have_head_ = false;
  size_t head_end_ = 0;    // offset (from consumed_) of the first body byte
  size_t body_length_ = 0;
  HttpRequest pending_;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_REQUEST_PARSER_H_
