// Tests for pimapd's XCONVERT options (tools/pimapd/options_convert.cc):
// --converter on the command line and in the config file, "none", its
// errors, and the limits' bounds.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/options_test_util.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

using ::pimap::testing::Parse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ConvertOptionsTest, Defaults) {
  auto r = Parse({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->options.converters.empty());
  EXPECT_EQ(r->options.converter_timeout, absl::Seconds(10));
  EXPECT_EQ(r->options.converter_max_output, 16u << 20);
  EXPECT_EQ(r->options.converter_memory, 1ull << 30);
  EXPECT_EQ(r->options.convert_max_input, 8u << 20);
}

TEST(ConvertOptionsTest, ConvertersRepeatAndLimitsParse) {
  auto r = Parse(
      {"--converter", "image/png:image/jpeg=/usr/bin/convert png:- jpeg:-",
       "--converter=application/msword:application/pdf=/bin/x",
       "--converter-timeout", "2500ms", "--converter-max-output", "1M",
       "--converter-memory", "0", "--convert-max-input", "64k"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->options.converters,
              ElementsAre("image/png:image/jpeg=/usr/bin/convert png:- jpeg:-",
                          "application/msword:application/pdf=/bin/x"));
  EXPECT_EQ(r->options.converter_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(r->options.converter_max_output, 1u << 20);
  EXPECT_EQ(r->options.converter_memory, 0u);
  EXPECT_EQ(r->options.convert_max_input, 64u << 10);
}

TEST(ConvertOptionsTest, ConfigFileAndNone) {
  char path[] = "/tmp/pimapd_options_convert_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path)
      << "converter = image/png:image/jpeg=/usr/bin/convert png:- jpeg:-\n";
  auto file = Parse({"--config", path});
  auto emptied = Parse({"--config", path, "--converter", "none"});
  unlink(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(
      file->options.converters,
      ElementsAre("image/png:image/jpeg=/usr/bin/convert png:- jpeg:-"));
  ASSERT_TRUE(emptied.ok()) << emptied.status();
  EXPECT_TRUE(emptied->options.converters.empty());
}

TEST(ConvertOptionsTest, Errors) {
  for (const char* bad : {"image/png:image/jpeg=convert", "image/png=/bin/cat",
                          "png:image/jpeg=/bin/cat", "image/png:image/jpeg="}) {
    auto r = Parse({"--converter", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("--converter"));
  }
  EXPECT_FALSE(Parse({"--converter-timeout", "0s"}).ok());
  EXPECT_FALSE(Parse({"--converter-max-output", "65M"}).ok());
  EXPECT_FALSE(Parse({"--converter-memory", "1M"}).ok());
  EXPECT_FALSE(Parse({"--convert-max-input", "13M"}).ok());
}

}  // namespace
}  // namespace pimap
