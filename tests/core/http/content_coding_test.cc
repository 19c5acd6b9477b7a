// Tests for core/http/content_coding.h: Accept-Encoding negotiation,
// Content-Encoding parsing, response bursts round-tripped through DecodeBody
// and through zlib/zstd's own streaming decoders, and the bounds that keep a
// compression bomb from being inflated (or allocated) past max_decoded.
#include "core/http/content_coding.h"

#include <zlib.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

// The largest single operator-new request while tracking is on: a decoder
// must never size a buffer from what a body claims.
namespace {
std::atomic<bool> g_track{false};
std::atomic<size_t> g_largest{0};
}  // namespace

void* operator new(size_t n) {
  if (g_track.load(std::memory_order_relaxed) &&
      n > g_largest.load(std::memory_order_relaxed)) {
    g_largest.store(n, std::memory_order_relaxed);
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) std::abort();
  return p;
}
// GCC cannot tell that operator new above is malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace pimap::http {
namespace {

constexpr size_t kMiB = 1024 * 1024;
// Short names for the tables.
constexpr ContentCoding I = ContentCoding::kIdentity;
constexpr ContentCoding G = ContentCoding::kGzip;
constexpr ContentCoding Z = ContentCoding::kZstd;

std::string GzipOf(absl::string_view data) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&s, data.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = data.size();
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = out.size();
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// One zstd frame, with a checksum (so that corruption is always detected).
std::string ZstdOf(absl::string_view data) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n =
      ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  ZSTD_freeCCtx(cctx);
  return out;
}

// `data` in `coding`, made by zlib/zstd themselves.
std::string Compressed(ContentCoding coding, absl::string_view data) {
  if (coding == ContentCoding::kGzip) return GzipOf(data);
  if (coding == ContentCoding::kZstd) return ZstdOf(data);
  return std::string(data);
}

absl::StatusCode Code(ContentCoding coding, absl::string_view body,
                      size_t max_decoded) {
  return DecodeBody(coding, body, max_decoded).status().code();
}

std::string Random(size_t size, unsigned seed) {
  std::string out(size, '\0');
  for (char& c : out)
    c = static_cast<char>((seed = seed * 1103515245 + 12345) >> 16);
  return out;
}

// zlib's own streaming inflate (gzip wrapper), fed piece by piece.
class Inflater {
 public:
  Inflater() { EXPECT_EQ(inflateInit2(&s_, 31), Z_OK); }
  ~Inflater() { inflateEnd(&s_); }
  // Returns the last inflate() result.
  int Feed(absl::string_view in) {
    s_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s_.avail_in = in.size();
    int ret = Z_OK;
    do {
      char buf[4096];
      s_.next_out = reinterpret_cast<Bytef*>(buf);
      s_.avail_out = sizeof(buf);
      ret = inflate(&s_, Z_NO_FLUSH);
      out_.append(buf, sizeof(buf) - s_.avail_out);
    } while (ret == Z_OK && (s_.avail_in > 0 || s_.avail_out == 0));
    return ret;
  }
  const std::string& out() const { return out_; }

 private:
  z_stream s_{};
  std::string out_;
};

// zstd's own streaming decoder. Returns the last ZSTD_decompressStream hint.
class ZstdStream {
 public:
  ZstdStream() : d_(ZSTD_createDCtx()) {}
  ~ZstdStream() { ZSTD_freeDCtx(d_); }
  size_t Feed(absl::string_view data) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    size_t ret = 0;
    for (;;) {
      char buf[4096];
      ZSTD_outBuffer o{buf, sizeof(buf), 0};
      ret = ZSTD_decompressStream(d_, &o, &in);
      EXPECT_FALSE(ZSTD_isError(ret)) << ZSTD_getErrorName(ret);
      if (ZSTD_isError(ret)) return ret;
      out_.append(buf, o.pos);
      if (in.pos == in.size && o.pos < o.size) return ret;
    }
  }
  const std::string& out() const { return out_; }

 private:
  ZSTD_DCtx* d_;
  std::string out_;
};

// A burst of P-IMAP events: `lines` untagged responses.
std::string ImapBurst(int seed, int lines) {
  std::string out;
  for (int i = 0; i < lines; ++i) {
    int n = seed * 100 + i;
    if (i % 5 == 4) {
      absl::StrAppend(&out, "* ", n + 1, " EXISTS\r\n");
    } else {
      absl::StrAppend(&out, "* ", n, " FETCH (UID ", 4000 + n,
                      " FLAGS (\\Seen))\r\n");
    }
  }
  return out;
}

ContentCoding Negotiate(const char* value) {
  if (value == nullptr) return NegotiateResponseCoding(nullptr);
  std::string v(value);
  return NegotiateResponseCoding(&v);
}

