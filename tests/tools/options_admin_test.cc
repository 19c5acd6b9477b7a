// Tests for pimapd's admin-endpoint access options (tools/pimapd/options.cc):
// --admin-socket, --admin-socket-mode and --admin-token-file on the command
// line and in the config file, their errors, and their --help entries.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/options_test_util.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

using ::pimap::testing::Parse;
using ::testing::HasSubstr;

TEST(AdminOptionsTest, OffByDefault) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->options.admin_socket, "");
  EXPECT_EQ(d->options.admin_socket_mode, 0600u);
  EXPECT_EQ(d->options.admin_token_file, "");
}

TEST(AdminOptionsTest, CommandLine) {
  auto r = Parse({"--admin-socket", "/run/pimapd/admin.sock",
                  "--admin-socket-mode=0660", "--admin-token-file", "/t"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.admin_socket, "/run/pimapd/admin.sock");
  EXPECT_EQ(r->options.admin_socket_mode, 0660u);
  EXPECT_EQ(r->options.admin_token_file, "/t");
  auto none = Parse({"--admin-socket", "none", "--admin-token-file=none",
                     "--admin-socket-mode", "600"});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->options.admin_socket, "");
  EXPECT_EQ(none->options.admin_token_file, "");
  EXPECT_EQ(none->options.admin_socket_mode, 0600u);
}

TEST(AdminOptionsTest, ConfigFile) {
  char path[] = "/tmp/pimapd_options_admin_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "admin-socket = /run/a.sock\n"
                         "admin-socket-mode = 0640\n"
                         "admin-token-file = /etc/pimapd/admin.token\n";
  auto file = Parse({"--config", path});
  unlink(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.admin_socket, "/run/a.sock");
  EXPECT_EQ(file->options.admin_socket_mode, 0640u);
  EXPECT_EQ(file->options.admin_token_file, "/etc/pimapd/admin.token");
}

TEST(AdminOptionsTest, BadModes) {
  for (const char* bad : {"0800", "rw", "", "01777", "-1", "9"}) {
    auto r = Parse({absl::StrCat("--admin-socket-mode=", bad)});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("--admin-socket-mode"));
    EXPECT_THAT(r.status().message(), HasSubstr("octal"));
  }
}

TEST(AdminOptionsTest, HelpEntries) {
  const std::string help = HelpText();
  for (const char* entry :
       {"--admin-socket PATH|none\n", "--admin-socket-mode MODE\n",
        "--admin-token-file FILE|none\n"}) {
    EXPECT_THAT(help, HasSubstr(entry));
  }
  const size_t at = help.find("--admin-socket-mode MODE\n");
  EXPECT_NE(help.find("Default: 0600.", at), std::string::npos);
  const std::string sample = SampleConfig();
  EXPECT_THAT(sample, HasSubstr("#admin-socket = "));
  EXPECT_THAT(sample, HasSubstr("#admin-token-file = "));
}

}  // namespace
}  // namespace pimap
