// Bounded, seeded fuzz run of request-body decoding (DecodeBody) under
// ASan/UBSan: valid gzip and zstd bodies (single and concatenated, highly
// compressible), mutated and truncated, plus random bytes. What must hold for
// any input: no crash or overread, and output never past the bound.
// Deterministic; PIMAP_FUZZ_ITERATIONS overrides the count.
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/http/content_coding.h"
#include "gtest/gtest.h"

namespace pimap::http {
namespace {

constexpr size_t kBound = 64 * 1024;

std::vector<std::string> Seeds() {
  ShardCompressor compressor;
  std::vector<std::string> seeds;
  const std::string texts[] = {
      "a1 NOOP\r\n",
      std::string(200000, 'a'),  // past the bound when decoded
      "a2 APPEND INBOX {11+}\r\nhello world\r\n",
  };
  for (ContentCoding coding : {ContentCoding::kGzip, ContentCoding::kZstd}) {
    for (const std::string& text : texts) {
      ResponseEncoder encoder(coding, &compressor);
      std::string body = encoder.Encode(text.substr(0, text.size() / 2));
      body += encoder.Encode(text.substr(text.size() / 2));
      body += encoder.Finish();
      seeds.push_back(body);
      seeds.push_back(body + body);  // concatenated members / frames
    }
  }
  return seeds;
}

TEST(ContentCodingFuzzTest, DecodeBodyStaysBounded) {
  int iterations = 20000;
  if (const char* env = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::atoi(env);
  }
  const std::vector<std::string> seeds = Seeds();
  std::mt19937_64 rng(4978);
  for (int i = 0; i < iterations; ++i) {
    std::string input;
    if (i % 10 == 0) {
      input.resize(rng() % 256);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = seeds[rng() % seeds.size()];
      const int edits = static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !input.empty(); ++e) {
        const size_t at = rng() % input.size();
        switch (rng() % 3) {
          case 0:
            input[at] = static_cast<char>(rng());
            break;
          case 1:
            input.resize(at);  // truncated
            break;
          default:
            input.insert(at,
                         std::string(1 + rng() % 8, static_cast<char>(rng())));
        }
      }
    }
    for (ContentCoding coding : {ContentCoding::kGzip, ContentCoding::kZstd}) {
      absl::StatusOr<std::string> out = DecodeBody(coding, input, kBound);
      if (out.ok()) {
        EXPECT_LE(out->size(), kBound);
      } else {
        EXPECT_TRUE(absl::IsInvalidArgument(out.status()) ||
                    absl::IsResourceExhausted(out.status()))
            << out.status();
      }
    }
  }
}

}  // namespace
}  // namespace pimap::http
