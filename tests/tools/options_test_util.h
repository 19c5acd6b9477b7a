// What the tests of pimapd's option tables share (tests/tools/options_*_test.cc):
// parsing a command line that already names the store, and expecting an error
// whose message names each of some parts.
#ifndef PIMAP_TESTS_TOOLS_OPTIONS_TEST_UTIL_H_
#define PIMAP_TESTS_TOOLS_OPTIONS_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/pimapd/options.h"

namespace pimap::testing {

// `pimapd --store s:1 <args>`.
inline absl::StatusOr<CommandLine> Parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"pimapd", "--store", "s:1"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

inline void ExpectError(const std::vector<std::string>& args,
                        const std::vector<std::string>& parts) {
  auto r = Parse(args);
  ASSERT_FALSE(r.ok());
  for (const std::string& p : parts) {
    EXPECT_THAT(r.status().message(), ::testing::HasSubstr(p));
  }
}

}  // namespace pimap::testing

#endif  // PIMAP_TESTS_TOOLS_OPTIONS_TEST_UTIL_H_
