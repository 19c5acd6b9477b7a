// The shared HTTP/1.1 server connection (core/http/http1_connection.h) over an
// in-memory transport: requests answered at once and later, in order; HEAD;
// Connection: close; the parser's errors; 100-continue; streamed and coded
// responses; streamed request bodies; backpressure; the idle and request
// deadlines; a handler that closes from inside its callback.
#include "core/http/http1_connection.h"

#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/http/content_coding.h"
#include "gtest/gtest.h"

namespace pimap::http {
namespace {

// Owned by the test; records what the connection does with it.
class FakeTransport final : public engine::Transport {
 public:
  void SetHandler(engine::TransportHandler* handler) override {
    handler_ = handler;
  }
  void Write(absl::string_view bytes) override {
    out.append(bytes.data(), bytes.size());
    pending += bytes.size();
  }
  void Write(std::string&& bytes) override { Write(absl::string_view(bytes)); }
  size_t PendingOutput() const override { return pending; }
  void SetReading(bool on) override { reading = on; }
  void Close() override { closed = true; }
  void Abort() override { closed = true; }

  // The peer's side.
  void Send(absl::string_view bytes) { handler_->OnTransportData(bytes); }
  void Drain() {
    pending = 0;
    handler_->OnTransportDrained();
  }
  void PeerCloses() { handler_->OnTransportClosed(absl::OkStatus()); }
  std::string TakeOut() { return std::exchange(out, {}); }

  std::string out;
  size_t pending = 0;
  bool reading = true;
  bool closed = false;

 private:
  engine::TransportHandler* handler_ = nullptr;
};

class TestHandler final : public ServerHandler {
 public:
  // Answers each request at once with its target, unless `hold`.
  void OnRequest(ServerConnection& connection, HttpRequest request) override {
    EXPECT_FALSE(closed);
    requests.push_back(request);
    current = &connection;
    in_request = true;
    if (on_request) {
      on_request(connection, request);
    } else if (!hold) {
      connection.Respond(200, "", "text/plain",
                         absl::StrCat("you asked ", request.target));
    }
    in_request = false;
  }
  void OnRequestBody(ServerConnection&, absl::string_view data,
                     bool end) override {
    body.append(data.data(), data.size());
    body_ended = body_ended || end;
  }
  void OnRequestError(ServerConnection&, int status, absl::string_view reason,
                      bool answered) override {
    errors.push_back(
        absl::StrCat(status, answered ? " " : " unanswered ", reason));
  }
  void OnDrained(ServerConnection&) override { ++drained; }
  void OnResponseComplete(ServerConnection&) override { ++completed; }
  void OnClosed(ServerConnection&, bool lost) override {
    output_lost = lost;
    EXPECT_FALSE(in_request) << "OnClosed inside OnRequest";
    EXPECT_FALSE(closed) << "OnClosed twice";
    closed = true;
    current = nullptr;
  }

  std::function<void(ServerConnection&, const HttpRequest&)> on_request;
  bool hold = false;
  std::vector<HttpRequest> requests;
  std::vector<std::string> errors;
  std::string body;
  bool body_ended = false;
  int drained = 0;
  int completed = 0;
  bool closed = false;
  bool output_lost = false;
  bool in_request = false;
  ServerConnection* current = nullptr;
};

class Http1ConnectionTest : public ::testing::Test {
 protected:
  Http1ConnectionTest() : timers_(MonotonicNowMs()) {}

