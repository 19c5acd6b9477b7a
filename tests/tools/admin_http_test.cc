// The admin endpoint (tools/pimapd/admin_http.h) on a real engine: shard 0
// serves GET /metrics summing every shard's counters, read from its thread.
#include "tools/pimapd/admin_http.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback.h"

namespace pimap {
namespace {

using ::pimap::testing::Exchange;
using ::pimap::testing::FreePort;

TEST(AdminHttpTest, MetricsOfEveryShardFromShardZero) {
  const uint16_t port = FreePort();
  engine::ShardSet set(2, engine::RingOptions{});
  ASSERT_TRUE(set.Start([&](engine::Shard& shard) -> absl::Status {
                   if (shard.id() != 0) return absl::OkStatus();
                   return StartAdminEndpoint(shard, "127.0.0.1", port);
                 })
                  .ok());
  // Written by shard 1's counters alone; shard 0 reads them.
  set.shard(1).counters().intake_requests.fetch_add(5,
                                                    std::memory_order_relaxed);
  const std::string reply = Exchange(
      port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(
      reply, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  // The same text as rendered here (the heap figures move between the two).
  const std::string kHeap = "# HELP pimap_heap_in_use_bytes";
  const std::string local = RenderAdminMetrics(set);
  ASSERT_NE(body.find(kHeap), std::string::npos) << body;
  EXPECT_EQ(body.substr(0, body.find(kHeap)),
            local.substr(0, local.find(kHeap)));
  EXPECT_TRUE(absl::StrContains(body, "\npimap_shards 2\n")) << body;
  EXPECT_TRUE(absl::StrContains(
      body, "\npimap_store_intake_requests_total{shard=\"1\"} 5\n"))
      << body;
  EXPECT_TRUE(absl::StrContains(body, "pimap_heap_in_use_bytes ")) << body;
  EXPECT_TRUE(absl::StrContains(body, "pimap_log_lines_dropped_total "))
      << body;

  EXPECT_TRUE(absl::StartsWith(
      Exchange(port,
               "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n"),
      "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      "HTTP/1.1 404 "));
  set.StopAndJoin(1000);
}

TEST(AdminHttpTest, QueryParams) {
  EXPECT_EQ(QueryParam("/admin/who?user=alice", "user"), "alice");
  EXPECT_EQ(
      QueryParam("/admin/kick?user=a%40b.org&device=d%231&forget=1", "device"),
      "d#1");
  EXPECT_EQ(QueryParam("/admin/kick?user=a%40b.org", "user"), "a@b.org");
  EXPECT_EQ(QueryParam("/x?u=a+b", "u"), "a b");
  EXPECT_EQ(QueryParam("/x?user", "user"), "");
  EXPECT_EQ(QueryParam("/x?users=1", "user"), std::nullopt);
  EXPECT_EQ(QueryParam("/x", "user"), std::nullopt);
  EXPECT_EQ(QueryParam("/x?user=%4", "user"), std::nullopt);
  EXPECT_EQ(QueryParam("/x?user=%zz", "user"), std::nullopt);
}

http::HttpRequest WithAuthorization(std::string value) {
  http::HttpRequest r;
  r.method = "GET";
  r.target = "/admin/who";
  if (!value.empty()) r.headers.push_back({"authorization", std::move(value)});
  return r;
}

TEST(AdminHttpTest, AccessByTransportAndToken) {
  http::EndpointResponse refusal;
  AdminAccess unix_socket;
  unix_socket.unix_socket = true;
  EXPECT_TRUE(AdminAllowed(unix_socket, WithAuthorization(""), &refusal));

  AdminAccess no_token;  // TCP without --admin-token-file
  EXPECT_FALSE(AdminAllowed(no_token, WithAuthorization("Bearer x"), &refusal));
  EXPECT_EQ(refusal.status, 403);
  EXPECT_TRUE(absl::StrContains(refusal.body, "--admin-token-file"));

  AdminAccess tcp;
  tcp.token = "s3cret";
  EXPECT_TRUE(AdminAllowed(tcp, WithAuthorization("Bearer s3cret"), &refusal));
  EXPECT_TRUE(AdminAllowed(tcp, WithAuthorization("bearer s3cret"), &refusal));
  for (const char* wrong : {"", "Bearer", "Bearer ", "Bearer s3cre",
                            "Bearer s3cret2", "Basic s3cret", "s3cret"}) {
    refusal = {};
    EXPECT_FALSE(AdminAllowed(tcp, WithAuthorization(wrong), &refusal))
        << wrong;
    EXPECT_EQ(refusal.status, 401) << wrong;
    EXPECT_TRUE(absl::StrContains(refusal.extra_headers, "WWW-Authenticate"));
  }
}

// One request over a Unix socket; the whole answer.
std::string UnixExchange(const std::string& path, const std::string& request) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  path.copy(address.sun_path, sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return "";
  }
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
  close(fd);
  return out;
}

// Both listeners, the same routes: the socket (mode as asked) needs nothing,
// TCP needs the token; who answers from every shard (no sessions here).
TEST(AdminHttpTest, UnixSocketAndTcpWithToken) {
  const uint16_t port = FreePort();
  const std::string path =
      absl::StrCat("/tmp/admin_http_test_", getpid(), ".sock");
  AdminEndpointConfig config;
  config.host = "127.0.0.1";
  config.port = port;
  config.unix_path = path;
  config.unix_mode = 0640;
  config.token = "tok";
  engine::ShardSet set(2, engine::RingOptions{});
  ASSERT_TRUE(set.Start([&](engine::Shard& shard) -> absl::Status {
                   if (shard.id() != 0) return absl::OkStatus();
                   return StartAdminEndpoints(shard, config);
                 })
                  .ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  const std::string who =
      "GET /admin/who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  std::string reply = UnixExchange(path, who + "\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Content-Type: application/json"));
  EXPECT_TRUE(
      absl::StrContains(reply,
                        "{\"devices\":[],\"users\":[],\"missing_shards\":[],"
                        "\"truncated\":false}"))
      << reply;
  EXPECT_TRUE(absl::StartsWith(
      UnixExchange(path,
                   "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close"
                   "\r\n\r\n"),
      "HTTP/1.1 200 OK\r\n"));
  // sessions and kick want a user.
  EXPECT_TRUE(absl::StartsWith(
      UnixExchange(path,
                   "GET /admin/sessions HTTP/1.1\r\nHost: x\r\n"
                   "Connection: close\r\n\r\n"),
      "HTTP/1.1 400 "));
  reply = UnixExchange(path,
                       "POST /admin/kick?user=nobody HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "{\"kicked\":[]")) << reply;

  EXPECT_TRUE(absl::StartsWith(Exchange(port, who + "\r\n"), "HTTP/1.1 401 "));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port, who + "Authorization: Bearer nope\r\n\r\n"),
      "HTTP/1.1 401 "));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port, who + "Authorization: Bearer tok\r\n\r\n"),
      "HTTP/1.1 200 OK\r\n"));
  // Scrapers need no token.
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port,
               "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               "\r\n"),
      "HTTP/1.1 200 OK\r\n"));
  set.StopAndJoin(1000);
  // The socket file goes with the endpoint.
  EXPECT_NE(stat(path.c_str(), &st), 0);
}

