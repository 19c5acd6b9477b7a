// Tests for pimapd's TLS certificate options (tools/pimapd/options_tls.cc):
// --tls-sni-cert on the command line and in the config file, its precedence,
// bounds and errors, and its --help entry.
#include <unistd.h>

#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/options_test_util.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

using ::pimap::testing::Parse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Files = Options::CertKeyFiles;

TEST(TlsOptionsTest, NoSniCertificatesByDefault) {
  auto r = Parse({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->options.tls_sni_certs.empty());
}

TEST(TlsOptionsTest, SniCertificatesRepeatInOrder) {
  auto r =
      Parse({"--tls-cert", "/d.pem", "--tls-key", "/d.key", "--tls-sni-cert",
             "/a.pem,/a.key", "--tls-sni-cert=/b.pem, /b,1.key"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(
      r->options.tls_sni_certs,
      ElementsAre(Files{"/a.pem", "/a.key"}, Files{"/b.pem", "/b,1.key"}));
}

TEST(TlsOptionsTest, ConfigFileKeyAndNoneOnTheCommandLine) {
  char path[] = "/tmp/pimapd_options_tls_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "tls-cert = /d.pem\ntls-key = /d.key\n"
                         "tls-sni-cert = /a.pem,/a.key\n"
                         "tls-sni-cert = /b.pem,/b.key\n";
  auto file = Parse({"--config", path});
  auto emptied = Parse({"--config", path, "--tls-sni-cert", "none",
                        "--tls-sni-cert", "/c.pem,/c.key"});
  unlink(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(
      file->options.tls_sni_certs,
      ElementsAre(Files{"/a.pem", "/a.key"}, Files{"/b.pem", "/b.key"}));
  ASSERT_TRUE(emptied.ok()) << emptied.status();
  EXPECT_THAT(emptied->options.tls_sni_certs,
              ElementsAre(Files{"/c.pem", "/c.key"}));
}

TEST(TlsOptionsTest, Errors) {
  for (const char* bad : {"/a.pem", "/a.pem,", ",/a.key", " , "}) {
    auto r = Parse(
        {"--tls-cert", "/d.pem", "--tls-key", "/d.key", "--tls-sni-cert", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("--tls-sni-cert"));
    EXPECT_THAT(r.status().message(), HasSubstr("CERT_FILE,KEY_FILE"));
  }
  auto alone = Parse({"--tls-sni-cert", "/a.pem,/a.key"});
  ASSERT_FALSE(alone.ok());
  EXPECT_THAT(alone.status().message(), HasSubstr("needs --tls-cert"));
}

TEST(TlsOptionsTest, AtMost64) {
  std::vector<std::string> args = {"--tls-cert", "/d.pem", "--tls-key",
                                   "/d.key"};
  for (int i = 0; i < 64; ++i) {
    args.push_back(absl::StrCat("--tls-sni-cert=/", i, ".pem,/", i, ".key"));
  }
  ASSERT_TRUE(Parse(args).ok());
  args.push_back("--tls-sni-cert=/x.pem,/x.key");
  auto r = Parse(args);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("more than 64"));
}

TEST(TlsOptionsTest, InHelp) {
  const std::string help = HelpText();
  EXPECT_THAT(help, HasSubstr("--tls-sni-cert CERT_FILE,KEY_FILE"));
  EXPECT_THAT(help, HasSubstr("--tls-cert FILE"));
  EXPECT_THAT(help, HasSubstr("SIGHUP"));
}

}  // namespace
}  // namespace pimap
