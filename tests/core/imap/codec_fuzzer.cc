// libFuzzer entry point for the codec (built only with -DPIMAP_LIBFUZZER=ON
// and clang). The first 8 bytes seed chunking/pausing/limits choices.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tests/core/imap/fuzz_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t seed = 0;
  if (size >= sizeof(seed)) {
    std::memcpy(&seed, data, sizeof(seed));
    data += sizeof(seed);
    size -= sizeof(seed);
  }
  pimap::imap::fuzz::Stats stats;
  pimap::imap::fuzz::RunInput(
      absl::string_view(reinterpret_cast<const char*>(data), size), seed,
      stats);
  return 0;
}
