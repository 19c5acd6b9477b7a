// pimapd --sample-config (tools/pimapd/options_text.cc): it lists every option
// with its default, the defaults it shows are values pimapd accepts, and the
// shipped tools/systemd/pimapd.conf is exactly this text.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

std::string WriteTemp(const std::string& contents) {
  char path[] = "/tmp/pimapd_sample_config_XXXXXX";
  const int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << contents;
  return path;
}

// The option names --help documents ("  --name" lines).
std::vector<std::string> HelpOptionNames() {
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(HelpText(), '\n')) {
    if (!absl::ConsumePrefix(&line, "  --")) continue;
    names.emplace_back(line.substr(0, line.find_first_of(" ,")));
  }
  return names;
}

TEST(SampleConfigTest, ListsEveryOptionOfHelp) {
  const std::string sample = SampleConfig();
  int listed = 0;
  for (const std::string& name : HelpOptionNames()) {
    if (name == "config" || name == "help" || name == "version" ||
        name == "sample-config") {
      continue;  // command-line only
    }
    ++listed;
    EXPECT_TRUE(absl::StrContains(sample, absl::StrCat("\n#", name, " = ")) ||
                absl::StrContains(sample, absl::StrCat("\n", name, " = ")))
        << name;
  }
  EXPECT_GT(listed, 50);
}

TEST(SampleConfigTest, IsAcceptedAsItIsAndWithEveryShownDefaultUncommented) {
  const std::string sample = SampleConfig();
  std::string path = WriteTemp(sample);
  const char* argv[] = {"pimapd", "--config", path.c_str()};
  absl::StatusOr<CommandLine> parsed = ParseCommandLine(3, argv);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->options.store.ToString(), "127.0.0.1:143");
  unlink(path.c_str());

  // "# Default: X." followed by "#name = X": that line may be uncommented.
  std::string uncommented;
  std::string shown_default;
  int values = 0;
  for (absl::string_view line : absl::StrSplit(sample, '\n')) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "# Default: ")) {
      shown_default = std::string(absl::StripSuffix(rest, "."));
    } else if (absl::StartsWith(line, "#") && !absl::StartsWith(line, "# ") &&
               absl::EndsWith(line, absl::StrCat(" = ", shown_default))) {
      absl::StrAppend(&uncommented, line.substr(1), "\n");
      ++values;
      continue;
    }
    absl::StrAppend(&uncommented, line, "\n");
  }
  EXPECT_GT(values, 40);
  path = WriteTemp(uncommented);
  const char* argv2[] = {"pimapd", "--config", path.c_str()};
  parsed = ParseCommandLine(3, argv2);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  unlink(path.c_str());
}

TEST(SampleConfigTest, ShippedFileIsTheGeneratedOne) {
  std::ifstream file(PIMAP_SOURCE_DIR "/tools/systemd/pimapd.conf");
  ASSERT_TRUE(file.good());
  std::stringstream contents;
  contents << file.rdbuf();
  EXPECT_EQ(contents.str(), SampleConfig())
      << "regenerate it: build/bin/pimapd --sample-config > "
         "tools/systemd/pimapd.conf";
}

TEST(SampleConfigTest, FlagPrintsItAndNothingElseIsParsed) {
  const char* argv[] = {"pimapd", "--bogus", "--sample-config"};
  absl::StatusOr<CommandLine> parsed = ParseCommandLine(3, argv);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->show_sample_config);
  EXPECT_TRUE(absl::StrContains(HelpText(), "--sample-config"));
}

}  // namespace
}  // namespace pimap