TEST(ContentCodingTest, NegotiationTable) {
  // A table, several cases a line.
  struct Case {
    const char* header;
    ContentCoding want;
  } cases[] = {
      // clang-format off
      // Absent or empty: identity. Names are case-insensitive.
      {nullptr, I}, {"", I}, {"gzip", G}, {"x-gzip", G}, {"GZip", G},
      {"ZSTD", Z}, {"br, deflate", I}, {" , ,gzip,, ", G},
      // Equal weights: zstd, then gzip, then identity.
      {"gzip, deflate, br, zstd", Z}, {"gzip, deflate, br", G},
      {"gzip;q=0.5, zstd;q=0.5, identity;q=0.5", Z},
      // Weights; q=0 excludes; a coding listed twice takes its highest.
      {"gzip;q=1.0, zstd;q=0.5", G}, {"gzip;q=0.4, zstd;Q=0.5", Z},
      {"gzip ; q=0.8 , zstd ; q = 0.9", Z}, {"zstd;q=0, gzip", G},
      {"zstd;q=0, gzip;q=0", I}, {"zstd;q=0, zstd;q=1", Z},
      // Wildcard; nothing acceptable ("*;q=0", "identity;q=0"): identity.
      {"*", Z}, {"*;q=0.5, gzip", G}, {"*;q=0", I}, {"*;q=0, zstd", Z},
      {"*;q=0, identity", I}, {"identity", I}, {"identity;q=0", I},
      {"identity;q=0, gzip;q=0.1", G}, {"identity;q=0, *", Z},
      // Listed identity competes; unlisted ranks below any listed coding.
      {"gzip;q=0.5, identity", I}, {"gzip;q=0.001", G},
      // A malformed q drops its element; other parameters mean nothing.
      {"gzip;q=2", I}, {"gzip;q=abc, zstd;q=inf", I}, {"gzip;q=0.1234", I},
      {"gzip;level=9", G}};
  // clang-format on
  for (const Case& c : cases) {
    EXPECT_EQ(Negotiate(c.header), c.want)
        << (c.header == nullptr ? "(absent)" : c.header);
  }
}

