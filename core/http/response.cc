// HTTP/1.1 response writing (response.h).
#include "core/http/response.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pimap::http {

absl::string_view StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

void AppendStatusLine(std::string* out, int status) {
  absl::StrAppend(out, "HTTP/1.1 ", status, " ", StatusText(status), "\r\n");
}

std::string WholeResponse(int status, absl::string_view extra_headers,
                          absl::string_view content_type,
                          absl::string_view body, bool close) {
  std::string out;
  AppendStatusLine(&out, status);
  out.append(extra_headers.data(), extra_headers.size());
  if (status != 204 && status != 304) {
    absl::StrAppend(&out, "Content-Type: ", content_type,
                    "\r\nContent-Length: ", body.size(), "\r\n");
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (status != 204 && status != 304) out.append(body.data(), body.size());
  return out;
}

void AppendChunk(std::string* out, absl::string_view data) {
  if (data.empty()) return;
  absl::StrAppend(out, absl::Hex(data.size()), "\r\n", data, "\r\n");
}

}  // namespace pimap::http
