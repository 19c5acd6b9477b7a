// HttpRequestParser: any split of the input, pipelining, limits, bad input.
#include "core/http/request_parser.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pimap::http {
namespace {

using Result = HttpRequestParser::Result;

const char kPost[] =
    "POST /dovecot HTTP/1.1\r\n"
    "Host: 127.0.0.1:8088\r\n"
    "User-Agent: LuaSocket 3.0.0\r\n"
    "Connection: close, TE\r\n"
    "TE: trailers\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "{\"user\":\"a\"}\n";

// Feeds `input` in pieces of `step` bytes; collects the requests; returns the final
// result of Next().
Result FeedInSteps(absl::string_view input, size_t step, std::vector<HttpRequest>* out,
                   HttpRequestParser* parser) {
  Result last = Result::kNeedMore;
  for (size_t i = 0; i < input.size(); i += step) {
    parser->Feed(input.substr(i, step));
    HttpRequest request;
    while ((last = parser->Next(&request)) == Result::kRequest) {
      out->push_back(std::move(request));
    }
    if (last == Result::kError) return last;
  }
  return last;
}

TEST(HttpRequestParserTest, ParsesTheLuaSocketRequestWhole) {
  HttpRequestParser parser;
  parser.Feed(kPost);
  HttpRequest r;
  ASSERT_EQ(parser.Next(&r), Result::kRequest);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/dovecot");
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_EQ(r.body, "{\"user\":\"a\"}\n");
  EXPECT_FALSE(r.keep_alive);  // "Connection: close, TE"
  ASSERT_NE(r.Header("content-type"), nullptr);
  EXPECT_EQ(*r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("x-pimap-secret"), nullptr);
  EXPECT_EQ(parser.Next(&r), Result::kNeedMore);
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(HttpRequestParserTest, AnySplitGivesTheSameRequests) {
  // Two pipelined keep-alive requests, the second with bare-LF line ends.
  const std::string input = absl::StrCat(
      "POST /dovecot HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
      "POST /x HTTP/1.1\nHost: h\nX-Pimap-Secret:  s3 \nContent-Length: 2\n\nab");
  for (size_t step : {1u, 2u, 3u, 7u, 64u, 1000u}) {
    SCOPED_TRACE(step);
    HttpRequestParser parser;
    std::vector<HttpRequest> got;
    EXPECT_EQ(FeedInSteps(input, step, &got, &parser), Result::kNeedMore);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].target, "/dovecot");
    EXPECT_EQ(got[0].body, "hello");
    EXPECT_TRUE(got[0].keep_alive);
    EXPECT_EQ(got[1].target, "/x");
    EXPECT_EQ(got[1].body, "ab");
    ASSERT_NE(got[1].Header("x-pimap-secret"), nullptr);
    EXPECT_EQ(*got[1].Header("x-pimap-secret"), "s3");
  }
}

TEST(HttpRequestParserTest, ByteAtATimeLuaRequest) {
  HttpRequestParser parser;
  std::vector<HttpRequest> got;
  FeedInSteps(kPost, 1, &got, &parser);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "{\"user\":\"a\"}\n");
}

TEST(HttpRequestParserTest, SkipsEmptyLinesBetweenRequests) {
  HttpRequestParser parser;
  std::vector<HttpRequest> got;
  FeedInSteps("GET / HTTP/1.1\r\nHost: h\r\n\r\n\r\n\r\nGET /b HTTP/1.0\r\n\r\n", 1, &got,
              &parser);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].target, "/b");
  EXPECT_FALSE(got[1].keep_alive);  // HTTP/1.0 default
}

TEST(HttpRequestParserTest, Http10KeepAlive) {
  HttpRequestParser parser;
  parser.Feed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  HttpRequest r;
  ASSERT_EQ(parser.Next(&r), Result::kRequest);
  EXPECT_EQ(r.version_minor, 0);
  EXPECT_TRUE(r.keep_alive);
}

struct BadCase {
  const char* input;
  int status;
};