  void Open() {
    connection_ =
        new Http1Connection(&transport_, &timers_, &handler_, &config_);
    connection_->Start();
  }
  // A POST whose chunked body streams to the handler: its head and first
  // chunk ("abc") have arrived, and the handler holds its answer.
  void OpenWithAChunkedBodyBegun() {
    config_.stream_chunked_bodies = true;
    handler_.hold = true;
    Open();
    transport_.Send(
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n");
  }
  void AdvanceBy(int64_t ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    timers_.Advance(MonotonicNowMs());
  }

  ServerConnectionConfig config_;
  TimerWheel timers_;
  FakeTransport transport_;
  TestHandler handler_;
  Http1Connection* connection_ = nullptr;  // frees itself on close
};

constexpr absl::string_view kGetA = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr absl::string_view kGetB = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";

TEST_F(Http1ConnectionTest, PipelinedRequestsAnsweredInOrder) {
  Open();
  transport_.Send(absl::StrCat(kGetA, kGetB));
  ASSERT_EQ(handler_.requests.size(), 2u);
  EXPECT_EQ(transport_.TakeOut(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: 12\r\n\r\nyou asked /a"
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: 12\r\n\r\nyou asked /b");
  EXPECT_FALSE(transport_.closed);
  EXPECT_FALSE(handler_.closed);
  transport_.PeerCloses();
  EXPECT_TRUE(handler_.closed);
}

TEST_F(Http1ConnectionTest, AnswerLaterHoldsTheNextRequest) {
  handler_.hold = true;
  Open();
  transport_.Send(absl::StrCat(kGetA, kGetB));
  ASSERT_EQ(handler_.requests.size(), 1u);  // /b waits for /a's answer
  EXPECT_EQ(transport_.out, "");
  ServerConnection* c = handler_.current;
  handler_.hold = false;
  c->Respond(204, "", "", "");
  ASSERT_EQ(handler_.requests.size(), 2u);
  EXPECT_EQ(handler_.completed, 2);
  EXPECT_EQ(handler_.requests[1].target, "/b");
  EXPECT_TRUE(absl::StartsWith(transport_.out, "HTTP/1.1 204 No Content\r\n"));
  EXPECT_TRUE(absl::EndsWith(transport_.out, "you asked /b"));
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, HeadGetsTheHeadOnly) {
  Open();
  transport_.Send("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(transport_.TakeOut(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: 12\r\n\r\n");
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, ConnectionCloseClosesAfterTheAnswer) {
  Open();
  transport_.Send("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StrContains(transport_.out, "Connection: close\r\n"));
  EXPECT_TRUE(transport_.closed);
  EXPECT_TRUE(handler_.closed);
}

TEST_F(Http1ConnectionTest, HandlerAsksToClose) {
  handler_.on_request = [](ServerConnection& c, const HttpRequest&) {
    EXPECT_TRUE(c.keep_alive());
    c.CloseAfterResponse();
    c.Respond(400, "", "text/plain", "no\n");
  };
  Open();
  transport_.Send(absl::StrCat(kGetA, kGetB));
  EXPECT_EQ(handler_.requests.size(), 1u);  // /b is never read
  EXPECT_TRUE(absl::StrContains(transport_.out, "Connection: close\r\n"));
  EXPECT_TRUE(handler_.closed);
}

TEST_F(Http1ConnectionTest, CloseFromInsideOnRequestWaitsForItToReturn) {
  handler_.on_request = [](ServerConnection& c, const HttpRequest&) {
    c.Close();
  };
  Open();
  transport_.Send(kGetA);
  EXPECT_TRUE(transport_.closed);
  EXPECT_TRUE(handler_.closed);  // checked not inside OnRequest
}

TEST_F(Http1ConnectionTest, ParserErrorAnsweredThenClosed) {
  config_.max_body_bytes = 4;
  Open();
  transport_.Send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
  ASSERT_EQ(handler_.errors.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(handler_.errors[0], "413 "));
  EXPECT_TRUE(absl::StartsWith(transport_.out, "HTTP/1.1 413 "));
  EXPECT_TRUE(absl::StrContains(transport_.out, "Connection: close\r\n"));
  EXPECT_TRUE(transport_.closed);
  EXPECT_TRUE(handler_.closed);
  EXPECT_TRUE(handler_.requests.empty());
}

TEST_F(Http1ConnectionTest, ContinueBeforeTheBody) {
  Open();
  transport_.Send(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
      "Expect: 100-continue\r\n\r\n");
  EXPECT_EQ(transport_.TakeOut(), "HTTP/1.1 100 Continue\r\n\r\n");
  transport_.Send("abc");
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_EQ(handler_.requests[0].body, "abc");
  EXPECT_TRUE(absl::StartsWith(transport_.out, "HTTP/1.1 200 OK\r\n"));
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, StreamedChunkedResponse) {
  handler_.hold = true;
  Open();
  transport_.Send(kGetA);
  ServerConnection* c = handler_.current;
  c->WriteHead(200, "Content-Type: application/vnd.pimap\r\n", -1);
  c->WriteBody("* 1 EXISTS\r\n");
  c->WriteBody("");  // nothing: an empty chunk would end the body
  c->WriteBody("A OK\r\n");
  EXPECT_FALSE(absl::StrContains(transport_.out, "0\r\n\r\n"));
  c->EndResponse();
  EXPECT_EQ(transport_.TakeOut(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pimap\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
            "c\r\n* 1 EXISTS\r\n\r\n6\r\nA OK\r\n\r\n0\r\n\r\n");
  // Kept alive: the next request is read.
  handler_.hold = false;
  transport_.Send(kGetB);
  EXPECT_EQ(handler_.requests.size(), 2u);
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, CodedResponseOfKnownLengthIsHeldWhole) {
  ShardCompressor compressor;
  config_.compressor = &compressor;
  handler_.hold = true;
  Open();
  transport_.Send(kGetA);
  ServerConnection* c = handler_.current;
  const std::string body(1000, 'x');
  c->WriteHead(200, "", static_cast<int64_t>(body.size()),
               ContentCoding::kGzip);
  c->WriteBody(body.substr(0, 400));
  c->WriteBody(body.substr(400));
  EXPECT_EQ(transport_.out, "");  // held until its coded length is known
  c->EndResponse();
  const std::string out = transport_.TakeOut();
  const size_t end = out.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  const std::string coded = out.substr(end + 4);
  EXPECT_TRUE(absl::StrContains(
      out.substr(0, end), absl::StrCat("Content-Length: ", coded.size())));
  EXPECT_TRUE(absl::StrContains(out, "Content-Encoding: gzip\r\n"));
  EXPECT_TRUE(absl::StrContains(out, "Vary: Accept-Encoding\r\n"));
  absl::StatusOr<std::string> decoded =
      DecodeBody(ContentCoding::kGzip, coded, 1 << 20);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, body);
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, StreamedRequestBody) {
  OpenWithAChunkedBodyBegun();
  ASSERT_EQ(handler_.requests.size(), 1u);
  EXPECT_TRUE(handler_.requests[0].streaming);
  EXPECT_EQ(handler_.body, "abc");
  EXPECT_FALSE(handler_.body_ended);
  transport_.Send("2\r\nde\r\n0\r\n\r\n");
  EXPECT_EQ(handler_.body, "abcde");
  EXPECT_TRUE(handler_.body_ended);
  handler_.current->Respond(200, "", "text/plain", "ok");
  EXPECT_FALSE(transport_.closed);  // the body ended: kept alive
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, BrokenStreamedBodyClosesUnanswered) {
  OpenWithAChunkedBodyBegun();
  EXPECT_EQ(handler_.body, "abc");
  transport_.Send("zz\r\n");  // not a chunk size
  ASSERT_EQ(handler_.errors.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(handler_.errors[0], "400 unanswered "));
  EXPECT_EQ(transport_.out, "");  // the response was the handler's to give
  EXPECT_TRUE(handler_.closed);
}

TEST_F(Http1ConnectionTest, AnswerBeforeStreamedBodyEndsCloses) {
  config_.stream_chunked_bodies = true;
  handler_.on_request = [](ServerConnection& c, const HttpRequest&) {
    c.Respond(429, "", "text/plain", "busy\n");
  };
  Open();
  transport_.Send(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n");
  EXPECT_TRUE(absl::StrContains(transport_.out, "Connection: close\r\n"));
  EXPECT_TRUE(handler_.closed);
}

TEST_F(Http1ConnectionTest, PeerThatDoesNotReadIsNotRead) {
  config_.max_pending_output = 10;
  Open();
  transport_.Send(absl::StrCat(kGetA, kGetB));
  // The first answer is past the bound: /b waits in the parser.
  EXPECT_EQ(handler_.requests.size(), 1u);
  EXPECT_FALSE(transport_.reading);
  transport_.Drain();
  EXPECT_EQ(handler_.drained, 1);
  EXPECT_EQ(handler_.requests.size(), 2u);
  transport_.Drain();
  EXPECT_TRUE(transport_.reading);
  transport_.PeerCloses();
}

TEST_F(Http1ConnectionTest, IdleConnectionClosedWithoutAnswer) {
  config_.idle_timeout_ms = 30;
  Open();
  transport_.Send(kGetA);
  transport_.TakeOut();
  AdvanceBy(10);
  EXPECT_FALSE(handler_.closed);
  AdvanceBy(40);
  EXPECT_TRUE(handler_.closed);
  EXPECT_EQ(transport_.out, "");
}

TEST_F(Http1ConnectionTest, TricklingRequestHeldNoLongerThanIdle) {
  config_.idle_timeout_ms = 40;
  Open();
  for (int i = 0; i < 6 && !handler_.closed; ++i) {
    transport_.Send("G");  // a byte now and then does not reset the clock
    AdvanceBy(15);
  }
  EXPECT_TRUE(handler_.closed);
  EXPECT_EQ(transport_.out, "");
}

TEST_F(Http1ConnectionTest, RequestDeadlineAnswers408) {
  config_.idle_timeout_ms = 10000;
  config_.request_timeout_ms = 30;
  Open();
  transport_.Send("GET /a HTTP/1.1\r\n");
  AdvanceBy(50);
  EXPECT_TRUE(handler_.closed);
  EXPECT_TRUE(absl::StartsWith(transport_.out, "HTTP/1.1 408 "));
  ASSERT_EQ(handler_.errors.size(), 1u);
  EXPECT_EQ(handler_.errors[0], "408 Request not received in time");
}

TEST_F(Http1ConnectionTest, ServedRequestIsNotTimedOut) {
  config_.idle_timeout_ms = 20;
  handler_.hold = true;
  Open();
  transport_.Send(kGetA);
  AdvanceBy(50);  // a long poll: the handler's own limits
  EXPECT_FALSE(handler_.closed);
  handler_.current->Respond(200, "", "text/plain", "late");
  EXPECT_TRUE(absl::EndsWith(transport_.out, "late"));
  handler_.current->Close();
  EXPECT_TRUE(handler_.closed);
}

TEST_F(Http1ConnectionTest, ClosedByPeerLosesOutput) {
  Open();
  transport_.Send(kGetA);
  transport_.PeerCloses();
  EXPECT_TRUE(handler_.closed);
  EXPECT_TRUE(handler_.output_lost);
}

TEST_F(Http1ConnectionTest, AbortLosesOutputCloseDoesNot) {
  handler_.hold = true;
  Open();
  transport_.Send(kGetA);
  handler_.current->Abort();
  EXPECT_TRUE(transport_.closed);
  EXPECT_TRUE(handler_.output_lost);

  FakeTransport other;
  TestHandler closing;
  auto* c = new Http1Connection(&other, &timers_, &closing, &config_);
  c->Start();
  c->Close();
  EXPECT_TRUE(closing.closed);
  EXPECT_FALSE(closing.output_lost);
}

// A connection that moves to another shard: bytes that arrive meanwhile stay
// in the parser, which travels with the request's keep-alive wish; the
// arriving connection serves the carried request first, then what was read
// ahead.
TEST_F(Http1ConnectionTest, MovesWithItsParser) {
  handler_.hold = true;
  Open();
  transport_.Send("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(handler_.requests.size(), 1u);
  Http1Connection* leaving = connection_;
  leaving->Suspend();
  transport_.Send("GET /b HTTP/1.1\r\n");  // not parsed while moving
  transport_.Send("Host: x\r\n\r\n");
  EXPECT_EQ(handler_.requests.size(), 1u);
  HttpRequest first = handler_.requests[0];
  Http1Connection::Carried carried = leaving->Release();
  EXPECT_FALSE(handler_.closed);  // released, not closed: no OnClosed
  EXPECT_FALSE(transport_.closed);
  EXPECT_FALSE(carried.keep_alive);

  FakeTransport there;
  TestHandler owner;
  auto* arrived = new Http1Connection(&there, &timers_, &owner, &config_);
  arrived->Resume(std::move(carried));
  first.keep_alive = true;
  arrived->Serve(first);
  arrived->Start();
  ASSERT_EQ(owner.requests.size(), 2u);
  EXPECT_EQ(owner.requests[0].target, "/a");
  EXPECT_EQ(owner.requests[1].target, "/b");
  EXPECT_TRUE(absl::EndsWith(there.out, "you asked /b"));
  there.PeerCloses();
  EXPECT_TRUE(owner.closed);
}

TEST_F(Http1ConnectionTest, ResumedResponseGoesOnChunked) {
  OpenWithAChunkedBodyBegun();
  connection_->Suspend();
  transport_.Send("2\r\nde\r\n");
  Http1Connection::Carried carried = connection_->Release();

  FakeTransport there;
  TestHandler owner;
  owner.hold = true;
  auto* arrived = new Http1Connection(&there, &timers_, &owner, &config_);
  arrived->Resume(std::move(carried));
  arrived->ResumeResponse();
  arrived->Start();
  EXPECT_EQ(owner.body, "de");  // the rest of the body, on this shard
  arrived->WriteBody("* OK\r\n");
  EXPECT_EQ(there.TakeOut(), "6\r\n* OK\r\n\r\n");
  there.Send("0\r\n\r\n");
  EXPECT_TRUE(owner.body_ended);
  arrived->EndResponse();
  EXPECT_EQ(there.TakeOut(), "0\r\n\r\n");
  EXPECT_FALSE(owner.closed);
  there.PeerCloses();
}

TEST_F(Http1ConnectionTest, HandlerTakesTheTransportAtItsFirstBytes) {
  struct Sniffer final : ServerHandler {
    void OnBytes(ServerConnection& c, absl::string_view data) override {
      seen.append(data.data(), data.size());
      static_cast<Http1Connection&>(c).Release();
    }
    void OnRequest(ServerConnection&, HttpRequest) override { ++requests; }
    void OnClosed(ServerConnection&, bool) override { closed = true; }
    std::string seen;
    int requests = 0;
    bool closed = false;
  } sniffer;
  auto* c = new Http1Connection(&transport_, &timers_, &sniffer, &config_);
  c->Start();
  transport_.Send(kGetA);
  EXPECT_EQ(sniffer.seen, kGetA);
  EXPECT_EQ(sniffer.requests, 0);
  EXPECT_FALSE(sniffer.closed);
  EXPECT_FALSE(transport_.closed);
  EXPECT_EQ(transport_.out, "");
}

}  // namespace
}  // namespace pimap::http
