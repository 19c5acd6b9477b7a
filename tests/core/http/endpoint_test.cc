// The small HTTP endpoint (core/http/endpoint.h): its route table on
// its own, then on a real engine (one shard on loopback): HEAD, keep-alive and
// pipelining, parser bounds, content coding, the connection bound, the idle
// timeout, and a stuck client that must not hold up anyone else.
#include "core/http/endpoint.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "core/engine/service_registry.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "core/http/content_coding.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback.h"

namespace pimap::http {
namespace {

using ::pimap::testing::ConnectTo;
using ::pimap::testing::FreePort;
using ::pimap::testing::ReadToClose;

// With `shard`: also /later, a deferred route answered 100 ms later from a
// timer (as an answer gathered from other shards comes back), and /now, a
// deferred route that answers before its handler returns.
std::vector<EndpointRoute> Routes(engine::Shard* shard = nullptr) {
  std::vector<EndpointRoute> routes;
  if (shard != nullptr) {
    routes.push_back({"/later",
                      {"GET"},
                      nullptr,
                      [shard](const HttpRequest& request, EndpointReply reply) {
                        const std::string target = request.target;
                        shard->timers().Schedule(100, [reply, target] {
                          EndpointResponse r;
                          r.status = 202;
                          r.body = absl::StrCat("later ", target);
                          reply.Send(r);
                          reply.Send(r);  // a second answer is dropped
                        });
                      }});
    routes.push_back(
        {"/now", {"GET"}, nullptr, [](const HttpRequest&, EndpointReply reply) {
           EndpointResponse r;
           r.body = "now";
           reply.Send(r);
         }});
  }
  routes.push_back({"/metrics", {"GET"}, [](const HttpRequest&) {
                      EndpointResponse r;
                      r.content_type = "text/plain; version=0.0.4";
                      r.body = "metric_a 1\nmetric_b 2\n";
                      r.compressible = true;
                      return r;
                    }});
  routes.push_back({"/big", {"GET"}, [](const HttpRequest&) {
                      EndpointResponse r;
                      r.body = std::string(64 * 1024, 'b');
                      return r;
                    }});
  routes.push_back({"/kick", {"POST"}, [](const HttpRequest& request) {
                      EndpointResponse r;
                      if (request.body.empty()) {  // a handler's own 4xx
                        r.status = 400;
                        r.body = "whom?";
                        return r;
                      }
                      r.body = absl::StrCat("kicked ", request.body);
                      return r;
                    }});
  return routes;
}

HttpRequest Request(std::string method, std::string target) {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}

TEST(EndpointDispatchTest, RoutesByPathThenMethod) {
  const std::vector<EndpointRoute> routes = Routes();
  bool routed = false;
  EndpointResponse r =
      HttpEndpoint::Dispatch(routes, Request("GET", "/metrics"), &routed);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(routed);
  EXPECT_EQ(r.body, "metric_a 1\nmetric_b 2\n");
  // The query does not take part in routing.
  EXPECT_EQ(
      HttpEndpoint::Dispatch(routes, Request("GET", "/metrics?x=1")).status,
      200);
  EXPECT_EQ(HttpEndpoint::Dispatch(routes, Request("HEAD", "/metrics")).status,
            200);
  EXPECT_EQ(HttpEndpoint::Dispatch(routes, Request("GET", "/metric")).status,
            404);
  EXPECT_EQ(HttpEndpoint::Dispatch(routes, Request("GET", "/")).status, 404);
  // A handler's own 4xx is routed.
  EXPECT_EQ(
      HttpEndpoint::Dispatch(routes, Request("POST", "/kick"), &routed).status,
      400);
  EXPECT_TRUE(routed);
  EXPECT_EQ(HttpEndpoint::Dispatch(routes, Request("GET", "/"), &routed).status,
            404);
  EXPECT_FALSE(routed);

  // A deferred route names itself; without a way to defer, it is a 500.
  const std::vector<EndpointRoute> with_deferred =
      Routes(reinterpret_cast<engine::Shard*>(1));  // never called here
  const EndpointRoute* deferred = nullptr;
  r = HttpEndpoint::Dispatch(with_deferred, Request("GET", "/later?x"), &routed,
                             &deferred);
  EXPECT_EQ(r.status, 0);
  ASSERT_NE(deferred, nullptr);
  EXPECT_EQ(deferred->path, "/later");
  EXPECT_EQ(
      HttpEndpoint::Dispatch(with_deferred, Request("GET", "/later")).status,
      500);
  r = HttpEndpoint::Dispatch(with_deferred, Request("GET", "/metrics"), &routed,
                             &deferred);
  EXPECT_EQ(deferred, nullptr);
  EXPECT_EQ(r.status, 200);

  r = HttpEndpoint::Dispatch(routes, Request("POST", "/metrics"), &routed);
  EXPECT_EQ(r.status, 405);
  EXPECT_FALSE(routed);
  EXPECT_EQ(r.extra_headers, "Allow: GET, HEAD\r\n");
  r = HttpEndpoint::Dispatch(routes, Request("GET", "/kick"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.extra_headers, "Allow: POST\r\n");
  // Methods are case-sensitive.
  EXPECT_EQ(HttpEndpoint::Dispatch(routes, Request("get", "/metrics")).status,
            405);
}

// Reads responses with the gateway's own parser in response mode.
class ResponseReader {
 public:
  explicit ResponseReader(int fd) : fd_(fd) {
    parser_.set_parse_responses(true);
  }
  // The next response, or one with status 0 on EOF/timeout (-1: malformed).
  HttpRequest Next() {
    HttpRequest r;
    HttpRequest failed;
    for (;;) {
      switch (parser_.Next(&r)) {
        case HttpRequestParser::Result::kRequest:
          return r;
        case HttpRequestParser::Result::kError:
          failed.status = -1;
          return failed;
        case HttpRequestParser::Result::kNeedMore:
          break;
      }
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return failed;
      parser_.Feed(absl::string_view(buf, static_cast<size_t>(n)));
    }
  }

 private:
  int fd_;
  HttpRequestParser parser_;
};

void Send(int fd, absl::string_view bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// True if the server closed `fd` (EOF or reset) within the receive timeout.
bool ClosedByServer(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

constexpr absl::string_view kGet = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

class HttpEndpointTest : public ::testing::Test {
 protected:
  void StartEndpoint(HttpEndpointConfig config = {}) {
    port_ = FreePort();
    config.host = "127.0.0.1";
    config.port = port_;
    set_ = std::make_unique<engine::ShardSet>(1, engine::RingOptions{});
    ASSERT_TRUE(set_->Start([&](engine::Shard& shard) -> absl::Status {
                      shard.services().Register(&compressor_);
                      auto e =
                          HttpEndpoint::Start(&shard, config, Routes(&shard));
                      if (!e.ok()) return e.status();
                      shard.AddStopHook([e = *e] { e->Stop(); });
                      return absl::OkStatus();
                    })
                    .ok());
  }
  void TearDown() override {
    if (set_) set_->StopAndJoin(1000);
  }

  // What on_refusal reported (from the shard thread), as "why status".
  void RecordRefusals(HttpEndpointConfig* config) {
    config->on_refusal = [this](EndpointRefusal why, int status,
                                absl::string_view) {
      absl::MutexLock lock(&mu_);
      refusals_.push_back(absl::StrCat(static_cast<int>(why), " ", status));
    };
  }
  std::string Refusals() {
    absl::MutexLock lock(&mu_);
    return absl::StrJoin(refusals_, ",");
  }

  uint16_t port_ = 0;
  absl::Mutex mu_;
  std::vector<std::string> refusals_;
  ShardCompressor compressor_;
  std::unique_ptr<engine::ShardSet> set_;
};

TEST_F(HttpEndpointTest, KeepAliveAndPipelinedRequestsAnsweredInOrder) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ResponseReader reader(fd);
  // Two requests in one segment, then a third on the same connection.
  Send(fd, absl::StrCat(kGet, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpRequest r = reader.Next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(*r.Header("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(r.body, "metric_a 1\nmetric_b 2\n");
  EXPECT_TRUE(r.keep_alive);
  r = reader.Next();
  EXPECT_EQ(r.status, 404);
  Send(fd, "POST /kick HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbob");
  r = reader.Next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "kicked bob");
  Send(fd, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  r = reader.Next();
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(*r.Header("allow"), "GET, HEAD");
  EXPECT_TRUE(r.keep_alive);  // a routing answer does not end the connection
  Send(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  r = reader.Next();
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(ClosedByServer(fd));
  close(fd);
}

TEST_F(HttpEndpointTest, HeadHasGetsHeadersAndNoBody) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  Send(fd, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string reply = ReadToClose(fd);
  close(fd);
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Content-Length: 22\r\n")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\n")) << reply;
}

TEST_F(HttpEndpointTest, ParserErrorsAnswerAndClose) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  Send(fd, "GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(ReadToClose(fd), "HTTP/1.1 400 ")) << "400";
  close(fd);
  // A header block past the parser's bound: 431, whatever the rest.
  fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  Send(fd, absl::StrCat("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ",
                        std::string(HttpRequestParser::kMaxHeaderBytes, 'a'),
                        "\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(ReadToClose(fd), "HTTP/1.1 431 ")) << "431";
  close(fd);
  // A body past max_body_bytes: 413.
  fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  Send(fd, "POST /kick HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(ReadToClose(fd), "HTTP/1.1 413 ")) << "413";
  close(fd);
}

TEST_F(HttpEndpointTest, GzipWhenAccepted) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ResponseReader reader(fd);
  Send(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
  HttpRequest r = reader.Next();
  ASSERT_EQ(r.status, 200);
  ASSERT_NE(r.Header("content-encoding"), nullptr);
  EXPECT_EQ(*r.Header("content-encoding"), "gzip");
  EXPECT_EQ(*r.Header("vary"), "Accept-Encoding");
  absl::StatusOr<std::string> body =
      DecodeBody(ContentCoding::kGzip, r.body, 1 << 20);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "metric_a 1\nmetric_b 2\n");
  // Without Accept-Encoding: identity.
  Send(fd, kGet);
  r = reader.Next();
  EXPECT_EQ(r.Header("content-encoding"), nullptr);
  EXPECT_EQ(r.body, "metric_a 1\nmetric_b 2\n");
  close(fd);
}

TEST_F(HttpEndpointTest, StuckClientDoesNotHoldUpOthersAndTimesOut) {
  HttpEndpointConfig config;
  config.idle_timeout_ms = 500;
  StartEndpoint(config);
  // Half a request, then nothing.
  int stuck = ConnectTo(port_);
  ASSERT_GE(stuck, 0);
  Send(stuck, "GET /metrics HTTP/1.1\r\nHo");
  // Another client is answered at once, more than once.
  for (int i = 0; i < 3; ++i) {
    int fd = ConnectTo(port_);
    ASSERT_GE(fd, 0);
    timeval tv{0, 300000};  // well before the stuck one times out
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    Send(fd, kGet);
    EXPECT_EQ(ResponseReader(fd).Next().status, 200) << i;
    close(fd);
  }
  // The stuck one is closed after the idle timeout (not kept forever).
  EXPECT_TRUE(ClosedByServer(stuck));
  close(stuck);
}

TEST_F(HttpEndpointTest, ConnectionsBeyondTheBoundGet503) {
  HttpEndpointConfig config;
  config.max_connections = 2;
  StartEndpoint(config);
  int a = ConnectTo(port_), b = ConnectTo(port_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // Both accepted (answered) before the third arrives.
  Send(a, kGet);
  Send(b, kGet);
  ResponseReader ra(a), rb(b);
  EXPECT_EQ(ra.Next().status, 200);
  EXPECT_EQ(rb.Next().status, 200);
  int c = ConnectTo(port_);
  ASSERT_GE(c, 0);
  EXPECT_TRUE(absl::StartsWith(ReadToClose(c), "HTTP/1.1 503 ")) << "503";
  close(c);
  // Once one leaves, a new one is served.
  close(a);
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    usleep(20000);
    int d = ConnectTo(port_);
    ASSERT_GE(d, 0);
    Send(d, kGet);
    served = ResponseReader(d).Next().status == 200;
    close(d);
  }
  EXPECT_TRUE(served);
  close(b);
}

// A peer that pipelines many requests and reads nothing for a while: the
// endpoint stops reading it once its answers pile up (kMaxPendingOutput),
// serves others meanwhile, and answers every request, in order, once the
// peer reads.
TEST_F(HttpEndpointTest,
       PipelinedFloodIsAnsweredInOrderWithoutHoldingUpOthers) {
  StartEndpoint();
  int flood = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;  // the answers back up into the server quickly
  setsockopt(flood, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(flood, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  timeval tv{5, 0};
  setsockopt(flood, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // All requests arrive at once; their 64 KiB answers (12 MiB) cannot all
  // be queued: the rest wait in the parser until the output drains.
  constexpr int kRequests = 400;
  std::string requests;
  for (int i = 0; i < kRequests; ++i) {
    absl::StrAppend(&requests, i % 2 == 0 ? "GET /big" : "GET /other",
                    " HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  std::thread sender(
      [&] { send(flood, requests.data(), requests.size(), MSG_NOSIGNAL); });
  usleep(200000);  // the server has filled what it may queue
  int other = ConnectTo(port_);
  EXPECT_GE(other, 0);
  if (other >= 0) {
    Send(other, kGet);
    EXPECT_EQ(ResponseReader(other).Next().status, 200);
    close(other);
  }
  ResponseReader reader(flood);
  int answered = 0;
  for (; answered < kRequests; ++answered) {
    HttpRequest r = reader.Next();
    if (r.status != (answered % 2 == 0 ? 200 : 404)) break;
    if (answered % 2 == 0 && r.body.size() != 64 * 1024) break;
  }
  EXPECT_EQ(answered, kRequests);
  sender.join();
  close(flood);
}

// close_after_client_errors: every 4xx, the route table's or a handler's,
// ends the connection (a 2xx does not). The owner sees the open connections
// (a gauge) and each answer given without a handler, by why.
TEST_F(HttpEndpointTest, ClientErrorsCloseAndRefusalsAreReported) {
  std::atomic<int64_t> gauge{0};
  HttpEndpointConfig config;
  config.max_connections = 1;
  config.close_after_client_errors = true;
  config.connections_gauge = &gauge;
  RecordRefusals(&config);
  StartEndpoint(config);
  for (const char* request :
       {"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /kick HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n"}) {
    int fd = ConnectTo(port_);
    ASSERT_GE(fd, 0);
    ResponseReader reader(fd);
    Send(fd, kGet);
    HttpRequest r = reader.Next();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(gauge.load(), 1);
    int over = ConnectTo(port_);  // past max_connections
    EXPECT_TRUE(absl::StartsWith(ReadToClose(over), "HTTP/1.1 503 "));
    close(over);
    Send(fd, request);
    r = reader.Next();
    EXPECT_EQ(r.status / 100, 4) << request;
    EXPECT_FALSE(r.keep_alive) << request;  // "Connection: close" was sent
    EXPECT_TRUE(ClosedByServer(fd)) << request;
    close(fd);
  }
  EXPECT_EQ(gauge.load(), 0);
  // kOverCapacity 0, kBadRequest 1, kNoRoute 2; the handler's 400 is not one.
  EXPECT_EQ(Refusals(), "0 503,2 404,0 503,2 405,0 503,0 503,1 400");
}

// "Expect: 100-continue": the interim answer comes before the body is sent.
TEST_F(HttpEndpointTest, ExpectContinueIsAnsweredBeforeTheBody) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  Send(fd,
       "POST /kick HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
       "Expect: 100-continue\r\n\r\n");
  const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  std::string interim(kContinue.size(), '\0');
  ASSERT_EQ(recv(fd, interim.data(), interim.size(), MSG_WAITALL),
            static_cast<ssize_t>(interim.size()));
  EXPECT_EQ(interim, kContinue);
  Send(fd, "bob");
  HttpRequest r = ResponseReader(fd).Next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "kicked bob");
  close(fd);
}

}  // namespace
}  // namespace pimap::http

namespace pimap::http {
namespace {

TEST_F(HttpEndpointTest, DeferredAnswerKeepsPipelinedOrder) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ResponseReader reader(fd);
  // The deferred answer comes 100 ms later; the request behind it waits.
  Send(fd, absl::StrCat("GET /later?a HTTP/1.1\r\nHost: x\r\n\r\n", kGet,
                        "GET /now HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpRequest r = reader.Next();
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "later /later?a");
  r = reader.Next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "metric_a 1\nmetric_b 2\n");
  r = reader.Next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "now");
  close(fd);
}

TEST_F(HttpEndpointTest, DeferredAnswerToAClosedConnectionIsDropped) {
  StartEndpoint();
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  Send(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
  close(fd);           // gone before the answer
  usleep(200 * 1000);  // the answer comes and finds nobody
  fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ResponseReader reader(fd);
  Send(fd, kGet);
  EXPECT_EQ(reader.Next().status, 200);
  close(fd);
}

}  // namespace
}  // namespace pimap::http
