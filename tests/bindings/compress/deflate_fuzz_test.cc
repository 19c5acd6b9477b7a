// Bounded, seeded fuzz run of DeflateTransport's inflating side under
// ASan/UBSan: valid raw-deflate streams of IMAP-like text (some of them
// bombs), the same mutated, and random bytes, fed in random pieces while the
// handler randomly pauses, resumes or closes. Invariants: no piece larger
// than kChunk, nothing delivered while paused, and for valid streams exactly
// zlib's own output. Deterministic; PIMAP_FUZZ_ITERATIONS overrides the count.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "bindings/compress/deflate_transport.h"
#include "gtest/gtest.h"
#include "tests/bindings/fake_transport.h"

namespace pimap::compress {
namespace {

using ::pimap::testing::FakeInner;

std::string Deflate(const std::string& text, int level) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  return out;
}

class Handler final : public engine::TransportHandler {
 public:
  explicit Handler(std::mt19937_64* rng) : rng_(rng) {}
  void OnTransportData(absl::string_view data) override {
    if (data.size() > DeflateTransport::kChunk) std::abort();
    if (paused) std::abort();  // nothing may arrive while reading is off
    got.append(data.data(), data.size());
    const uint64_t r = (*rng_)() % 16;
    if (r == 0 && transport != nullptr) {
      paused = true;
      transport->SetReading(false);
    } else if (r == 1 && transport != nullptr) {
      transport->Close();
      transport = nullptr;
    }
  }
  void OnTransportClosed(absl::Status) override {
    closed = true;
    transport = nullptr;
  }
  DeflateTransport* transport = nullptr;
  std::string got;
  bool paused = false;
  bool closed = false;

 private:
  std::mt19937_64* rng_;
};

TEST(DeflateFuzzTest, InflatingSideHoldsItsInvariants) {
  int iterations = 10000;
  if (const char* env = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::atoi(env);
  }
  std::mt19937_64 rng(20261206);
  static const char* const kWords[] = {
      "a1 ",      "UID FETCH ",    "1:* ", "(FLAGS) ",    "IDLE\r\n",
      "DONE\r\n", "{5+}\r\nhello", "\r\n", "\"quoted\" ", "BODY[] "};
  for (int i = 0; i < iterations; ++i) {
    std::string text;
    const int words = static_cast<int>(rng() % 200);
    for (int w = 0; w < words; ++w) text += kWords[rng() % 10];
    if (rng() % 8 == 0)
      text.append(static_cast<size_t>(rng() % (1 << 20)), 'A');
    std::string wire = Deflate(text, static_cast<int>(rng() % 10));
    const uint64_t kind = rng() % 4;
    bool valid = true;
    if (kind == 1 && !wire.empty()) {  // mutated
      for (int m = 0; m < 1 + static_cast<int>(rng() % 4); ++m) {
        wire[rng() % wire.size()] ^= static_cast<char>(1 + rng() % 255);
      }
      valid = false;
    } else if (kind == 2) {  // random bytes
      wire.resize(rng() % 512);
      for (char& c : wire) c = static_cast<char>(rng());
      valid = false;
    }
    FakeInner inner;
    Handler handler(&rng);
    auto* t = new DeflateTransport(&inner, DeflateConfig{}, nullptr);
    handler.transport = t;
    t->SetHandler(&handler);
    size_t at = 0;
    while (at < wire.size() && !handler.closed &&
           handler.transport != nullptr) {
      const size_t n = std::min(wire.size() - at, 1 + rng() % 4096);
      inner.Feed(absl::string_view(wire).substr(at, n));
      at += n;
      while (handler.paused && handler.transport != nullptr) {
        handler.paused = false;
        handler.transport->SetReading(true);
      }
    }
    if (valid && !handler.closed && handler.transport != nullptr) {
      ASSERT_EQ(handler.got.size(), text.size()) << "iteration " << i;
      ASSERT_EQ(handler.got, text) << "iteration " << i;
    }
    if (handler.transport != nullptr) handler.transport->Abort();
  }
}

}  // namespace
}  // namespace pimap::compress
