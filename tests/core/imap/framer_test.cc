// Framer tests: every input is fed whole, split at every point, byte at a
// time and with a pause after every event; all must give the same events.
#include "core/imap/framer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::imap {
namespace {

using ::pimap::imap::testing::Recorder;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Feeds `chunks` in order; returns false if the framer stopped consuming
// (fatal error) before the end.
bool FeedChunks(Framer& framer, Recorder& rec,
                const std::vector<std::string>& chunks) {
  for (const std::string& chunk : chunks) {
    const size_t used = framer.Feed(chunk, rec);
    EXPECT_LE(used, chunk.size());
    if (framer.fatal()) return false;
    EXPECT_EQ(used, chunk.size());
  }
  return true;
}

struct FramerCase {
  std::string name;
  Framer::Mode mode;
  ParserLimits limits;
  std::string input;
  std::vector<std::string> events;
};

ParserLimits Small(size_t max_line = 16) {
  ParserLimits l;
  l.max_line_bytes = max_line;
  l.max_literal_bytes = 10;
  return l;
}

std::vector<FramerCase> Cases() {
  const auto kC = Framer::Mode::kCommands;
  const auto kR = Framer::Mode::kResponses;
  const ParserLimits def;
  return {
      {"simple", kC, def, "a1 NOOP\r\n", {"L:a1 NOOP", "E"}},
      {"two_commands_bare_lf",
       kC,
       def,
       "a1 NOOP\nb2 CAPABILITY\r\n",
       {"L:a1 NOOP", "E", "L:b2 CAPABILITY", "E"}},
      {"empty_line", kC, def, "\r\n", {"L:", "E"}},
      {"sync_and_nonsync_literals",
       kC,
       def,
       "a1 LOGIN {3}\r\nabc {4+}\r\nd\r\nf\r\n",
       {"L:a1 LOGIN {3}|3s@9", "D:abc", "L: {4+}|4n@1", "D:d\r\nf", "L:", "E"}},
      {"binary_literal",
       kC,
       def,
       std::string("a APPEND INBOX ~{5}\r\nh\0l\xfflo\r\n", 29),
       {"L:a APPEND INBOX ~{5}|5sb@15", std::string("D:h\0l\xffl", 7), "L:o",
        "E"}},
      {"binary_nonsync",
       kC,
       def,
       "a APPEND INBOX ~{2+}\r\nxy\r\n",
       {"L:a APPEND INBOX ~{2+}|2nb@15", "D:xy", "L:", "E"}},
      {"zero_byte_literal",
       kC,
       def,
       "a APPEND INBOX {0}\r\n\r\nb NOOP\r\n",
       {"L:a APPEND INBOX {0}|0s@15", "L:", "E", "L:b NOOP", "E"}},
      {"not_literal_headers",
       kC,
       def,
       "a X {}\r\na Y {+}\r\na Z {1a}\r\n",
       {"L:a X {}", "E", "L:a Y {+}", "E", "L:a Z {1a}", "E"}},
      {"garbage_bytes",
       kC,
       def,
       std::string("\0\xff\x80 x\r\r\n", 8),
       {std::string("L:\0\xff\x80 x\r", 8), "E"}},
      {"response_fetch_literal",
       kR,
       def,
       "* 1 FETCH (BODY[] {5}\r\nhello)\r\n+ go\r\n",
       {"L:* 1 FETCH (BODY[] {5}|5s@18", "D:hello", "L:)", "E", "L:+ go", "E"}},
      {"line_too_long_then_next",
       kC,
       Small(),
       "a1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nb2 NOOP\r\n",
       {"X:LineTooLong:a1:ok", "L:b2 NOOP", "E"}},
      {"line_at_limit_with_crlf",
       kC,
       Small(),
       "a1 0123456789abc\r\n",
       {"L:a1 0123456789abc", "E"}},
      {"line_one_over_limit",
       kC,
       Small(),
       "a1 0123456789abcd\r\nb NOOP\r\n",
       {"X:LineTooLong:a1:ok", "L:b NOOP", "E"}},
      {"line_too_long_with_nonsync_literal_is_skipped",
       kC,
       Small(),
       "a1 APPEND INBOXXXXXXXXX {5+}\r\nz NOO\r\nb2 NOOP\r\n",
       {"X:LineTooLong:a1:ok", "L:b2 NOOP", "E"}},
      {"continuation_line_too_long_keeps_tag",
       kC,
       Small(),
       "a1 X {1}\r\nyzzzzzzzzzzzzzzzzzzzzzzzzzz\r\nb NOOP\r\n",
       {"L:a1 X {1}|1s@5", "D:y", "X:LineTooLong:a1:ok", "L:b NOOP", "E"}},
      {"sync_literal_too_large",
       kC,
       Small(),
       "a1 APPEND X {11}\r\nb2 NOOP\r\n",
       {"X:LiteralTooLarge:a1:ok", "L:b2 NOOP", "E"}},
      {"nonsync_literal_too_large_skipped_exactly",
       kC,
       Small(32),
       "a1 APPEND X {20+}\r\nz1 NOOP\r\nz2 NOOP\r\nzz more\r\nb4 NOOP\r\n",
       {"X:LiteralTooLarge:a1:ok", "L:b4 NOOP", "E"}},
      {"nonsync_too_large_then_more_literals_in_same_command",
       kC,
       Small(),
       "a1 X {12+}\r\nz1 NOOP\r\nzzz {3+}\r\nz\r\n\r\nb NOOP\r\n",
       {"X:LiteralTooLarge:a1:ok", "L:b NOOP", "E"}},
      {"nonsync_absurd_is_fatal",
       kC,
       Small(),
       "a1 X {161+}\r\nb NOOP\r\n",
       {"X:LiteralTooLarge:a1:fatal"}},
      {"response_literal_too_large_skipped",
       kR,
       Small(32),
       "* 1 FETCH (BODY[] {13}\r\n* 2 FETCH (\r\n)\r\n* 3 EXISTS\r\n",
       {"X:LiteralTooLarge:*:ok", "L:* 3 EXISTS", "E"}},
      {"bad_literal_header_sync",
       kC,
       def,
       "a1 X {123456789012345678901}\r\nb NOOP\r\n",
       {"X:BadLiteralHeader:a1:ok", "L:b NOOP", "E"}},
      {"overflowing_literal_header_sync",
       kC,
       def,
       "a1 X {99999999999999999999}\r\nb NOOP\r\n",
       {"X:BadLiteralHeader:a1:ok", "L:b NOOP", "E"}},
      {"bad_literal_header_nonsync_is_fatal",
       kC,
       def,
       "a1 X {99999999999999999999+}\r\nb NOOP\r\n",
       {"X:BadLiteralHeader:a1:fatal"}},
  };
}

void PrintTo(const FramerCase& c, std::ostream* os) { *os << c.name; }

class FramerCaseTest : public ::testing::TestWithParam<FramerCase> {};

TEST_P(FramerCaseTest, Whole) {
  const FramerCase& c = GetParam();
  Framer framer(c.mode, c.limits);
  Recorder rec;
  FeedChunks(framer, rec, {c.input});
  EXPECT_THAT(rec.events, ElementsAreArray(c.events));
}

TEST_P(FramerCaseTest, EverySplitPoint) {
  const FramerCase& c = GetParam();
  for (size_t i = 0; i <= c.input.size(); ++i) {
    Framer framer(c.mode, c.limits);
    Recorder rec;
    FeedChunks(framer, rec, {c.input.substr(0, i), c.input.substr(i)});
    EXPECT_THAT(rec.events, ElementsAreArray(c.events)) << "split at " << i;
  }
}

TEST_P(FramerCaseTest, EveryTwoSplitPoints) {
  const FramerCase& c = GetParam();
  const size_t n = c.input.size();
  for (size_t i = 0; i <= n; ++i) {
    for (size_t j = i; j <= n; ++j) {
      Framer framer(c.mode, c.limits);
      Recorder rec;
      FeedChunks(
          framer, rec,
          {c.input.substr(0, i), c.input.substr(i, j - i), c.input.substr(j)});
      ASSERT_THAT(rec.events, ElementsAreArray(c.events))
          << "splits at " << i << "," << j;
    }
  }
}

TEST_P(FramerCaseTest, ByteAtATime) {
  const FramerCase& c = GetParam();
  std::vector<std::string> chunks;
  for (char ch : c.input) chunks.push_back(std::string(1, ch));
  Framer framer(c.mode, c.limits);
  Recorder rec;
  FeedChunks(framer, rec, chunks);
  EXPECT_THAT(rec.events, ElementsAreArray(c.events));
}

TEST_P(FramerCaseTest, PauseAfterEveryEvent) {
  const FramerCase& c = GetParam();
  Framer framer(c.mode, c.limits);
  Recorder rec;
  rec.pause_every_event = true;
  absl::string_view rest = c.input;
  size_t calls = 0;
  while (!framer.fatal() && calls++ < 10 * c.input.size() + 10) {
    const size_t before = rec.events.size();
    const size_t used = framer.Feed(rest, rec);
    ASSERT_LE(used, rest.size());
    rest.remove_prefix(used);
    // Each call delivers at most one event since every callback pauses.
    ASSERT_LE(rec.events.size(), before + 1);
    if (rest.empty() && rec.events.size() == before) break;
  }
  EXPECT_THAT(rec.events, ElementsAreArray(c.events));
  if (!framer.fatal()) {
    EXPECT_TRUE(framer.at_command_start());
  }
}

INSTANTIATE_TEST_SUITE_P(All, FramerCaseTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<FramerCase>& info) {
                           return info.param.name;
                         });

