// Tests for pimapd's EMN webhook options (tools/pimapd/options_outband.cc):
// --emn-webhook, --emn-format and --emn-webhook-secret-file on the command
// line and in the config file, their errors, and their --help entries.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/options_test_util.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

using ::pimap::testing::ExpectError;
using ::pimap::testing::Parse;
using ::testing::HasSubstr;

TEST(EmnOptionsTest, OffByDefault) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->options.emn_webhook, "");
  EXPECT_FALSE(d->options.emn_text);
  EXPECT_EQ(d->options.emn_webhook_secret_file, "");
}

TEST(EmnOptionsTest, CommandLine) {
  auto r = Parse({"--emn-webhook", "https://sms.example.net/emn",
                  "--emn-format", "text", "--emn-webhook-secret-file=/s"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.emn_webhook, "https://sms.example.net/emn");
  EXPECT_TRUE(r->options.emn_text);
  EXPECT_EQ(r->options.emn_webhook_secret_file, "/s");
}

TEST(EmnOptionsTest, ConfigFile) {
  char path[] = "/tmp/pimapd_options_emn_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "emn-webhook = http://127.0.0.1:9000/hook\n"
                         "emn-format = wbxml\n"
                         "emn-webhook-secret-file = /secret\n"
                         "outband-allow-private = true\n";
  auto file = Parse({"--config", path});
  unlink(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.emn_webhook, "http://127.0.0.1:9000/hook");
  EXPECT_FALSE(file->options.emn_text);
  EXPECT_EQ(file->options.emn_webhook_secret_file, "/secret");
}

TEST(EmnOptionsTest, Errors) {
  ExpectError({"--emn-webhook", "ftp://x/"}, {"--emn-webhook", "http(s) URL"});
  ExpectError({"--emn-webhook", "https://u@h/"},
              {"--emn-webhook", "user info"});
  // Plain http needs --outband-allow-private (and then a private address).
  ExpectError({"--emn-webhook", "http://127.0.0.1/"},
              {"--emn-webhook", "--outband-allow-private"});
  ExpectError({"--emn-format", "xml"}, {"--emn-format", "wbxml or text"});
  ExpectError({"--emn-webhook-secret-file", "/s"},
              {"--emn-webhook-secret-file needs --emn-webhook"});
}

TEST(EmnOptionsTest, Help) {
  const std::string help = HelpText();
  for (const char* name :
       {"--emn-webhook", "--emn-format", "--emn-webhook-secret-file"}) {
    EXPECT_THAT(help, HasSubstr(name));
  }
}

}  // namespace
}  // namespace pimap
