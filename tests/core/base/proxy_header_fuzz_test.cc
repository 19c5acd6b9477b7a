// Bounded, seeded fuzz run of the PROXY protocol header parser under
// ASan/UBSan (core/base/proxy_header): v1 and v2 headers as HAProxy sends
// them, mutated, spliced and cut, plus random bytes. What must hold for any
// input: no crash or overread; a complete header no longer than the input or
// the bound, reading the same from exactly its own bytes; every prefix of a
// complete header "needs more"; a refusal says why. Deterministic;
// PIMAP_FUZZ_ITERATIONS overrides the count.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/base/proxy_header.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

std::vector<std::string> Seeds() {
  const std::string v2("\r\n\r\n\0\r\nQUIT\n", 12);
  return {
      "PROXY TCP4 192.0.2.1 198.51.100.7 56324 993\r\na1 NOOP\r\n",
      "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 4000 143\r\n",
      "PROXY UNKNOWN\r\n",
      v2 + std::string("\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc"
                       "\x04\x03\xe1",
                       16),
      v2 + std::string("\x21\x21\x00\x24", 4) + std::string(36, '\x01'),
      v2 + std::string("\x20\x00\x00\x00", 4),
      v2 + std::string("\x21\x11\x00\x13\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc"
                       "\x04\x03\xe1\x01\x00\x04imap",
                       23),
  };
}

std::string Mutate(std::mt19937_64& rng, const std::vector<std::string>& seeds) {
  std::string s = seeds[rng() % seeds.size()];
  const int edits = static_cast<int>(rng() % 4);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    const size_t at = rng() % s.size();
    switch (rng() % 4) {
      case 0:
        s[at] = static_cast<char>(rng());
        break;
      case 1:
        s.erase(at, 1 + rng() % 4);
        break;
      case 2:
        s.insert(at, std::string(1 + rng() % 8, static_cast<char>(rng())));
        break;
      default:
        s += seeds[rng() % seeds.size()];
        break;
    }
  }
  if (rng() % 8 == 0) {
    s.assign(rng() % 200, '\0');
    for (char& c : s) c = static_cast<char>(rng());
  }
  return s;
}

TEST(ProxyHeaderFuzzTest, InvariantsHoldForMutatedInput) {
  int iterations = 1000000;
  if (const char* n = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::atoi(n);
  }
  const std::vector<std::string> seeds = Seeds();
  std::mt19937_64 rng(20261208);
  for (int i = 0; i < iterations; ++i) {
    const std::string input = Mutate(rng, seeds);
    ProxyHeader header;
    std::string error;
    const ProxyParse result = ParseProxyHeader(input, &header, &error);
    if (result == ProxyParse::kNeedMore) {
      ASSERT_LT(input.size(), kMaxProxyHeaderBytes);
      continue;
    }
    if (result == ProxyParse::kInvalid) {
      ASSERT_FALSE(error.empty());
      continue;
    }
    ASSERT_GT(header.length, 0u);
    ASSERT_LE(header.length, input.size());
    ASSERT_LE(header.length, kMaxProxyHeaderBytes);
    const std::string own = input.substr(0, header.length);
    ProxyHeader again;
    ASSERT_EQ(ParseProxyHeader(own, &again, &error), ProxyParse::kComplete);
    ASSERT_EQ(again.length, header.length);
    ASSERT_EQ(again.source, header.source);
    // Cut anywhere before its end, the same header needs more.
    const size_t cut = rng() % header.length;
    ASSERT_EQ(ParseProxyHeader(own.substr(0, cut), &again, &error),
              ProxyParse::kNeedMore)
        << cut;
  }
}

}  // namespace
}  // namespace pimap