TEST(FramerTest, FeedReturnsAllOrStopsAtFatal) {
  Framer framer(Framer::Mode::kCommands, Small());
  Recorder rec;
  const std::string head = "a1 X {161+}\r\n";
  const std::string input = head + "b NOOP\r\n";
  EXPECT_EQ(framer.Feed(input, rec), head.size());
  EXPECT_TRUE(framer.fatal());
  EXPECT_EQ(framer.Feed("c NOOP\r\n", rec), 0u);
  EXPECT_THAT(rec.messages[0], HasSubstr("literal too large"));
  framer.Reset();
  EXPECT_FALSE(framer.fatal());
  EXPECT_TRUE(framer.at_command_start());
  rec.events.clear();
  EXPECT_EQ(framer.Feed("c NOOP\r\n", rec), 8u);
  EXPECT_THAT(rec.events, ElementsAreArray({"L:c NOOP", "E"}));
}

TEST(FramerTest, LineTooLongMessageAndBoundedTailDetection) {
  Framer framer(Framer::Mode::kCommands, Small());
  Recorder rec;
  std::string big = "t9 " + std::string(100000, 'x');
  for (size_t i = 0; i < big.size(); i += 7) {
    framer.Feed(absl::string_view(big).substr(i, 7), rec);
  }
  EXPECT_TRUE(rec.events.empty());  // reported only once the LF arrives
  EXPECT_FALSE(framer.at_command_start());
  framer.Feed("\r\nb NOOP\r\n", rec);
  EXPECT_THAT(rec.events,
              ElementsAreArray({"X:LineTooLong:t9:ok", "L:b NOOP", "E"}));
  EXPECT_EQ(rec.messages[0], "line too long (limit 16 bytes)");
}

