// StartHttpsRequest (bindings/outband_http/https_request.h) on a real shard
// against a small blocking TLS server in the test (one thread per connection)
// that counts the connections it accepts: keep-alive reuse (one connection for
// requests in a row, at most 16 for a burst), "Connection: close" from either
// side honoured, and a reused connection that the server closed without
// answering retried once on a new one. Plain HTTP against a server that
// answers as etcd's gateway does: chunked bodies with trailer fields, on a
// kept-alive connection, and a caller's own body bound.
#include "bindings/outband_http/https_request.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bindings/tls/tls_context.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"
#include "tests/bindings/tls/test_certs.h"

namespace pimap::outband_http {
namespace {

enum class Mode {
  kKeepAlive,   // 201 and wait for the next request
  kCloseReply,  // 201 with "Connection: close", then close
  kDropSecond,  // the second request on a connection: close, no answer
};

// Reads one request (head and Content-Length body); false at EOF or error.
bool ReadRequest(SSL* ssl, std::string* buffer) {
  while (true) {
    const size_t head_end = buffer->find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t length = 0;
      const size_t at = buffer->find("Content-Length: ");
      if (at != std::string::npos && at < head_end) {
        size_t end = buffer->find("\r\n", at);
        (void)absl::SimpleAtoi(
            absl::string_view(*buffer).substr(at + 16, end - at - 16), &length);
      }
      if (buffer->size() >= head_end + 4 + length) {
        buffer->erase(0, head_end + 4 + length);
        return true;
      }
    }
    char chunk[4096];
    const int n = SSL_read(ssl, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<size_t>(n));
  }
}

class PushServer {
 public:
  PushServer(const std::string& cert, const std::string& key, Mode mode)
      : mode_(mode) {
    auto tls = tls::TlsContext::CreateServer(cert, key);
    EXPECT_TRUE(tls.ok()) << tls.status();
    tls_ = *std::move(tls);
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener_, 128), 0);
    socklen_t len = sizeof(a);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    address_.len = sizeof(sockaddr_in);
    memcpy(&address_.address, &a, sizeof(a));
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~PushServer() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    acceptor_.join();
    {
      // Connections the client keeps idle: their reads end now.
      absl::MutexLock lock(&mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : connections_) t.join();
  }

  HttpsTarget target() const { return {{address_}, "pimap.test"}; }
  int accepted() const { return accepted_.load(); }

 private:
  void Accept() {
    while (true) {
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      {
        absl::MutexLock lock(&mu_);
        fds_.push_back(fd);
      }
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    SSL* ssl = tls_->NewServerSsl();
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string buffer;
      for (int n = 1; ReadRequest(ssl, &buffer); ++n) {
        if (mode_ == Mode::kDropSecond && n == 2) break;
        const std::string reply =
            mode_ == Mode::kCloseReply
                ? "HTTP/1.1 201 Created\r\nConnection: close\r\n"
                  "Content-Length: 0\r\n\r\n"
                : "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
        if (mode_ == Mode::kCloseReply) break;
      }
    }
    SSL_free(ssl);
    absl::MutexLock lock(&mu_);
    close(fd);
    fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
  }

  Mode mode_;
  std::shared_ptr<tls::TlsContext> tls_;
  int listener_ = -1;
  engine::ResolvedAddress address_{};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // joined at the end
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);  // open connections
};

constexpr absl::string_view kPost =
    "POST /push/x HTTP/1.1\r\nHost: pimap.test\r\nContent-Length: 3\r\n\r\nabc";

class HttpsRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(creds_.Generate());
    auto client = tls::TlsContext::CreateClient(creds_.cert_path());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    set_ = std::make_unique<engine::ShardSet>(1, engine::RingOptions{});
    ASSERT_TRUE(
        set_->Start([](engine::Shard&) { return absl::OkStatus(); }).ok());
  }
  void TearDown() override { set_->StopAndJoin(1000); }

  // Runs `count` requests on the shard, `parallel` at a time; returns the
  // statuses ("201" or the error) once all are done.
  std::vector<std::string> Run(const HttpsTarget& target, int count,
                               int parallel,
                               absl::string_view request = kPost) {
    struct State {
      absl::Mutex mu;
      std::vector<std::string> results;
      int started = 0;
    };
    auto state = std::make_shared<State>();
    auto start_one =
        std::make_shared<absl::AnyInvocable<void(engine::Shard*)>>();
    const std::string text(request);
    const tls::TlsContext* tls = client_.get();
    *start_one = [state, start_one, target, text, tls,
                  count](engine::Shard* shard) {
      if (state->started >= count) return;
      ++state->started;
      StartHttpsRequest(
          shard, tls, target, text, 5000,
          [state, start_one,
           shard](absl::StatusOr<http::HttpRequest> response) {
            {
              absl::MutexLock lock(&state->mu);
              state->results.push_back(
                  response.ok() ? absl::StrCat(response->status)
                                : std::string(response.status().message()));
            }
            (*start_one)(shard);  // the next one, as this one ends
          });
    };
    set_->shard(0).Post([start_one, parallel](engine::Shard& shard) {
      for (int i = 0; i < parallel; ++i) (*start_one)(&shard);
    });
    std::pair<State*, int> until(state.get(), count);
    std::vector<std::string> out;
    {
      absl::MutexLock lock(&state->mu);
      state->mu.AwaitWithTimeout(
          absl::Condition(
              +[](std::pair<State*, int>* p) {
                p->first->mu.AssertHeld();
                return static_cast<int>(p->first->results.size()) >= p->second;
              },
              &until),
          absl::Seconds(30));
      out = state->results;
    }
    // Break the cycle once the last request is done.
    set_->shard(0).Post([start_one](engine::Shard&) { *start_one = nullptr; });
    return out;
  }

  tls::testing::TempCredentials creds_;
  std::shared_ptr<tls::TlsContext> client_;
  std::unique_ptr<engine::ShardSet> set_;
};

TEST_F(HttpsRequestTest, RequestsInARowShareOneConnection) {
  PushServer server(creds_.cert_path(), creds_.key_path(), Mode::kKeepAlive);
  const std::vector<std::string> results = Run(server.target(), 100, 1);
  EXPECT_EQ(results, std::vector<std::string>(100, "201"));
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(HttpsRequestTest, BurstUsesABoundedNumberOfConnections) {
  PushServer server(creds_.cert_path(), creds_.key_path(), Mode::kKeepAlive);
  const std::vector<std::string> results = Run(server.target(), 300, 100);
  EXPECT_EQ(results, std::vector<std::string>(300, "201"));
  EXPECT_GE(server.accepted(), 1);
  EXPECT_LE(server.accepted(), 16);
}

TEST_F(HttpsRequestTest, ConnectionCloseFromTheServerIsHonoured) {
  PushServer server(creds_.cert_path(), creds_.key_path(), Mode::kCloseReply);
  const std::vector<std::string> results = Run(server.target(), 5, 1);
  EXPECT_EQ(results, std::vector<std::string>(5, "201"));
  EXPECT_EQ(server.accepted(), 5);
}

TEST_F(HttpsRequestTest, ConnectionCloseFromTheRequestIsHonoured) {
  PushServer server(creds_.cert_path(), creds_.key_path(), Mode::kKeepAlive);
  const std::vector<std::string> results =
      Run(server.target(), 3, 1,
          "POST /p HTTP/1.1\r\nHost: pimap.test\r\nConnection: close\r\n"
          "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(results, std::vector<std::string>(3, "201"));
  EXPECT_EQ(server.accepted(), 3);
}

TEST_F(HttpsRequestTest, ReusedConnectionClosedWithoutAnswerIsRetriedOnce) {
  // Every connection answers its first request and closes on its second: the
  // second request of the run goes out on the reused connection, gets
  // nothing, and is sent again on a new one.
  PushServer server(creds_.cert_path(), creds_.key_path(), Mode::kDropSecond);
  const std::vector<std::string> results = Run(server.target(), 2, 1);
  EXPECT_EQ(results, std::vector<std::string>(2, "201"));
  EXPECT_EQ(server.accepted(), 2);
}

// A plain-HTTP server (one connection at a time) that answers every request
// with `reply`, as etcd's gateway frames its streamed answers.
class PlainServer {
 public:
  explicit PlainServer(std::string reply) : reply_(std::move(reply)) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener_, 16), 0);
    socklen_t len = sizeof(a);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    address_.len = sizeof(sockaddr_in);
    memcpy(&address_.address, &a, sizeof(a));
    thread_ = std::thread([this] { Serve(); });
  }
  ~PlainServer() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    const int fd = fd_.load();
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    thread_.join();
  }
  HttpsTarget target() const { return {{address_}, "127.0.0.1"}; }
  int accepted() const { return accepted_.load(); }

 private:
  void Serve() {
    while (true) {
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      fd_.store(fd);
      std::string buffer;
      while (true) {
        const size_t head_end = buffer.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          size_t length = 0;
          const size_t at = buffer.find("Content-Length: ");
          if (at != std::string::npos && at < head_end) {
            const size_t end = buffer.find("\r\n", at);
            (void)absl::SimpleAtoi(
                absl::string_view(buffer).substr(at + 16, end - at - 16),
                &length);
          }
          if (buffer.size() >= head_end + 4 + length) {
            buffer.erase(0, head_end + 4 + length);
            size_t sent = 0;
            while (sent < reply_.size()) {
              const ssize_t n =
                  write(fd, reply_.data() + sent, reply_.size() - sent);
              if (n <= 0) break;
              sent += static_cast<size_t>(n);
            }
            continue;
          }
        }
        char chunk[4096];
        const ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) break;
        buffer.append(chunk, static_cast<size_t>(n));
      }
      fd_.store(-1);
      close(fd);
    }
  }

  std::string reply_;
  int listener_ = -1;
  engine::ResolvedAddress address_{};
  std::atomic<int> accepted_{0};
  std::atomic<int> fd_{-1};
  std::thread thread_;
};