TEST(HttpRequestParserTest, RejectsBadInput) {
  const BadCase cases[] = {
      {"garbage\r\n\r\n", 400},
      {"POST /dovecot\r\n\r\n", 400},
      {"POST  /dovecot HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n x\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nX: a\rz\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},  // no Host
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
      {"POST /d HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400},
      {"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400},
      {"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n", 413},
      {"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "fffffffffffffffff\r\n", 400},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\n\r\n", 411},
      {"POST /dovecot HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413},
      {"POST /dovecot HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"POST /dovecot HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
  };
  for (const BadCase& c : cases) {
    for (size_t step : {1u, 1000u}) {
      SCOPED_TRACE(absl::StrCat(c.input, " step ", step));
      HttpRequestParser parser;
      std::vector<HttpRequest> got;
      EXPECT_EQ(FeedInSteps(c.input, step, &got, &parser), Result::kError);
      EXPECT_TRUE(got.empty());
      EXPECT_EQ(parser.error_status(), c.status);
      // Sticky: more input does not revive it.
      parser.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
      HttpRequest r;
      EXPECT_EQ(parser.Next(&r), Result::kError);
    }
  }
}

TEST(HttpRequestParserTest, HeaderBlockLimit) {
  // Exactly at the limit passes.
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  const std::string tail = "\r\n\r\n";
  head.append(HttpRequestParser::kMaxHeaderBytes - head.size() - tail.size(), 'a');
  head += tail;
  ASSERT_EQ(head.size(), HttpRequestParser::kMaxHeaderBytes);
  {
    HttpRequestParser parser;
    std::vector<HttpRequest> got;
    EXPECT_EQ(FeedInSteps(head, 997, &got, &parser), Result::kNeedMore);
    EXPECT_EQ(got.size(), 1u);
  }
  // One byte more fails, also when the end never comes.
  std::string over = head;
  over.insert(30, "a");
  {
    HttpRequestParser parser;
    std::vector<HttpRequest> got;
    EXPECT_EQ(FeedInSteps(over, 997, &got, &parser), Result::kError);
    EXPECT_EQ(parser.error_status(), 431);
  }
  {
    HttpRequestParser parser;
    std::vector<HttpRequest> got;
    EXPECT_EQ(FeedInSteps(std::string(20000, 'a'), 100, &got, &parser), Result::kError);
    EXPECT_EQ(parser.error_status(), 431);
  }
}

TEST(HttpRequestParserTest, BodyLimitAndExactBody) {
  const std::string body(HttpRequestParser::kMaxBodyBytes, 'b');
  HttpRequestParser parser;
  std::vector<HttpRequest> got;
  const std::string input =
      absl::StrCat("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ", body.size(),
                   "\r\n\r\n", body, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(FeedInSteps(input, 65536, &got, &parser), Result::kNeedMore);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].body.size(), body.size());
  EXPECT_EQ(got[1].method, "GET");
}

TEST(HttpRequestParserTest, IncompleteBodyWaits) {
  HttpRequestParser parser;
  parser.Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab");
  HttpRequest r;
  EXPECT_EQ(parser.Next(&r), Result::kNeedMore);
  parser.Feed("cd");
  ASSERT_EQ(parser.Next(&r), Result::kRequest);
  EXPECT_EQ(r.body, "abcd");
}

}  // namespace
}  // namespace pimap::http

namespace pimap::http {
namespace {

TEST(HttpRequestParserTest, ChunkedBodyInAnySplit) {
  const std::string input =
      "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
      "Expect: 100-continue\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "0007\r\n, world\r\n"
      "1\n!\n"  // bare LF line ends
      "0\r\nX-Trailer: dropped\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t step : {1u, 3u, 7u, 1000u}) {
    SCOPED_TRACE(step);
    HttpRequestParser parser;
    std::vector<HttpRequest> got;
    EXPECT_EQ(FeedInSteps(input, step, &got, &parser), Result::kNeedMore);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].body, "hello, world!");
    EXPECT_EQ(got[1].target, "/next");
    EXPECT_EQ(parser.buffered(), 0u);
  }
}

TEST(HttpRequestParserTest, ChunkedBodyLimitCountsDecodedBytes) {
  HttpRequestParser parser(8);
  std::vector<HttpRequest> got;
  EXPECT_EQ(FeedInSteps("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n",
                        5, &got, &parser),
            Result::kNeedMore);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "abcdefgh");
  EXPECT_EQ(FeedInSteps("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n4\r\nabcd\r\n5\r\n",
                        5, &got, &parser),
            Result::kError);
  EXPECT_EQ(parser.error_status(), 413);
}

