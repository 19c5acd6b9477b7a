// Tests for pimapd's XDELIVER/SMTP options (tools/pimapd/options_smtp.cc):
// defaults, the command line and the config file, the checks across them,
// and their --help entries.
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

TEST(SmtpOptionsTest, OffByDefault) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->options.smtp.has_value());
  EXPECT_FALSE(d->options.smtp_starttls);
  EXPECT_EQ(d->options.xdeliver_max_bytes, 10u << 20);
  EXPECT_EQ(d->options.smtp_timeout, absl::Seconds(60));
}

TEST(SmtpOptionsTest, CommandLine) {
  auto r = Parse({"--smtp", "mx.example.org:587", "--smtp-starttls",
                  "--smtp-auth-user", "gw", "--smtp-auth-password-file", "/pw",
                  "--smtp-sender-domain", "example.org", "--smtp-helo", "gw1",
                  "--smtp-timeout", "30s", "--xdeliver-max-bytes", "2M",
                  "--smtp-ca-file", "/ca.pem"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->options.smtp.has_value());
  EXPECT_EQ(r->options.smtp->host, "mx.example.org");
  EXPECT_EQ(r->options.smtp->port, 587);
  EXPECT_TRUE(r->options.smtp_starttls);
  EXPECT_EQ(r->options.smtp_auth_user, "gw");
  EXPECT_EQ(r->options.smtp_auth_password_file, "/pw");
  EXPECT_EQ(r->options.smtp_sender_domain, "example.org");
  EXPECT_EQ(r->options.smtp_helo, "gw1");
  EXPECT_EQ(r->options.smtp_timeout, absl::Seconds(30));
  EXPECT_EQ(r->options.xdeliver_max_bytes, 2u << 20);
  EXPECT_EQ(r->options.smtp_ca_file, "/ca.pem");
}

TEST(SmtpOptionsTest, ConfigFile) {
  char path[] = "/tmp/pimapd_options_smtp_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "smtp = 127.0.0.1:25\n"
                         "smtp-sender-domain = example.net\n";
  auto file = Parse({"--config", path});
  unlink(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE(file->options.smtp.has_value());
  EXPECT_EQ(file->options.smtp->port, 25);
  EXPECT_EQ(file->options.smtp_sender_domain, "example.net");
}

TEST(SmtpOptionsTest, Errors) {
  ExpectError({"--smtp", "nohost"}, {"--smtp"});
  ExpectError({"--xdeliver-max-bytes", "10"}, {"--xdeliver-max-bytes"});
  ExpectError({"--smtp", "h:25", "--smtp-auth-user", "u"},
              {"--smtp-auth-password-file"});
  ExpectError({"--smtp", "h:25", "--smtp-auth-user", "u",
               "--smtp-auth-password-file", "/p"},
              {"--smtp-starttls"});
  ExpectError({"--smtp-starttls"}, {"need --smtp"});
}

TEST(SmtpOptionsTest, Help) {
  const std::string help = HelpText();
  for (const char* name :
       {"--smtp ", "--smtp-starttls", "--smtp-ca-file", "--smtp-auth-user",
        "--smtp-auth-password-file", "--smtp-helo", "--smtp-sender-domain",
        "--smtp-timeout", "--xdeliver-max-bytes"}) {
    EXPECT_THAT(help, HasSubstr(name));
  }
}

}  // namespace
}  // namespace pimap