TEST(ContentCodingTest, ParseContentEncoding) {
  EXPECT_EQ(*ParseContentEncoding(nullptr), ContentCoding::kIdentity);
  for (auto [value, want] : {std::pair("", I), std::pair("identity", I),
                             std::pair("gzip", G), std::pair("X-GZIP", G),
                             std::pair(" zstd ", Z), std::pair("gzip,", G)}) {
    std::string v(value);
    absl::StatusOr<ContentCoding> got = ParseContentEncoding(&v);
    ASSERT_TRUE(got.ok()) << value;
    EXPECT_EQ(*got, want) << value;
  }
  for (ContentCoding c : {I, G, Z}) {
    std::string name(ContentCodingName(c));  // "identity", "gzip", "zstd"
    EXPECT_EQ(*ParseContentEncoding(&name), c);
  }
  for (const char* bad : {"br", "deflate", "compress", "*", "gzip, zstd",
                          "gzip, gzip", "gzip;q=1"}) {
    std::string v(bad);
    EXPECT_EQ(ParseContentEncoding(&v).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

// Encodes `bursts` as one response; checks every prefix with the streaming
// decoder as it goes, then the whole body with DecodeBody.
void RoundTrip(ContentCoding coding, const std::vector<std::string>& bursts,
               ShardCompressor* shared) {
  ResponseEncoder enc(coding, shared);
  EXPECT_EQ(enc.coding(), coding);
  Inflater inflater;
  ZstdStream zstd;
  std::string body, plain;
  for (const std::string& burst : bursts) {
    std::string piece = enc.Encode(burst);
    body += piece;
    plain += burst;
    if (coding == ContentCoding::kGzip) {
      EXPECT_EQ(inflater.Feed(piece),
                burst.empty() && piece.empty() ? Z_BUF_ERROR : Z_OK);
      EXPECT_EQ(inflater.out(), plain);
    } else if (coding == ContentCoding::kZstd) {
      if (!piece.empty()) {
        EXPECT_EQ(zstd.Feed(piece), 0u);  // ends on a frame boundary
      }
      EXPECT_EQ(zstd.out(), plain);
    }
  }
  std::string tail = enc.Finish();
  body += tail;
  EXPECT_EQ(enc.bytes_in(), plain.size());
  EXPECT_EQ(enc.bytes_out(), body.size());
  EXPECT_EQ(enc.Finish(), "");
  if (coding == ContentCoding::kGzip) {
    EXPECT_EQ(inflater.Feed(tail), Z_STREAM_END);
    EXPECT_EQ(inflater.out(), plain);
    Inflater whole;  // the whole body at once, windowBits 31
    EXPECT_EQ(whole.Feed(body), Z_STREAM_END);
    EXPECT_EQ(whole.out(), plain);
  } else if (coding == ContentCoding::kZstd) {
    EXPECT_EQ(tail.empty(), !plain.empty());
    ZstdStream whole;
    EXPECT_EQ(whole.Feed(body), 0u);
    EXPECT_EQ(whole.out(), plain);
  } else {
    EXPECT_EQ(body, plain);
  }
  absl::StatusOr<std::string> decoded = DecodeBody(coding, body, plain.size());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, plain);
}

std::vector<std::string> SampleBursts() {
  std::string random = Random(100000, 12345);
  return {ImapBurst(1, 50), "",     "* 7 EXISTS\r\n",
          ImapBurst(2, 3),  random, std::string(300000, 'z'),
          ImapBurst(3, 50)};
}

TEST(ContentCodingTest, RoundTripsEveryCoding) {
  ShardCompressor shared;
  for (ContentCoding c : {I, G, Z}) {
    SCOPED_TRACE(ContentCodingName(c));
    RoundTrip(c, SampleBursts(), &shared);
    RoundTrip(c, {}, &shared);  // no burst at all: still a valid body
    RoundTrip(c, {""}, &shared);
  }
}

TEST(ContentCodingTest, OtherLevelsAndWindows) {
  ShardCompressor shared({.zstd_level = 19,
                          .zstd_window_log = 10,
                          .gzip_level = 1,
                          .gzip_window_bits = 9,
                          .gzip_mem_level = 1});
  RoundTrip(G, SampleBursts(), &shared);
  RoundTrip(Z, SampleBursts(), &shared);
}

TEST(ContentCodingTest, ResponsesInterleavedOnOneShardStayIndependent) {
  ShardCompressor shared;
  ResponseEncoder a(G, &shared), b(G, &shared);
  ResponseEncoder c(Z, &shared), d(Z, &shared);
  std::string ba, bb, bc, bd, pa, pb;
  for (int i = 0; i < 20; ++i) {
    std::string x = ImapBurst(i, 7), y = ImapBurst(i + 50, 11);
    ba += a.Encode(x), bb += b.Encode(y), bc += c.Encode(x), bd += d.Encode(y);
    pa += x, pb += y;
  }
  ba += a.Finish(), bb += b.Finish(), bc += c.Finish(), bd += d.Finish();
  EXPECT_EQ(*DecodeBody(G, ba, kMiB), pa);
  EXPECT_EQ(*DecodeBody(G, bb, kMiB), pb);
  EXPECT_EQ(*DecodeBody(Z, bc, kMiB), pa);
  EXPECT_EQ(*DecodeBody(Z, bd, kMiB), pb);
}

TEST(ContentCodingTest, DecodeBoundIsExact) {
  std::string data(5000, 'q');
  for (ContentCoding c : {I, G, Z}) {
    std::string body = Compressed(c, data);
    EXPECT_EQ(*DecodeBody(c, body, 5000), data);
    EXPECT_EQ(Code(c, body, 4999), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(*DecodeBody(c, Compressed(c, ""), 0), "");
  }
}

TEST(ContentCodingTest, BombsStopAtTheBound) {
  const std::string zeros(64 * kMiB, '\0');
  const std::string gz = GzipOf(zeros), zs = ZstdOf(zeros);
  for (const auto& [coding, body] : {std::pair(G, gz), std::pair(Z, zs)}) {
    SCOPED_TRACE(ContentCodingName(coding));
    g_largest = 0;
    g_track = true;
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::string> got = DecodeBody(coding, body, kMiB);
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    g_track = false;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_LE(g_largest.load(), 4 * kMiB);
    EXPECT_LT(ms, 1000);  // ~1 MiB of work, not 64
    std::printf(
        "[ figures ] %s bomb: %zu -> 64 MiB, refused at 1 MiB in "
        "%.2f ms, largest new %zu bytes\n",
        std::string(ContentCodingName(coding)).c_str(), body.size(), ms,
        g_largest.load());
  }
}

// A zstd frame header and one RLE block of 16 'a' (RFC 8878 §3.1.1).
std::string ZstdFrame(std::string header) {
  return std::string("\x28\xb5\x2f\xfd", 4) + header +
         std::string("\x83\0\0a", 4);  // last, RLE, size 16
}

TEST(ContentCodingTest, ZstdClaimsAreNotTrusted) {
  const std::string four_gib("\x00\x00\x00\x00\x01\x00\x00\x00", 8);
  // Single segment, content size 4 GiB: the window would be 4 GiB.
  EXPECT_EQ(Code(Z, ZstdFrame("\xe0" + four_gib), kMiB),
            absl::StatusCode::kResourceExhausted);
  // A 1 KiB window that claims 4 GiB of content: no allocation from it, and
  // the short content is corrupt.
  g_largest = 0;
  g_track = true;
  absl::StatusCode code =
      Code(Z, ZstdFrame(std::string("\xc0\0", 2) + four_gib), kMiB);
  g_track = false;
  EXPECT_EQ(code, absl::StatusCode::kInvalidArgument);
  EXPECT_LE(g_largest.load(), 64 * 1024u);
  // A 128 MiB window (no content size): over the 8 MiB cap.
  EXPECT_EQ(Code(Z, ZstdFrame(std::string("\0\x88", 2)), kMiB),
            absl::StatusCode::kResourceExhausted);
  // 8 MiB is allowed.
  EXPECT_EQ(*DecodeBody(Z, ZstdFrame(std::string("\x00\x68", 2)), kMiB),
            std::string(16, 'a'));
}

TEST(ContentCodingTest, ConcatenatedMembersFramesAndSkippableFrames) {
  EXPECT_EQ(
      *DecodeBody(G, GzipOf("hello ") + GzipOf("") + GzipOf("world"), 100),
      "hello world");
  const std::string skippable("\x5a\x2a\x4d\x18\x03\x00\x00\x00xyz", 11);
  EXPECT_EQ(*DecodeBody(Z, ZstdOf("hello ") + skippable + ZstdOf("world"), 100),
            "hello world");
  EXPECT_EQ(*DecodeBody(Z, skippable, 100), "");
  // The bound counts every member/frame.
  for (ContentCoding c : {G, Z}) {
    EXPECT_EQ(Code(c, Compressed(c, "hello ") + Compressed(c, "world"), 10),
              absl::StatusCode::kResourceExhausted);
  }
}

TEST(ContentCodingTest, CorruptTruncatedAndTrailingGarbage) {
  const std::string data = ImapBurst(9, 40);
  for (ContentCoding c : {G, Z}) {
    SCOPED_TRACE(ContentCodingName(c));
    const std::string body = Compressed(c, data);
    auto code = [&](absl::string_view b) { return Code(c, b, kMiB); };
    ASSERT_EQ(*DecodeBody(c, body, kMiB), data);
    for (size_t n = 0; n < body.size(); ++n) {
      ASSERT_EQ(code(body.substr(0, n)), absl::StatusCode::kInvalidArgument)
          << "prefix " << n;
    }
    EXPECT_EQ(code(body + "garbage"), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(code(body + std::string(8, '\0')),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(code(body + body.substr(0, 6)),
              absl::StatusCode::kInvalidArgument);
    std::string flipped = body;
    flipped[body.size() / 2] ^= 0x20;
    EXPECT_EQ(code(flipped), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(code("plain text, not compressed"),
              absl::StatusCode::kInvalidArgument);
  }
}

// Figures for the report: state held between bursts and the ratio on P-IMAP
// event bursts (50 lines each, every burst compressed on its own).
TEST(ContentCodingTest, StateAndRatioFigures) {
  ShardCompressor shared;
  for (ContentCoding c : {G, Z}) {
    ResponseEncoder enc(c, &shared);
    uint64_t one_line = 0;
    for (int i = 0; i < 20; ++i) {
      enc.Encode(ImapBurst(i, 50));
      if (i == 0) one_line = enc.Encode("* 124 EXISTS\r\n").size();
    }
    enc.Finish();
    std::printf(
        "[ figures ] %s: 20 bursts of 50 lines: %llu -> %llu bytes "
        "(%.1f%%); one 14-byte line -> %llu bytes\n",
        std::string(ContentCodingName(c)).c_str(),
        static_cast<unsigned long long>(enc.bytes_in()),
        static_cast<unsigned long long>(enc.bytes_out()),
        100.0 * enc.bytes_out() / enc.bytes_in(),
        static_cast<unsigned long long>(one_line));
    EXPECT_LT(enc.bytes_out() * 2, enc.bytes_in());
  }
  std::printf(
      "[ figures ] per response between bursts: sizeof(ResponseEncoder)"
      " %zu (gzip CRC+length 8); shard: zstd CCtx %zu, deflate %zu\n",
      sizeof(ResponseEncoder), shared.zstd_state_bytes(),
      shared.deflate_state_bytes());
  ResponseEncoder(Z, &shared).Encode(Random(4 * kMiB, 7));
  std::printf("[ figures ] zstd CCtx after a 4 MiB burst: %zu\n",
              shared.zstd_state_bytes());
  EXPECT_LT(shared.zstd_state_bytes(), 2 * kMiB);
}

}  // namespace
}  // namespace pimap::http