TEST(FramerTest, RejectLiteralReturnsToCommandStart) {
  Framer framer(Framer::Mode::kCommands, ParserLimits());
  Recorder rec;
  rec.reject_sync = true;
  rec.framer = &framer;
  EXPECT_EQ(framer.Feed("a1 APPEND X {5}\r\n", rec), 17u);
  EXPECT_TRUE(framer.at_command_start());
  framer.Feed("b1 NOOP\r\n", rec);
  EXPECT_THAT(rec.events,
              ElementsAreArray({"L:a1 APPEND X {5}|5s@12", "L:b1 NOOP", "E"}));
}

TEST(FramerTest, RejectNonSyncLiteralSkipsItsBytes) {
  Framer framer(Framer::Mode::kCommands, ParserLimits());
  Recorder rec;
  rec.reject_all = true;
  rec.framer = &framer;
  const std::string input =
      "a1 APPEND X {5+}\r\nb1 NO {2+}\r\nxy\r\nc1 NOOP\r\n";
  EXPECT_EQ(framer.Feed(input, rec), input.size());
  EXPECT_THAT(rec.events,
              ElementsAreArray({"L:a1 APPEND X {5+}|5n@12", "L:c1 NOOP", "E"}));
  EXPECT_TRUE(framer.at_command_start());
}

TEST(FramerTest, AtCommandStartTracksPartialState) {
  Framer framer(Framer::Mode::kCommands, ParserLimits());
  Recorder rec;
  EXPECT_TRUE(framer.at_command_start());
  framer.Feed("a1 NO", rec);
  EXPECT_FALSE(framer.at_command_start());
  framer.Feed("OP\r\na2 LOGIN {2}\r\nx", rec);
  EXPECT_FALSE(framer.at_command_start());
  framer.Feed("y\r\n", rec);
  EXPECT_TRUE(framer.at_command_start());
}

TEST(FramerTest, ZeroCopyWhenWholeLineInInput) {
  struct V : Framer::Visitor {
    const char* seen = nullptr;
    bool OnLine(absl::string_view line, const LiteralHeader*) override {
      seen = line.data();
      return true;
    }
    bool OnLiteralData(absl::string_view) override { return true; }
    bool OnEnd() override { return true; }
    bool OnError(const FrameError&) override { return true; }
  } v;
  Framer framer(Framer::Mode::kCommands, ParserLimits());
  const std::string input = "a1 NOOP\r\n";
  framer.Feed(input, v);
  EXPECT_EQ(v.seen, input.data());
}

TEST(LiteralHeaderTest, Parse) {
  LiteralHeader h;
  EXPECT_EQ(ParseTrailingLiteralHeader("x {18446744073709551615}", &h),
            LiteralHeaderParse::kOk);
  EXPECT_EQ(h.size, 18446744073709551615ull);
  EXPECT_EQ(ParseTrailingLiteralHeader("x {18446744073709551616}", &h),
            LiteralHeaderParse::kBad);
  EXPECT_EQ(ParseTrailingLiteralHeader("x {0000000000000000000001}", &h),
            LiteralHeaderParse::kBad);  // 22 digits
  EXPECT_EQ(ParseTrailingLiteralHeader("{7}", &h), LiteralHeaderParse::kOk);
  EXPECT_EQ(h.header_offset, 0u);
  EXPECT_EQ(ParseTrailingLiteralHeader("~{7+}", &h), LiteralHeaderParse::kOk);
  EXPECT_TRUE(h.binary);
  EXPECT_FALSE(h.synchronizing);
  EXPECT_EQ(ParseTrailingLiteralHeader("7}", &h), LiteralHeaderParse::kNone);
  EXPECT_EQ(ParseTrailingLiteralHeader("{7} ", &h), LiteralHeaderParse::kNone);
  EXPECT_EQ(ParseTrailingLiteralHeader("{-7}", &h), LiteralHeaderParse::kNone);
}

}  // namespace
}  // namespace pimap::imap