TEST(HttpRequestParserTest, ContinueIsDueOnceBeforeTheBody) {
  HttpRequestParser parser;
  parser.Feed(
      "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
      "Content-Length: 2\r\n\r\n");
  HttpRequest r;
  EXPECT_EQ(parser.Next(&r), Result::kNeedMore);
  EXPECT_TRUE(parser.ContinueDue());
  EXPECT_FALSE(parser.ContinueDue());
  parser.Feed("ok");
  ASSERT_EQ(parser.Next(&r), Result::kRequest);
  EXPECT_EQ(r.body, "ok");
  // Without the header, or with an empty body, nothing is due.
  parser.Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(parser.Next(&r), Result::kNeedMore);
  EXPECT_FALSE(parser.ContinueDue());
}

}  // namespace
}  // namespace pimap::http

namespace pimap::http {
namespace {

TEST(HttpRequestParserTest, StreamedChunkedBodyComesAsItArrives) {
  const std::string head =
      "POST /pimap HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunks =
      "e\r\n2 CAPABILITY\r\n\r\n"
      "8\r\n3 NOOP\r\n\r\n"
      "0\r\n\r\n";
  const std::string next = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t step : {1u, 5u, 1000u}) {
    SCOPED_TRACE(step);
    HttpRequestParser parser;
    parser.set_stream_chunked_bodies(true);
    const std::string input = head + chunks + next;
    std::string body;
    std::vector<std::string> pieces;
    std::vector<HttpRequest> requests;
    bool ended = false;
    for (size_t i = 0; i < input.size(); i += step) {
      parser.Feed(absl::string_view(input).substr(i, step));
      while (true) {
        if (parser.in_streamed_body()) {
          std::string piece;
          const auto r = parser.NextBody(&piece);
          ASSERT_NE(r, HttpRequestParser::BodyResult::kError);
          body += piece;
          if (!piece.empty()) pieces.push_back(piece);
          if (r == HttpRequestParser::BodyResult::kEnd) {
            ended = true;
            continue;
          }
          if (r == HttpRequestParser::BodyResult::kNeedMore) break;
          continue;
        }
        HttpRequest request;
        const Result r = parser.Next(&request);
        ASSERT_NE(r, Result::kError);
        if (r != Result::kRequest) break;
        requests.push_back(std::move(request));
      }
    }
    EXPECT_TRUE(ended);
    EXPECT_EQ(body, "2 CAPABILITY\r\n3 NOOP\r\n");
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_TRUE(requests[0].streaming);
    EXPECT_TRUE(requests[0].body.empty());
    EXPECT_FALSE(requests[1].streaming);
    EXPECT_EQ(requests[1].target, "/x");
    if (step == 1000u) {
      // Whole input at once: the body still comes out (at least) once.
      EXPECT_FALSE(pieces.empty());
    }
  }
}

// NextBody appends: a caller may keep one string for the whole body, and
// still must be told kNeedMore when nothing new arrived (it said kData, so
// such a caller looping on kData never stopped).
TEST(HttpRequestParserTest, StreamedBodyNeedMoreWhenAccumulating) {
  HttpRequestParser parser;
  parser.set_stream_chunked_bodies(true);
  parser.Feed(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  HttpRequest request;
  ASSERT_EQ(parser.Next(&request), Result::kRequest);
  std::string body;
  parser.Feed("3\r\nabc\r\n");
  ASSERT_EQ(parser.NextBody(&body), HttpRequestParser::BodyResult::kData);
  EXPECT_EQ(parser.NextBody(&body), HttpRequestParser::BodyResult::kNeedMore);
  parser.Feed("2\r");
  EXPECT_EQ(parser.NextBody(&body), HttpRequestParser::BodyResult::kNeedMore);
  parser.Feed("\nde\r\n0\r\n\r\n");
  EXPECT_EQ(parser.NextBody(&body), HttpRequestParser::BodyResult::kEnd);
  EXPECT_EQ(body, "abcde");
}

TEST(HttpRequestParserTest, StreamedBodyIsUnboundedInTotalButNotPerChunk) {
  HttpRequestParser parser(16);
  parser.set_stream_chunked_bodies(true);
  parser.Feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  HttpRequest request;
  ASSERT_EQ(parser.Next(&request), Result::kRequest);
  std::string body;
  for (int i = 0; i < 100; ++i) {
    parser.Feed("a\r\n0123456789\r\n");
    ASSERT_EQ(parser.NextBody(&body), HttpRequestParser::BodyResult::kData);
  }
  EXPECT_EQ(body.size(), 1000u);
  EXPECT_LT(parser.buffered(), 64u);  // what was decoded left the buffer
  parser.Feed("11\r\n");
  EXPECT_EQ(parser.NextBody(&body), HttpRequestParser::BodyResult::kError);
  EXPECT_EQ(parser.error_status(), 413);
}

}  // namespace
}  // namespace pimap::http

