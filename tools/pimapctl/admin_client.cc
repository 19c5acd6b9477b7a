// pimapctl's blocking HTTP/1.1 request to the admin endpoint.
#include "tools/pimapctl/admin_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/http/request_parser.h"

namespace pimap::ctl {

namespace {

absl::StatusOr<int> Connect(const AdminTarget& target) {
  if (!target.socket_path.empty()) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (target.socket_path.size() >= sizeof(address.sun_path)) {
      return absl::InvalidArgumentError("socket path too long");
    }
    target.socket_path.copy(address.sun_path, sizeof(address.sun_path) - 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
        0) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to ", target.socket_path, ": ", std::strerror(err)));
    }
    return fd;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc =
      getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", target.host, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  int err = 0;
  for (addrinfo* a = result; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(result);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ",
                                               target.host, ":", target.port,
                                               ": ", std::strerror(err)));
  }
  return fd;
}

// Waits for `events` on fd up to timeout_ms.
bool Ready(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

}  // namespace

std::string QueryEscape(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      // Upper-case hex digits (RFC 3986 §2.1).
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));
    }
  }
  return out;
}

absl::StatusOr<AdminAnswer> AdminRequest(const AdminTarget& target,
                                         const std::string& method,
                                         const std::string& target_path) {
  absl::StatusOr<int> fd = Connect(target);
  if (!fd.ok()) return fd.status();
  std::string request =
      absl::StrCat(method, " ", target_path,
                   " HTTP/1.1\r\nHost: pimapd\r\nConnection: close\r\n"
                   "Accept: application/json\r\n");
  if (!target.token.empty()) {
    absl::StrAppend(&request, "Authorization: Bearer ", target.token, "\r\n");
  }
  if (method == "POST") request += "Content-Length: 0\r\n";
  request += "\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    if (!Ready(*fd, POLLOUT, target.timeout_ms)) break;
    const ssize_t n =
        send(*fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  // A who of 10,000 devices is a few MiB of JSON.
  http::HttpRequestParser parser(64 << 20);
  parser.set_parse_responses(true);
  http::HttpRequest response;
  absl::Status failure =
      absl::UnavailableError("pimapd closed the connection without an answer");
  for (;;) {
    const http::HttpRequestParser::Result r = parser.Next(&response);
    if (r == http::HttpRequestParser::Result::kRequest) {
      failure = absl::OkStatus();
      break;
    }
    if (r == http::HttpRequestParser::Result::kError) {
      failure = absl::UnavailableError("malformed answer from pimapd");
      break;
    }
    if (!Ready(*fd, POLLIN, target.timeout_ms)) {
      failure = absl::DeadlineExceededError("pimapd did not answer in time");
      break;
    }
    char buf[16384];
    const ssize_t n = recv(*fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    parser.Feed(absl::string_view(buf, static_cast<size_t>(n)));
  }
  close(*fd);
  if (!failure.ok()) return failure;
  AdminAnswer answer;
  answer.status = response.status;
  if (const std::string* type = response.Header("content-type")) {
    answer.content_type = *type;
  }
  answer.body = std::move(response.body);
  return answer;
}

}  // namespace pimap::ctl
