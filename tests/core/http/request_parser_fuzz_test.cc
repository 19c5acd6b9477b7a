// Bounded, seeded fuzz run of the HTTP request parser under ASan/UBSan:
// realistic requests (Content-Length and chunked bodies, pipelining) mutated
// and spliced, plus random bytes, fed in random splits. Checks what must hold
// for any input: no crash or overread, the same outcome for every split of
// the same bytes, bodies within the limit, a sticky error with an HTTP status.
// Deterministic; PIMAP_FUZZ_ITERATIONS overrides the count.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/http/request_parser.h"
#include "gtest/gtest.h"

namespace pimap::http {
namespace {

constexpr size_t kBodyLimit = 4096;

const std::vector<std::string>& Seeds() {
  static const auto* seeds = new std::vector<std::string>{
      "POST /pimap HTTP/1.1\r\nHost: h\r\nContent-Type: application/vnd.pimap"
      "\r\nContent-Length: 10\r\n\r\na1 NOOP\r\n\r\n",
      "POST /pimap HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Expect: 100-continue\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
      "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "POST /dovecot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
      "Connection: close\r\n\r\n{}",
      "POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n1\na\n0\n\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n",
      "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  return *seeds;
}

const std::vector<std::string>& Tokens() {
  static const auto* tokens =
      new std::vector<std::string>{"\r\n",
                                   "\n",
                                   "\r",
                                   ":",
                                   " ",
                                   "\t",
                                   ";",
                                   "0\r\n\r\n",
                                   "ffff\r\n",
                                   "Content-Length: 3\r\n",
                                   "Transfer-Encoding: chunked\r\n",
                                   "Expect: 100-continue\r\n",
                                   "HTTP/1.1",
                                   "HTTP/1.0",
                                   std::string(1, '\0'),
                                   "\xff",
                                   "00000000000000001\r\n",
                                   "Host: x\r\n"};
  return *tokens;
}

std::string Mutate(std::mt19937_64& rng) {
  const auto& seeds = Seeds();
  std::string s;
  const int parts = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < parts; ++i) s += seeds[rng() % seeds.size()];
  const int edits = static_cast<int>(rng() % 6);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    const size_t at = rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0:
        s.insert(at, Tokens()[rng() % Tokens().size()]);
        break;
      case 1:
        s.erase(at, rng() % 8);
        break;
      case 2:
        if (at < s.size()) s[at] = static_cast<char>(rng());
        break;
      default:
        s.insert(at,
                 std::string(rng() % 64, static_cast<char>('0' + rng() % 10)));
    }
  }
  return s;
}

struct Outcome {
  std::vector<std::string> bodies;
  int error = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome Parse(const std::string& input, std::mt19937_64& rng, bool random_split,
              bool stream = false) {
  HttpRequestParser parser(kBodyLimit);
  parser.set_stream_chunked_bodies(stream);
  Outcome out;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t n = random_split ? 1 + rng() % 17 : input.size() - pos;
    parser.Feed(absl::string_view(input).substr(pos, n));
    pos += n;
    HttpRequest request;
    HttpRequestParser::Result r;
    while (true) {
      if (parser.in_streamed_body()) {
        // A streamed body: its pieces join into the request's body.
        const HttpRequestParser::BodyResult b =
            parser.NextBody(&out.bodies.back());
        if (b == HttpRequestParser::BodyResult::kError) {
          r = HttpRequestParser::Result::kError;
          break;
        }
        // kData: more may be decoded already (one chunk per call).
        if (b != HttpRequestParser::BodyResult::kNeedMore) continue;
        r = HttpRequestParser::Result::kNeedMore;
        break;
      }
      r = parser.Next(&request);
      if (r != HttpRequestParser::Result::kRequest) break;
      EXPECT_LE(request.body.size(), kBodyLimit);
      out.bodies.push_back(request.body);
    }
    (void)parser.ContinueDue();
    if (r == HttpRequestParser::Result::kError) {
      out.error = parser.error_status();
      EXPECT_GE(out.error, 400);
      EXPECT_LT(out.error, 600);
      // Sticky.
      parser.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
      EXPECT_EQ(parser.Next(&request), HttpRequestParser::Result::kError);
      break;
    }
  }
  return out;
}

TEST(HttpRequestParserFuzzTest, AnyInputAnySplit) {
  int iterations = 20000;
  if (const char* env = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::atoi(env);
  }
  std::mt19937_64 rng(20261206);
  for (int i = 0; i < iterations; ++i) {
    std::string input;
    if (i % 10 == 0) {
      input.resize(rng() % 512);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = Mutate(rng);
    }
    const Outcome whole = Parse(input, rng, false);
    const Outcome split = Parse(input, rng, true);
    ASSERT_EQ(whole, split) << "input: " << testing::PrintToString(input);
    // Streamed chunked bodies: the same outcome for any split too.
    const Outcome streamed_whole = Parse(input, rng, false, true);
    const Outcome streamed_split = Parse(input, rng, true, true);
    ASSERT_EQ(streamed_whole, streamed_split)
        << "input: " << testing::PrintToString(input);
  }
}

}  // namespace
}  // namespace pimap::http