namespace pimap::http {
namespace {

TEST(HttpRequestParserTest, HeaderFieldCountLimit) {
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (size_t i = 1; i < HttpRequestParser::kMaxHeaderFields; ++i) {
    head += "X: 1\r\n";
  }
  HttpRequest r;
  {
    HttpRequestParser parser;
    parser.Feed(head + "\r\n");
    EXPECT_EQ(parser.Next(&r), HttpRequestParser::Result::kRequest);
  }
  HttpRequestParser parser;
  parser.Feed(head + "X: 1\r\n\r\n");
  EXPECT_EQ(parser.Next(&r), HttpRequestParser::Result::kError);
  EXPECT_EQ(parser.error_status(), 431);
}

// Responses (set_parse_responses): what the gateway's HTTP client reads.
TEST(HttpResponseParserTest, StatusLinesFramingAndBodies) {
  HttpRequestParser parser;
  parser.set_parse_responses(true);
  parser.Feed(
      "HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 0\r\n\r\n"
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
      "Content-Length: 4\r\n\r\nslow"
      "HTTP/1.1 204\r\n\r\n"
      "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n"
      "HTTP/1.0 410 Gone\r\n\r\n");
  HttpRequest r;
  ASSERT_EQ(parser.Next(&r), HttpRequestParser::Result::kRequest);
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(r.method.empty());
  EXPECT_EQ(*r.Header("location"), "/m/1");
  EXPECT_TRUE(r.keep_alive);
  ASSERT_EQ(parser.Next(&r), HttpRequestParser::Result::kRequest);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(*r.Header("retry-after"), "7");
  EXPECT_EQ(r.body, "slow");
  ASSERT_EQ(parser.Next(&r), HttpRequestParser::Result::kRequest);
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_EQ(parser.Next(&r), HttpRequestParser::Result::kRequest);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "abc");
  ASSERT_EQ(parser.Next(&r), HttpRequestParser::Result::kRequest);
  EXPECT_EQ(r.status, 410);
  EXPECT_FALSE(r.keep_alive) << "no framing: the connection ends the body";
}

TEST(HttpResponseParserTest, MalformedStatusLines) {
  for (const char* bad :
       {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 +20 OK\r\n\r\n", "HTTP/1.1  20 OK\r\n\r\n"}) {
    HttpRequestParser parser;
    parser.set_parse_responses(true);
    parser.Feed(bad);
    HttpRequest r;
    EXPECT_EQ(parser.Next(&r), HttpRequestParser::Result::kError) << bad;
  }
  // A request parser still wants a request line.
  HttpRequestParser requests;
  requests.Feed("HTTP/1.1 200 OK\r\n\r\n");
  HttpRequest r;
  EXPECT_EQ(requests.Next(&r), HttpRequestParser::Result::kError);
}

// The per-chunk limit of a streamed body holds whatever the split: two
// chunks within the limit that together exceed it pass whether they arrive
// in one read or apart (found by tests/fuzz/http_request_fuzzer.cc: fed
// whole they got 413, fed in pieces they passed).
TEST(HttpRequestParserTest, StreamedBodyLimitIsPerChunkWhateverTheSplit) {
  const std::string input =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;x=y\r\nhello\r\ne\r\n0123456789abcd\r\n0\r\n\r\n";
  for (size_t step : {1u, 11u, 1000u}) {
    SCOPED_TRACE(step);
    HttpRequestParser parser(16);
    parser.set_stream_chunked_bodies(true);
    std::string body;
    int chunks_out = 0;
    bool ended = false;
    for (size_t i = 0; i < input.size() && !ended; i += step) {
      parser.Feed(absl::string_view(input).substr(i, step));
      if (!parser.in_streamed_body()) {
        HttpRequest request;
        if (parser.Next(&request) != Result::kRequest) continue;
      }
      while (true) {
        const size_t before = body.size();
        const auto r = parser.NextBody(&body);
        ASSERT_NE(r, HttpRequestParser::BodyResult::kError)
            << parser.error_reason();
        EXPECT_LE(body.size() - before, 16u);
        if (body.size() > before) ++chunks_out;
        if (r == HttpRequestParser::BodyResult::kEnd) ended = true;
        if (r != HttpRequestParser::BodyResult::kData) break;
      }
    }
    EXPECT_TRUE(ended);
    EXPECT_EQ(body, "hello0123456789abcd");
    EXPECT_GE(chunks_out, 2);
  }
}

}  // namespace
}  // namespace pimap::http
