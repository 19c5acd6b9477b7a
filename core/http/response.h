// Writing HTTP/1.1 responses: the status line and headers, whole bodies, and
// the chunked coding of a streamed body. Shared by every HTTP endpoint of the
// gateway (store-event intake, P-IMAP binding).
#ifndef PIMAP_CORE_HTTP_RESPONSE_H_
#define PIMAP_CORE_HTTP_RESPONSE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pimap::http {

// The reason phrase of `status` ("Error" for codes the gateway never sends).
absl::string_view StatusText(int status);

// "HTTP/1.1 <status> <reason>\r\n" followed by `headers` (each line
// CRLF-terminated). The caller adds its framing header and the blank line.
void AppendStatusLine(std::string* out, int status);

// A complete response with a body of `content_type` (none for 204/304) and
// "Connection: close" when `close`.
std::string WholeResponse(int status, absl::string_view extra_headers,
                          absl::string_view content_type,
                          absl::string_view body, bool close);

// One chunk of a chunked body (nothing for empty data: an empty chunk would
// end the body), and the last chunk.
void AppendChunk(std::string* out, absl::string_view data);
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_RESPONSE_H_
