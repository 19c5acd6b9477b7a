// libFuzzer target: the HTTP/1.1 request parser (core/http/request_parser)
// that reads the store-event intake and the P-IMAP HTTP binding, in whole and
// streamed-chunked-body modes. The first byte picks the mode, the body limit
// and the split seed. Invariants: the same requests (method, target, headers,
// body, keep-alive) and the same error for the input fed whole and fed in
// random pieces; bodies within the limit; header names lower case, no control
// characters in what reaches the caller; errors carry a 4xx/5xx status and
// are sticky.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "core/http/request_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pimap::http::HttpRequest;
using pimap::http::HttpRequestParser;

struct Seen {
  std::string method, target;
  int version_minor = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false, streaming = false;
  bool operator==(const Seen&) const = default;
};

struct Outcome {
  std::vector<Seen> requests;
  int error = 0;
  bool operator==(const Outcome&) const = default;
};

bool NoControl(absl::string_view s) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

void CheckHead(const HttpRequest& r) {
  FUZZ_CHECK(!r.method.empty() && !r.target.empty());
  FUZZ_CHECK(NoControl(r.method) && NoControl(r.target));
  FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
  for (const auto& [name, value] : r.headers) {
    FUZZ_CHECK(!name.empty() && name == absl::AsciiStrToLower(name));
    FUZZ_CHECK(NoControl(name) && NoControl(value));
  }
}

// xorshift: the split points, reproducible from the input's first byte.
uint32_t NextRandom(uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<uint32_t>(state >> 11);
}

Outcome Parse(absl::string_view input, size_t limit, bool stream,
              uint64_t split_seed) {
  HttpRequestParser parser(limit);
  parser.set_stream_chunked_bodies(stream);
  Outcome out;
  uint64_t state = split_seed | 1;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t n =
        split_seed == 0 ? input.size() - pos : 1 + NextRandom(state) % 23;
    parser.Feed(input.substr(pos, n));
    pos += std::min(n, input.size() - pos);
    FUZZ_CHECK(parser.buffered() <= pos);
    HttpRequestParser::Result r;
    while (true) {
      if (parser.in_streamed_body()) {
        std::string& body = out.requests.back().body;
        const size_t before = body.size();
        const auto b = parser.NextBody(&body);
        FUZZ_CHECK(body.size() - before <= limit);
        if (b == HttpRequestParser::BodyResult::kError) {
          r = HttpRequestParser::Result::kError;
          break;
        }
        if (b == HttpRequestParser::BodyResult::kEnd) continue;
        FUZZ_CHECK(b != HttpRequestParser::BodyResult::kData ||
                   body.size() > before);
        if (b == HttpRequestParser::BodyResult::kData) continue;
        r = HttpRequestParser::Result::kNeedMore;
        break;
      }
      HttpRequest request;
      r = parser.Next(&request);
      if (r != HttpRequestParser::Result::kRequest) break;
      CheckHead(request);
      FUZZ_CHECK(request.body.size() <= limit);
      FUZZ_CHECK(!request.streaming || request.body.empty());
      out.requests.push_back({request.method, request.target,
                              request.version_minor, request.headers,
                              request.body, request.keep_alive,
                              request.streaming});
    }
    (void)parser.ContinueDue();
    if (r == HttpRequestParser::Result::kError) {
      out.error = parser.error_status();
      FUZZ_CHECK(out.error >= 400 && out.error < 600);
      FUZZ_CHECK(!parser.error_reason().empty());
      parser.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
      HttpRequest request;
      FUZZ_CHECK(parser.Next(&request) == HttpRequestParser::Result::kError);
      break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const absl::string_view input(reinterpret_cast<const char*>(data + 1),
                                size - 1);
  const bool stream = (mode & 1) != 0;
  // A small limit lets the fuzzer reach the 413 paths.
  const size_t limit = (mode & 2) != 0 ? 16 : HttpRequestParser::kMaxBodyBytes;
  const Outcome whole = Parse(input, limit, stream, 0);
  const Outcome split = Parse(input, limit, stream, 1 + (mode >> 2));
  FUZZ_CHECK(whole == split);
  return 0;
}
