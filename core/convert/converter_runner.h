// Runs one external converter (an operator-configured program, e.g.
// ImageMagick) on one input, without a shell: stdin is the input, stdout the
// result. Bounded: a wall-clock limit (the converter and everything it
// started are killed on timeout), an output limit (killed as soon as it
// writes past it), an address-space limit (RLIMIT_AS, set in the child before
// exec) and a CPU-time limit. The child is always reaped before the call
// returns: no zombies, whatever the converter does.
//
// Hazard: the call blocks for up to the wall-clock limit. It must never run
// on a shard's thread (the ring would stall): Transcoder (transcoder.h) runs
// it on its own worker thread.
#ifndef PIMAP_CORE_CONVERT_CONVERTER_RUNNER_H_
#define PIMAP_CORE_CONVERT_CONVERTER_RUNNER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::convert {

struct RunLimits {
  int64_t timeout_ms = 10000;
  size_t max_output_bytes = 16 << 20;
  uint64_t max_memory_bytes = 1ull << 30;  // RLIMIT_AS; 0: unlimited
};

// Runs `argv` (argv[0] an absolute path; no PATH search, no shell) with an
// empty environment but PATH=/usr/bin:/bin, stdin = `input`. The result is
// what it wrote to stdout, when it exited 0 within the limits. Errors, each
// with a message fit for the device's NO:
//   DeadlineExceeded   timed out (killed)
//   ResourceExhausted  output past the limit (killed)
//   Internal           exited non-zero, or killed by a signal (the memory
//                      limit usually ends so); its last stderr line quoted
//   Unavailable        could not be started
absl::StatusOr<std::string> RunConverter(const std::vector<std::string>& argv,
                                         absl::string_view input,
                                         const RunLimits& limits);

}  // namespace pimap::convert

#endif  // PIMAP_CORE_CONVERT_CONVERTER_RUNNER_H_
