// libFuzzer target: the IMAP framer and ResponseAssembler on store responses
// (the Dovecot side, the Framer's response mode). Shares the checking driver of
// the bounded sanitizer test (tests/core/imap/ fuzz_driver.h): the first 8
// bytes choose chunking, pauses and parser limits; the driver aborts on a
// broken invariant (every Feed makes progress, lines and literals within the
// limits, literal bytes as announced, nesting within max_depth, only
// InvalidArgument refusals).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tests/core/imap/fuzz_driver.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fz = pimap::imap::fuzz;
  const uint64_t seed = pimap::fuzz::TakeSeed(&data, &size);
  fz::Choices choices(seed);
  pimap::imap::ParserLimits limits;
  if (choices.Below(2) == 0) {
    limits.max_line_bytes = 4 + choices.Below(60);
    limits.max_literal_bytes = choices.Below(40);
    limits.max_depth = 1 + static_cast<int>(choices.Below(6));
  }
  fz::Stats stats;
  fz::RunOne<pimap::imap::ResponseAssembler>(
      absl::string_view(reinterpret_cast<const char*>(data), size),
      pimap::imap::Framer::Mode::kResponses, limits, choices, stats);
  return 0;
}
