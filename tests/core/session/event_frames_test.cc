// EventFrames: XZSTDDICT / XZSTDEVENTS answers and the framing of pushed
// bursts with the shipped dictionary.
#include "core/session/event_frames.h"

#include <zstd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/http/content_coding.h"
#include "core/http/event_dictionary.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

imap::Command Cmd(std::string tag, std::string name,
                  std::vector<std::string> atoms = {}) {
  imap::Command c;
  c.tag = std::move(tag);
  c.name = std::move(name);
  for (std::string& a : atoms) {
    imap::Arg arg;
    arg.value = std::move(a);
    c.args.push_back(std::move(arg));
  }
  return c;
}

class EventFramesTest : public ::testing::Test {
 protected:
  EventFramesTest() {
    compressor_.set_event_dictionary(http::EventDictionary::Default());
  }
  uint32_t id() const { return compressor_.event_dictionary()->id(); }
  http::ShardCompressor compressor_;
};

TEST_F(EventFramesTest, OffWithoutADictionary) {
  http::ShardCompressor bare;
  EventFrames frames(&bare);
  EXPECT_FALSE(frames.available());
  EXPECT_EQ(frames.Capability(), "");
  EXPECT_FALSE(frames.Execute(Cmd("d", "XZSTDDICT")).has_value());
  EXPECT_EQ(frames.Frame("* 1 EXISTS\r\n"), "* 1 EXISTS\r\n");
}

TEST_F(EventFramesTest, DictionaryIsFetchedAsALiteral) {
  EventFrames frames(&compressor_);
  EXPECT_EQ(frames.Capability(), absl::StrCat("XZSTDEVENTS=", id()));
  std::optional<std::string> out = frames.Execute(Cmd("d", "XZSTDDICT"));
  ASSERT_TRUE(out.has_value());
  const std::string& dict = std::string(compressor_.event_dictionary()->bytes());
  EXPECT_EQ(*out, absl::StrCat("* XZSTDDICT ", id(), " ~{", dict.size(),
                               "}\r\n", dict, "\r\nd OK XZSTDDICT completed\r\n"));
  out = frames.Execute(Cmd("d2", "XZSTDDICT", {"12"}));
  EXPECT_THAT(*out, StartsWith(absl::StrCat("d2 NO [XZSTDDICT ", id(), "]")));
}

TEST_F(EventFramesTest, EventsAreFramedOnlyWhenAskedWithTheCurrentId) {
  EventFrames frames(&compressor_);
  std::string burst;
  for (int i = 0; i < 6; ++i) {
    burst += absl::StrCat("* ", 1200 + i, " FETCH (UID ", 88230 + i,
                          " FLAGS (\\Seen \\Flagged))\r\n");
  }
  EXPECT_EQ(frames.Frame(burst), burst);
  EXPECT_THAT(*frames.Execute(Cmd("z", "XZSTDEVENTS", {"1"})),
              StartsWith(absl::StrCat("z NO [XZSTDDICT ", id(), "]")));
  EXPECT_THAT(*frames.Execute(Cmd("z", "XZSTDEVENTS")), StartsWith("z BAD"));
  EXPECT_EQ(frames.Frame(burst), burst);
  EXPECT_THAT(*frames.Execute(Cmd("z", "XZSTDEVENTS", {absl::StrCat(id())})),
              StartsWith(absl::StrCat("z OK [XZSTDDICT ", id(), "]")));

  const std::string framed = frames.Frame(burst);
  ASSERT_THAT(framed, StartsWith("* Z ~{"));
  const size_t open = framed.find('{'), close = framed.find('}');
  size_t n = 0;
  ASSERT_TRUE(absl::SimpleAtoi(framed.substr(open + 1, close - open - 1), &n));
  const std::string frame = framed.substr(close + 3, n);
  EXPECT_EQ(framed.size(), close + 3 + n + 2);
  EXPECT_TRUE(absl::EndsWith(framed, "\r\n"));
  const absl::string_view dict = compressor_.event_dictionary()->bytes();
  std::string plain(4096, '\0');
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  const size_t got = ZSTD_decompress_usingDict(dctx, plain.data(), plain.size(),
                                               frame.data(), frame.size(),
                                               dict.data(), dict.size());
  ZSTD_freeDCtx(dctx);
  ASSERT_FALSE(ZSTD_isError(got));
  plain.resize(got);
  EXPECT_EQ(plain, burst);

  // A lone short event would grow in a frame: it goes plain.
  EXPECT_EQ(frames.Frame("* 1235 EXISTS\r\n"), "* 1235 EXISTS\r\n");

  EXPECT_THAT(*frames.Execute(Cmd("z", "XZSTDEVENTS", {"off"})),
              StartsWith("z OK"));
  EXPECT_EQ(frames.Frame(burst), burst);
}

}  // namespace
}  // namespace pimap::session
