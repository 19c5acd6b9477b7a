// The admin endpoint: GET /metrics, one request per connection.
#include "tools/pimapd/admin_http.h"

#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/http/request_parser.h"
#include "core/http/response.h"

namespace pimap {

namespace {
constexpr size_t kMaxRequestBytes = 8192;
constexpr int kClientTimeoutMs = 2000;

void SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The allocator's view of the process: what is in use against what RSS holds.
// Why: RSS per device alone cannot tell live state from free heap that glibc
// has not given back (e.g. after a burst of pooled store links closed).
std::string RenderHeapMetrics() {
  struct mallinfo2 mi = mallinfo2();
  return absl::StrCat(
      "# HELP pimap_heap_in_use_bytes Heap bytes allocated and not freed "
      "(glibc "
      "mallinfo2: uordblks + hblkhd).\n# TYPE pimap_heap_in_use_bytes gauge\n"
      "pimap_heap_in_use_bytes ",
      mi.uordblks + mi.hblkhd,
      "\n# HELP pimap_heap_free_bytes Freed heap bytes the allocator still "
      "holds "
      "(fordblks).\n# TYPE pimap_heap_free_bytes gauge\npimap_heap_free_bytes ",
      mi.fordblks, "\n",
      "# HELP pimap_log_lines_dropped_total Log lines of shards dropped "
      "because the background log writer fell behind.\n"
      "# TYPE pimap_log_lines_dropped_total counter\n"
      "pimap_log_lines_dropped_total ",
      LogLinesDropped(), "\n");
}
}  // namespace

AdminHttpServer::~AdminHttpServer() { Stop(); }

absl::Status AdminHttpServer::Start(const std::string& host, uint16_t port) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &ai) !=
          0 ||
      ai == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", host));
  }
  listen_fd_ = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (listen_fd_ < 0 || bind(listen_fd_, ai->ai_addr, ai->ai_addrlen) != 0 ||
      listen(listen_fd_, 64) != 0) {
    int err = errno;
    freeaddrinfo(ai);
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
    return absl::ErrnoToStatus(err,
                               absl::StrCat("admin listen ", host, ":", port));
  }
  freeaddrinfo(ai);
  thread_ = std::thread([this] { Serve(); });
  PIMAP_LOG(INFO) << "admin endpoint on " << host << ":" << port
                  << " (GET /metrics)";
  return absl::OkStatus();
}

void AdminHttpServer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

void AdminHttpServer::Serve() {
  while (!stop_.load()) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 200) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleClient(fd);
    close(fd);
  }
}

// One request per connection, read with the gateway's HTTP parser and
// answered with its response writer (the same HTTP core as the intake and
// the P-IMAP binding), then closed.
void AdminHttpServer::HandleClient(int fd) {
  http::HttpRequestParser parser(/*max_body_bytes=*/4096);
  http::HttpRequest request;
  http::HttpRequestParser::Result result =
      http::HttpRequestParser::Result::kNeedMore;
  char buf[1024];
  size_t received = 0;
  while (result == http::HttpRequestParser::Result::kNeedMore &&
         received < kMaxRequestBytes) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, kClientTimeoutMs) <= 0) return;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    received += static_cast<size_t>(n);
    parser.Feed(absl::string_view(buf, static_cast<size_t>(n)));
    result = parser.Next(&request);
  }
  const std::string type = "text/plain; version=0.0.4; charset=utf-8";
  if (result != http::HttpRequestParser::Result::kRequest) {
    const int status = result == http::HttpRequestParser::Result::kError
                           ? parser.error_status()
                           : 431;
    SendAll(fd, http::WholeResponse(status, "", "text/plain", "bad request\n",
                                    true));
    return;
  }
  absl::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (request.method != "GET" && request.method != "HEAD") {
    SendAll(fd, http::WholeResponse(405, "Allow: GET\r\n", "text/plain",
                                    "only GET is supported\n", true));
  } else if (path != "/metrics") {
    SendAll(fd, http::WholeResponse(404, "", "text/plain",
                                    "not found; try /metrics\n", true));
  } else {
    std::string body = RenderPrometheus(shards_);
    body += RenderHeapMetrics();
    std::string response = http::WholeResponse(200, "", type, body, true);
    if (request.method == "HEAD")
      response.resize(response.find("\r\n\r\n") + 4);
    SendAll(fd, response);
  }
}

}  // namespace pimap