// etcd 3.4's answer to a revoke of an unknown lease, byte for byte: chunked,
// with a trailer field.
constexpr absl::string_view kEtcdNotFound =
    "HTTP/1.1 404 Not Found\r\n"
    "Content-Type: application/json\r\n"
    "Trailer: Grpc-Trailer-Content-Type\r\n"
    "Date: Tue, 08 Dec 2026 03:43:41 GMT\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
    "6c\r\n"
    "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
    "\"etcdserver: requested lease not found\",\"code\":5}\r\n"
    "0\r\n"
    "Grpc-Trailer-Content-Type: application/grpc\r\n\r\n";

constexpr absl::string_view kPlainPost =
    "POST /v3/lease/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "Content-Length: 10\r\n\r\n{\"ID\":\"1\"}";

class PlainHttpRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_ = std::make_unique<engine::ShardSet>(1, engine::RingOptions{});
    ASSERT_TRUE(
        set_->Start([](engine::Shard&) { return absl::OkStatus(); }).ok());
  }
  void TearDown() override { set_->StopAndJoin(1000); }

  absl::StatusOr<http::HttpRequest> RunOne(const HttpsTarget& target,
                                           size_t max_body) {
    absl::StatusOr<http::HttpRequest> result;
    absl::Notification done;
    set_->shard(0).Post([&](engine::Shard& shard) {
      StartHttpsRequest(
          &shard, nullptr, target, std::string(kPlainPost), 5000,
          [&](absl::StatusOr<http::HttpRequest> response) {
            result = std::move(response);
            done.Notify();
          },
          max_body);
    });
    done.WaitForNotification();
    return result;
  }

  std::unique_ptr<engine::ShardSet> set_;
};

TEST_F(PlainHttpRequestTest, ChunkedAnswerWithTrailersKeepsTheConnection) {
  PlainServer server{std::string(kEtcdNotFound)};
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<http::HttpRequest> r =
        RunOne(server.target(), kMaxResponseBody);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(r->body.size(), 0x6cu);
    EXPECT_TRUE(absl::StartsWith(r->body, "{\"error\":\"etcdserver: "));
    EXPECT_TRUE(r->keep_alive);
  }
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(PlainHttpRequestTest, BodyBoundIsTheCallers) {
  // 64 KiB in 1 KiB chunks: over the default bound, within a larger one.
  std::string reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 64; ++i) {
    absl::StrAppend(&reply, "400\r\n", std::string(1024, 'x'), "\r\n");
  }
  reply += "0\r\n\r\n";
  PlainServer server(reply);
  absl::StatusOr<http::HttpRequest> small =
      RunOne(server.target(), kMaxResponseBody);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<http::HttpRequest> large =
      RunOne(server.target(), 4 * 1024 * 1024);
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(large->body, std::string(64 * 1024, 'x'));
}

}  // namespace
}  // namespace pimap::outband_http
