// The event dictionary and dictionary frames: the shipped dictionary loads,
// frames decode with it alone (as a device would, or `zstd -D`), and their
// header is the smallest zstd has (no dictionary id, no checksum).
#include "core/http/event_dictionary.h"

#include <zstd.h>

#include <cstdint>
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
  EXPECT_EQ(d->id(), 1208202602u);
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
    // The device named the dictionary with XZSTDEVENTS: not repeated here.
    EXPECT_EQ(ZSTD_getDictID_fromFrame(frame.data(), frame.size()), 0u);
    // RFC 8878 §3.1.1.1.1, the descriptor after the 4-byte magic: single
    // segment (no window descriptor byte), a 1-byte content size (flag 0,
    // below 256 bytes), no checksum, no dictionary id.
    ASSERT_GT(frame.size(), 6u);
    const uint8_t descriptor = static_cast<uint8_t>(frame[4]);
    EXPECT_EQ(descriptor & 0xc0, 0) << "content size field wider than 1 byte";
    EXPECT_EQ(descriptor & 0x20, 0x20) << "not single segment";
    EXPECT_EQ(descriptor & 0x04, 0) << "checksum";
    EXPECT_EQ(descriptor & 0x03, 0) << "dictionary id";
    EXPECT_EQ(static_cast<uint8_t>(frame[5]), burst.size());
    EXPECT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()),
              burst.size());
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
