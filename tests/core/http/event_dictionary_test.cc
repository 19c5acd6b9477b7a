// The event dictionary and dictionary frames: the shipped dictionary loads,
// frames decode with it alone (as a device would, or `zstd -D`), and carry
// its id.
#include "core/http/event_dictionary.h"

#include <zstd.h>

#include <string>

#include "core/http/content_coding.h"
#include "gtest/gtest.h"

namespace pimap::http {
namespace {

std::string DecodeWith(const EventDictionary& d, const std::string& frame) {
  std::string out(1 << 16, '\0');
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  const size_t n =
      ZSTD_decompress_usingDict(dctx, out.data(), out.size(), frame.data(),
                                frame.size(), d.bytes().data(), d.bytes().size());
  ZSTD_freeDCtx(dctx);
  if (ZSTD_isError(n)) return std::string("error: ") + ZSTD_getErrorName(n);
  out.resize(n);
  return out;
}

TEST(EventDictionaryTest, TheShippedDictionaryLoadsWithItsId) {
  std::shared_ptr<const EventDictionary> d = EventDictionary::Default();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->id(), 1885957377u);
  EXPECT_GT(d->bytes().size(), 1000u);
}

TEST(EventDictionaryTest, GarbageIsNotADictionary) {
  EXPECT_FALSE(EventDictionary::Load("not a dictionary at all").ok());
  EXPECT_FALSE(EventDictionary::Load("").ok());
}

TEST(EventDictionaryTest, FramesDecodeWithTheDictionaryAloneAndAreSmaller) {
  std::shared_ptr<const EventDictionary> d = EventDictionary::Default();
  ASSERT_NE(d, nullptr);
  ShardCompressor compressor;
  const std::string bursts[] = {
      "* 1234 EXISTS\r\n",
      "* 1201 FETCH (UID 88231 FLAGS (\\Seen \\Flagged))\r\n"
      "* 1202 FETCH (UID 88232 FLAGS (\\Seen))\r\n",
      "* 77 EXPUNGE\r\n* 76 EXPUNGE\r\n",
  };
  size_t plain = 0, framed = 0;
  for (const std::string& burst : bursts) {
    std::string frame;
    compressor.AppendZstdDictFrame(*d, burst, &frame);
    EXPECT_EQ(ZSTD_getDictID_fromFrame(frame.data(), frame.size()), d->id());
    EXPECT_EQ(DecodeWith(*d, frame), burst);
    plain += burst.size();
    framed += frame.size();
  }
  EXPECT_LT(framed, plain);
  // Without the dictionary a frame does not decode.
  std::string frame;
  compressor.AppendZstdDictFrame(*d, bursts[1], &frame);
  std::string out(1024, '\0');
  EXPECT_TRUE(ZSTD_isError(
      ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size())));
}

}  // namespace
}  // namespace pimap::http
