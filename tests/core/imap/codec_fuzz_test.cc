// Bounded, seeded fuzz run of the codec under ASan/UBSan: realistic seeds,
// mutated and spliced, plus random bytes, through the Framer in both modes
// with random chunking and pausing (see fuzz_driver.h). Deterministic, so a
// failure is reproducible; PIMAP_FUZZ_ITERATIONS overrides the count.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/imap/fuzz_driver.h"

namespace pimap::imap {
namespace {

const std::vector<std::string>& Seeds() {
  static const auto* seeds = new std::vector<std::string>{
      "a1 LOGIN \"joe#P6505551234@foo.com\" \"p\\\\a\\\"ss\"\r\n",
      "a2 SELECT INBOX\r\n",
      "a3 UID FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM "
      "TO)]<0.100>)\r\n",
      "a4 APPEND INBOX (\\Seen) {11}\r\nhello world\r\n",
      "a5 APPEND INBOX ~{5+}\r\nh\0llo\r\n",
      "a6 STORE 1:3 +FLAGS.SILENT (\\Deleted)\r\n",
      "a7 SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n\xc3\xa9 UNSEEN\r\n",
      "a8 AUTHENTICATE PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
      "a9 X ((a) (b (c NIL))) \"\" {0}\r\n\r\n",
      "a10 IDLE\r\nDONE\r\n",
      "* OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] Dovecot ready.\r\n",
      "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n",
      "a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
      "* 3 EXISTS\r\n* 1 RECENT\r\n",
      "* 12 FETCH (UID 77 FLAGS (\\Seen) BODY[] {7}\r\nab\r\ncd\r\n)\r\n",
      "* 1 FETCH (ENVELOPE (\"Wed\" \"a \\\"b\\\"\" ((\"T\" NIL \"g\" "
      "\"c.edu\")) "
      "NIL NIL NIL \"<id>\") BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL "
      "\"7BIT\" 3 1))\r\n",
      "+ idling\r\n+ \r\n",
      "* LIST (\\HasNoChildren) \"/\" \"[Gmail]/Sent\"\r\n",
      "a1 X {99999999999999999999+}\r\nzz\r\n",
      "a1 X {30+}\r\n0123456789012345678901234567890123456789\r\n",
  };
  return *seeds;
}

const std::vector<std::string>& Tokens() {
  static const auto* tokens = new std::vector<std::string>{
      "{5}\r\n", "{3+}\r\n", "~{2}\r\n", "{0}\r\n", "{99999999+}\r\n",
      "(",       ")",        "\"",       "\\",      std::string(1, '\0'),
      "\r\n",    "\n",       "\r",       "[",       "]",
      " ",       "NIL",      "*",        "+ ",      "* ",
      "a1 ",     "BODY[",    "\xff"};
  return *tokens;
}

std::string Mutate(std::mt19937_64& rng) {
  const auto& seeds = Seeds();
  std::string s;
  const int parts = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < parts; ++i) s += seeds[rng() % seeds.size()];
  const int mutations = static_cast<int>(rng() % 6);
  for (int m = 0; m < mutations && !s.empty(); ++m) {
    const size_t pos = rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (pos < s.size())
          s[pos] = static_cast<char>(s[pos] ^ (1 << (rng() % 8)));
        break;
      case 1:  // delete a run
        s.erase(pos, rng() % 8);
        break;
      case 2:  // insert a random byte
        s.insert(pos, 1, static_cast<char>(rng() & 0xff));
        break;
      case 3:  // insert an interesting token
        s.insert(pos, Tokens()[rng() % Tokens().size()]);
        break;
      case 4:  // duplicate a run (long lines, deep nesting)
        if (pos < s.size()) {
          const std::string run = s.substr(pos, 1 + rng() % 16);
          for (int k = static_cast<int>(rng() % 8); k > 0; --k)
            s.insert(pos, run);
        }
        break;
      case 5:  // truncate
        s.resize(pos);
        break;
    }
  }
  return s;
}

std::string RandomBytes(std::mt19937_64& rng) {
  static const std::string kAlphabet =
      std::string("a1 ()[]{}~+\"\\\r\n*0123456789NIL", 29) +
      std::string(1, '\0');
  std::string s;
  const size_t len = rng() % 200;
  for (size_t i = 0; i < len; ++i) {
    s.push_back(rng() % 4 == 0 ? static_cast<char>(rng() & 0xff)
                               : kAlphabet[rng() % kAlphabet.size()]);
  }
  return s;
}

TEST(CodecFuzzTest, SeededRandomAndMutatedInputs) {
  uint64_t iterations = 500000;
  if (const char* env = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::strtoull(env, nullptr, 10);
  }
  std::mt19937_64 rng(0x5eed1234abcdULL);
  fuzz::Stats stats;
  for (uint64_t i = 0; i < iterations; ++i) {
    const std::string input = (i % 4 == 3) ? RandomBytes(rng) : Mutate(rng);
    fuzz::RunInput(input, rng(), stats);
  }
  // Sanity: the run exercised both the success and the error paths.
  EXPECT_GT(stats.commands_ok, iterations / 10);
  EXPECT_GT(stats.commands_bad, iterations / 100);
  EXPECT_GT(stats.frame_errors, iterations / 100);
  EXPECT_GT(stats.fatal, 0u);
  std::printf("ok=%llu bad=%llu frame_errors=%llu fatal=%llu\n",
              static_cast<unsigned long long>(stats.commands_ok),
              static_cast<unsigned long long>(stats.commands_bad),
              static_cast<unsigned long long>(stats.frame_errors),
              static_cast<unsigned long long>(stats.fatal));
}

}  // namespace
}  // namespace pimap::imap
