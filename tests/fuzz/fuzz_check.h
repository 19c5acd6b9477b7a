// What the libFuzzer targets share: FUZZ_CHECK (an invariant that aborts with
// its place and text, so libFuzzer saves the input) and TakeSeed (the first 8
// bytes of an input as the seed of a target's choices).
#ifndef PIMAP_TESTS_FUZZ_FUZZ_CHECK_H_
#define PIMAP_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define FUZZ_CHECK(cond)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                  \
      std::abort();                                                   \
    }                                                                 \
  } while (0)

namespace pimap::fuzz {

// The first 8 bytes (when there are that many) as a seed; they leave the input.
inline uint64_t TakeSeed(const uint8_t** data, size_t* size) {
  uint64_t seed = 0;
  if (*size >= sizeof(seed)) {
    std::memcpy(&seed, *data, sizeof(seed));
    *data += sizeof(seed);
    *size -= sizeof(seed);
  }
  return seed;
}

}  // namespace pimap::fuzz

#endif  // PIMAP_TESTS_FUZZ_FUZZ_CHECK_H_
