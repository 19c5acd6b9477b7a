// A fresh directory under the test temp dir per test, removed with everything
// in it afterwards. Header-only: tests only.
#ifndef PIMAP_TESTS_TESTING_TEMP_DIR_H_
#define PIMAP_TESTS_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "gtest/gtest.h"

namespace pimap::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "pimap_test") {
    std::string tmpl = ::testing::TempDir() + prefix + ".XXXXXX";
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pimap::testing

#endif  // PIMAP_TESTS_TESTING_TEMP_DIR_H_