// A restart overlaps: the new process's socket took the path (the old one's
// file is gone). Stopping the old endpoint must leave the new socket alone.
TEST(AdminHttpTest, StopLeavesASocketThatIsNoLongerItsOwn) {
  const std::string path =
      absl::StrCat("/tmp/admin_http_test_replaced_", getpid(), ".sock");
  AdminEndpointConfig config;
  config.unix_path = path;
  config.unix_mode = 0600;
  engine::ShardSet set(1, engine::RingOptions{});
  ASSERT_TRUE(set.Start([&](engine::Shard& shard) -> absl::Status {
                   return StartAdminEndpoints(shard, config);
                 })
                  .ok());
  // Another process's socket at the same path (as a new pimapd binds it).
  ASSERT_EQ(unlink(path.c_str()), 0);
  const int other = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(other, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  set.StopAndJoin(1000);
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << "the other process's socket went";
  close(other);
  unlink(path.c_str());
}

TEST(AdminHttpTest, TcpWithoutTokenRefusesAdminRoutes) {
  const uint16_t port = FreePort();
  engine::ShardSet set(1, engine::RingOptions{});
  ASSERT_TRUE(set.Start([&](engine::Shard& shard) -> absl::Status {
                   return StartAdminEndpoint(shard, "127.0.0.1", port);
                 })
                  .ok());
  const std::string reply = Exchange(
      port,
      "GET /admin/who HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 403 ")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "use the Unix socket")) << reply;
  set.StopAndJoin(1000);
}

}  // namespace
}  // namespace pimap
