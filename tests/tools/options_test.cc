// Tests for pimapd option parsing: every option, both flag syntaxes,
// booleans, sizes, durations, the config file, flag-over-file precedence,
// and each documented error.
#include "tools/pimapd/options.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

absl::StatusOr<CommandLine> Parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"pimapd"};
  argv.insert(argv.end(), args.begin(), args.end());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

// Expects InvalidArgument whose message contains every one of `needles`.
void ExpectError(std::initializer_list<const char*> args,
                 std::initializer_list<const char*> needles) {
  absl::StatusOr<CommandLine> r = Parse(args);
  ASSERT_FALSE(r.ok()) << "parse unexpectedly succeeded";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* n : needles) {
    EXPECT_TRUE(absl::StrContains(r.status().message(), n))
        << "message \"" << r.status().message() << "\" lacks \"" << n << "\"";
  }
}

class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    char path[] = "/tmp/pimapd_options_test_XXXXXX";
    const int fd = mkstemp(path);
    close(fd);
    path_ = path;
    std::ofstream(path_) << contents;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(HostPortTest, Parses) {
  auto a = ParseHostPort("127.0.0.1:1143");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 1143);
  EXPECT_EQ(a->ToString(), "127.0.0.1:1143");

  auto b = ParseHostPort("[::1]:993");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 993);
  EXPECT_EQ(b->ToString(), "[::1]:993");

  auto c = ParseHostPort("localhost:143");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "localhost");
  EXPECT_EQ(c->port, 143);

  auto d = ParseHostPort("h:65535");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 65535);
}

TEST(HostPortTest, Rejects) {
  for (const char* bad :
       {"", "localhost", "localhost:", ":143", "h:0", "h:65536", "h:-1", "h:+1",
        "h:1x", "h: 1", "::1:993", "[::1]", "[::1]993", "[]:1", "[::1:993",
        "a b:1", "h:99999999999999999999"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ValueParsersTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("65536"), 65536u);
  EXPECT_EQ(*ParseByteSize("64K"), 65536u);
  EXPECT_EQ(*ParseByteSize("64k"), 65536u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseByteSize("4M"), 4u << 20);
  EXPECT_EQ(*ParseByteSize("4MB"), 4u << 20);
  EXPECT_EQ(*ParseByteSize("2G"), 2ull << 30);
  for (const char* bad : {"", "K", "-1", "1.5M", "4T", "4 M", "4Mb", "4MiBx",
                          "99999999999999999999", "17179869184G"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

TEST(ValueParsersTest, Durations) {
  EXPECT_EQ(*ParseDurationOrSeconds("90s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationOrSeconds("10m"), absl::Minutes(10));
  EXPECT_EQ(*ParseDurationOrSeconds("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationOrSeconds("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDurationOrSeconds("60"), absl::Seconds(60));
  EXPECT_EQ(*ParseDurationOrSeconds("1.5"), absl::Milliseconds(1500));
  for (const char* bad : {"", "abc", "1.2.3", "10 m", "inf", "5x"}) {
    EXPECT_FALSE(ParseDurationOrSeconds(bad).ok()) << bad;
  }
}

TEST(ParseCommandLineTest, Defaults) {
  auto r = Parse({"--store", "127.0.0.1:143"});
  ASSERT_TRUE(r.ok()) << r.status();
  const Options& o = r->options;
  EXPECT_FALSE(r->show_help);
  EXPECT_FALSE(r->show_version);
  EXPECT_EQ(o.store.ToString(), "127.0.0.1:143");
  ASSERT_TRUE(o.imap_listen.has_value());
  EXPECT_EQ(o.imap_listen->ToString(), "127.0.0.1:1143");
  EXPECT_FALSE(o.imaps_listen.has_value());
  EXPECT_FALSE(o.admin_listen.has_value());
  EXPECT_TRUE(o.tls_cert.empty());
  EXPECT_TRUE(o.tls_key.empty());
  EXPECT_EQ(o.shards, 0);
  EXPECT_FALSE(o.allow_plaintext_auth);
  EXPECT_EQ(o.log_level, LogLevel::kInfo);
  EXPECT_EQ(o.log_format, LogFormat::kLogfmt);
  EXPECT_EQ(o.max_line_bytes, 64u * 1024);
  EXPECT_EQ(o.max_literal_bytes, 64ull << 20);
  EXPECT_EQ(o.max_depth, 32);
  EXPECT_EQ(o.max_output_bytes, 4u << 20);
  EXPECT_EQ(o.login_timeout, absl::Seconds(60));
  EXPECT_EQ(o.idle_timeout, absl::Minutes(31));
  EXPECT_EQ(o.store_timeout, absl::Seconds(15));
  EXPECT_EQ(o.max_connections_per_shard, 16000);
  EXPECT_EQ(o.store_links_per_shard, 1000u);
  EXPECT_EQ(o.store_link_idle, absl::Seconds(30));
  EXPECT_EQ(o.auth_cache_ttl, absl::Minutes(10));
  EXPECT_EQ(o.login_fail_delay, absl::Seconds(1));
  EXPECT_EQ(o.login_fail_max, 10);
  EXPECT_EQ(o.login_fail_window, absl::Minutes(15));
  EXPECT_EQ(o.max_devices_per_user, 32);
  EXPECT_EQ(o.max_preauth_per_shard, 0);
  EXPECT_EQ(o.max_preauth_per_ip, 64);
  EXPECT_EQ(o.user_name_format, "%Lu");
  EXPECT_EQ(o.max_filters_per_device, 64);
  EXPECT_EQ(o.max_filter_bytes, 4096u);
  EXPECT_TRUE(o.config_file.empty());
}

TEST(ParseCommandLineTest, EveryOptionBothSyntaxes) {
  auto r = Parse({"--store=[::1]:10143",
                  "--imap-listen",
                  "0.0.0.0:143",
                  "--imaps-listen=[::]:993",
                  "--admin-listen",
                  "127.0.0.1:9100",
                  "--tls-cert",
                  "/etc/pimap/cert.pem",
                  "--tls-key=/etc/pimap/key.pem",
                  "--shards",
                  "8",
                  "--allow-plaintext-auth",
                  "--log-level=debug",
                  "--log-format",
                  "json",
                  "--max-line-bytes",
                  "8K",
                  "--max-literal-bytes=1G",
                  "--max-nesting-depth",
                  "10",
                  "--max-output-bytes",
                  "1048576",
                  "--login-timeout",
                  "90s",
                  "--idle-timeout=1h30m",
                  "--store-timeout",
                  "5",
                  "--max-connections-per-shard",
                  "1000",
                  "--store-links-per-shard=250",
                  "--store-link-idle",
                  "2m",
                  "--auth-cache-ttl=90"});
  ASSERT_TRUE(r.ok()) << r.status();
  const Options& o = r->options;
  EXPECT_EQ(o.store.host, "::1");
  EXPECT_EQ(o.store.port, 10143);
  EXPECT_EQ(o.imap_listen->ToString(), "0.0.0.0:143");
  EXPECT_EQ(o.imaps_listen->ToString(), "[::]:993");
  EXPECT_EQ(o.admin_listen->ToString(), "127.0.0.1:9100");
  EXPECT_EQ(o.tls_cert, "/etc/pimap/cert.pem");
  EXPECT_EQ(o.tls_key, "/etc/pimap/key.pem");
  EXPECT_EQ(o.shards, 8);
  EXPECT_TRUE(o.allow_plaintext_auth);
  EXPECT_EQ(o.log_level, LogLevel::kDebug);
  EXPECT_EQ(o.log_format, LogFormat::kJson);
  EXPECT_EQ(o.max_line_bytes, 8192u);
  EXPECT_EQ(o.max_literal_bytes, 1ull << 30);
  EXPECT_EQ(o.max_depth, 10);
  EXPECT_EQ(o.max_output_bytes, 1048576u);
  EXPECT_EQ(o.login_timeout, absl::Seconds(90));
  EXPECT_EQ(o.idle_timeout, absl::Minutes(90));
  EXPECT_EQ(o.store_timeout, absl::Seconds(5));
  EXPECT_EQ(o.max_connections_per_shard, 1000);
  EXPECT_EQ(o.store_links_per_shard, 250u);
  EXPECT_EQ(o.store_link_idle, absl::Minutes(2));
  EXPECT_EQ(o.auth_cache_ttl, absl::Seconds(90));
}

TEST(ParseCommandLineTest, StoreLinkPoolAndAuthCache) {
  // The cap may be as small as one link.
  auto one = Parse({"--store", "s:1", "--store-links-per-shard", "1"});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->options.store_links_per_shard, 1u);
  // Zero disables the auth cache (both spellings).
  for (const char* zero : {"0", "0s"}) {
    auto r = Parse({"--store", "s:1", "--auth-cache-ttl", zero});
    ASSERT_TRUE(r.ok()) << zero << ": " << r.status();
    EXPECT_EQ(r->options.auth_cache_ttl, absl::ZeroDuration()) << zero;
  }
  // From the config file too.
  TempFile f(
      "store = s:1\n"
      "store-links-per-shard = 64\n"
      "store-link-idle = 1m30s\n"
      "auth-cache-ttl = 1h\n");
  auto r = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.store_links_per_shard, 64u);
  EXPECT_EQ(r->options.store_link_idle, absl::Seconds(90));
  EXPECT_EQ(r->options.auth_cache_ttl, absl::Hours(1));
}

TEST(ParseCommandLineTest, HibernateAfter) {
  auto defaults = Parse({"--store", "s:1"});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->options.hibernate_after, absl::Seconds(10));
  auto never = Parse({"--store", "s:1", "--hibernate-after", "0"});
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_EQ(never->options.hibernate_after, absl::ZeroDuration());
  TempFile f(
      "store = s:1\n"
      "hibernate-after = 250ms\n");
  auto r = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.hibernate_after, absl::Milliseconds(250));
  ExpectError({"--store", "s:1", "--hibernate-after=-1s"},
              {"--hibernate-after", "-1s", "negative"});
  const std::string help = HelpText();
  const size_t at = help.find("--hibernate-after DURATION\n");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(help.find("Default: 10s.", at), std::string::npos);
}

TEST(ParseCommandLineTest, DrainTime) {
  auto defaults = Parse({"--store", "s:1"});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->options.drain_time, absl::Seconds(10));
  auto now = Parse({"--store", "s:1", "--drain-time", "0"});
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->options.drain_time, absl::ZeroDuration());
  TempFile f(
      "store = s:1\n"
      "drain-time = 1m\n");
  auto r = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.drain_time, absl::Minutes(1));
  ExpectError({"--store", "s:1", "--drain-time=-1s"},
              {"--drain-time", "-1s", "negative"});
  const std::string help = HelpText();
  const size_t at = help.find("--drain-time DURATION\n");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(help.find("SIGUSR2", at), std::string::npos);
}

TEST(ParseCommandLineTest, LoginThrottling) {
  auto r = Parse({"--store", "s:1", "--login-fail-delay=250ms",
                  "--login-fail-max", "3", "--login-fail-window", "2m"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.login_fail_delay, absl::Milliseconds(250));
  EXPECT_EQ(r->options.login_fail_max, 3);
  EXPECT_EQ(r->options.login_fail_window, absl::Minutes(2));
  // Zero turns throttling off / never refuses.
  auto off = Parse(
      {"--store", "s:1", "--login-fail-delay", "0", "--login-fail-max=0"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->options.login_fail_delay, absl::ZeroDuration());
  EXPECT_EQ(off->options.login_fail_max, 0);
  TempFile f(
      "store = s:1\n"
      "login-fail-delay = 2s\n"
      "login-fail-max = 5\n"
      "login-fail-window = 1h\n");
  auto file = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.login_fail_delay, absl::Seconds(2));
  EXPECT_EQ(file->options.login_fail_max, 5);
  EXPECT_EQ(file->options.login_fail_window, absl::Hours(1));
  ExpectError({"--store", "s:1", "--login-fail-delay=-1s"},
              {"--login-fail-delay", "-1s", "negative"});
  ExpectError({"--store", "s:1", "--login-fail-max", "1001"},
              {"--login-fail-max", "1001", "0..1000"});
  ExpectError({"--store", "s:1", "--login-fail-max", "many"},
              {"--login-fail-max", "many"});
  ExpectError({"--store", "s:1", "--login-fail-window", "0"},
              {"--login-fail-window", "\"0\"", "positive"});
}

TEST(ParseCommandLineTest, PerUserLimits) {
  auto r = Parse({"--store", "s:1", "--max-devices-per-user", "3",
                  "--max-filters-per-device=0", "--max-filter-bytes", "1K"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.max_devices_per_user, 3);
  EXPECT_EQ(r->options.max_filters_per_device, 0);
  EXPECT_EQ(r->options.max_filter_bytes, 1024u);
  TempFile f(
      "store = s:1\n"
      "max-devices-per-user = 7\n"
      "max-filters-per-device = 9\n"
      "max-filter-bytes = 100\n");
  auto file = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.max_devices_per_user, 7);
  EXPECT_EQ(file->options.max_filters_per_device, 9);
  EXPECT_EQ(file->options.max_filter_bytes, 100u);
  ExpectError({"--store", "s:1", "--max-devices-per-user", "-1"},
              {"--max-devices-per-user", "0..100000"});
  ExpectError({"--store", "s:1", "--max-filter-bytes", "2M"},
              {"--max-filter-bytes", "16..1M"});
  const std::string help = HelpText();
  for (const char* name : {"--max-devices-per-user", "--max-filters-per-device",
                           "--max-filter-bytes"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

TEST(ParseCommandLineTest, OutbandWakeUps) {
  auto d = Parse({"--store", "s:1"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->options.outband_min_interval, absl::Seconds(60));
  EXPECT_EQ(d->options.outband_max_age, absl::Hours(1));
  EXPECT_EQ(d->options.outband_timeout, absl::Seconds(10));
  EXPECT_EQ(d->options.outband_queue_limit, 4096);
  EXPECT_FALSE(d->options.outband_allow_private);
  EXPECT_EQ(d->options.outband_ca_file, "");
  EXPECT_EQ(d->options.vapid_key, "");
  EXPECT_FALSE(d->options.outband_udp);
  EXPECT_FALSE(d->options.outband_full_payload);
  auto r = Parse({"--store", "s:1", "--outband-min-interval", "2s",
                  "--outband-max-age=30s", "--outband-timeout", "3",
                  "--outband-queue-limit", "10", "--outband-allow-private",
                  "--outband-ca-file", "/ca.pem", "--vapid-key", "/k.pem",
                  "--vapid-subject", "mailto:ops@example.net", "--outband-udp",
                  "--outband-payload", "full"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.outband_min_interval, absl::Seconds(2));
  EXPECT_EQ(r->options.outband_max_age, absl::Seconds(30));
  EXPECT_EQ(r->options.outband_timeout, absl::Seconds(3));
  EXPECT_EQ(r->options.outband_queue_limit, 10);
  EXPECT_TRUE(r->options.outband_allow_private);
  EXPECT_EQ(r->options.outband_ca_file, "/ca.pem");
  EXPECT_EQ(r->options.vapid_key, "/k.pem");
  EXPECT_EQ(r->options.vapid_subject, "mailto:ops@example.net");
  EXPECT_TRUE(r->options.outband_udp);
  EXPECT_TRUE(r->options.outband_full_payload);
  TempFile f(
      "store = s:1\n"
      "outband-min-interval = 5m\n"
      "outband-max-age = 2h\n"
      "outband-timeout = 1s\n"
      "outband-queue-limit = 7\n"
      "outband-allow-private = yes\n"
      "outband-ca-file = /c\n"
      "vapid-key = /v\n"
      "vapid-subject = https://example.net/contact\n"
      "outband-udp = true\n"
      "outband-payload = full\n");
  auto file = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.outband_min_interval, absl::Minutes(5));
  EXPECT_EQ(file->options.outband_max_age, absl::Hours(2));
  EXPECT_EQ(file->options.outband_timeout, absl::Seconds(1));
  EXPECT_EQ(file->options.outband_queue_limit, 7);
  EXPECT_TRUE(file->options.outband_allow_private);
  EXPECT_EQ(file->options.outband_ca_file, "/c");
  EXPECT_EQ(file->options.vapid_key, "/v");
  EXPECT_EQ(file->options.vapid_subject, "https://example.net/contact");
  EXPECT_TRUE(file->options.outband_udp);
  EXPECT_TRUE(file->options.outband_full_payload);
  auto minimal = Parse({"--store", "s:1", "--outband-payload=minimal"});
  ASSERT_TRUE(minimal.ok()) << minimal.status();
  EXPECT_FALSE(minimal->options.outband_full_payload);
  ExpectError({"--store", "s:1", "--outband-min-interval", "0"},
              {"--outband-min-interval", "positive"});
  ExpectError({"--store", "s:1", "--outband-queue-limit", "0"},
              {"--outband-queue-limit", "1..1000000"});
  ExpectError({"--store", "s:1", "--vapid-subject", "ops@example.net"},
              {"--vapid-subject", "mailto:"});
  ExpectError({"--store", "s:1", "--vapid-key", "/k.pem"},
              {"--vapid-key needs --vapid-subject"});
  ExpectError({"--store", "s:1", "--outband-payload", "subjects"},
              {"--outband-payload", "minimal or full"});
  const std::string help = HelpText();
  for (const char* name :
       {"--outband-min-interval", "--outband-max-age", "--outband-timeout",
        "--outband-queue-limit", "--outband-allow-private", "--outband-ca-file",
        "--vapid-key", "--vapid-subject", "--outband-udp",
        "--outband-payload"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

TEST(ParseCommandLineTest, PreAuthLimits) {
  auto r = Parse({"--store", "s:1", "--max-preauth-per-shard", "100",
                  "--max-preauth-per-ip=5"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.max_preauth_per_shard, 100);
  EXPECT_EQ(r->options.max_preauth_per_ip, 5);
  TempFile f(
      "store = s:1\n"
      "max-preauth-per-shard = 7\n"
      "max-preauth-per-ip = 2\n");
  auto file = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.max_preauth_per_shard, 7);
  EXPECT_EQ(file->options.max_preauth_per_ip, 2);
  ExpectError({"--store", "s:1", "--max-preauth-per-ip", "0"},
              {"--max-preauth-per-ip", "1..1048576"});
  const std::string help = HelpText();
  EXPECT_NE(help.find("--max-preauth-per-shard"), std::string::npos);
  EXPECT_NE(help.find("--max-preauth-per-ip"), std::string::npos);
}

TEST(ParseCommandLineTest, UserNameCase) {
  auto r = Parse({"--store", "s:1", "--user-name-case", "keep"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.user_name_format, "%u");
  TempFile f("store = s:1\nuser-name-case = keep\nuser-name-case = fold\n");
  auto file = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.user_name_format, "%Lu");
  ExpectError({"--store", "s:1", "--user-name-case", "lower"},
              {"--user-name-case", "fold or keep"});
  EXPECT_NE(HelpText().find("--user-name-case"), std::string::npos);
}

TEST(ParseCommandLineTest, UserNameFormat) {
  auto r = Parse({"--store", "s:1", "--user-name-format", "%Ln@%Ld"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.user_name_format, "%Ln@%Ld");
  TempFile f("store = s:1\nuser-name-format = %L{username}\n");
  auto file = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->options.user_name_format, "%L{username}");
  ExpectError({"--store", "s:1", "--user-name-format", "%d"},
              {"--user-name-format", "names no user"});
  ExpectError({"--store", "s:1", "--user-name-format", "%Lx"},
              {"--user-name-format", "unknown variable"});
  EXPECT_NE(HelpText().find("--user-name-format"), std::string::npos);
}

TEST(ParseCommandLineTest, ProxyProtocolFrom) {
  auto r = Parse(
      {"--store", "s:1", "--proxy-protocol-from", "10.0.0.0/8, 2001:db8::/32"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.proxy_protocol_from, "10.0.0.0/8, 2001:db8::/32");
  EXPECT_EQ(Parse({"--store", "s:1"})->options.proxy_protocol_from, "");
  ExpectError({"--store", "s:1", "--proxy-protocol-from", "10.1.2.3/8"},
              {"--proxy-protocol-from", "host bits", "10.0.0.0/8"});
  ExpectError({"--store", "s:1", "--proxy-protocol-from", "balancer"},
              {"--proxy-protocol-from", "not an IP address range"});
  EXPECT_NE(HelpText().find("--proxy-protocol-from"), std::string::npos);
}

TEST(ParseCommandLineTest, BooleanForms) {
  struct Case {
    const char* arg;
    bool want;
  };
  for (const Case& c : {Case{"--allow-plaintext-auth", true},
                        Case{"--allow-plaintext-auth=true", true},
                        Case{"--allow-plaintext-auth=yes", true},
                        Case{"--allow-plaintext-auth=1", true},
                        Case{"--allow-plaintext-auth=false", false},
                        Case{"--allow-plaintext-auth=no", false},
                        Case{"--allow-plaintext-auth=0", false}}) {
    auto r = Parse({"--store", "s:1", c.arg});
    ASSERT_TRUE(r.ok()) << c.arg << ": " << r.status();
    EXPECT_EQ(r->options.allow_plaintext_auth, c.want) << c.arg;
  }
  ExpectError({"--store", "s:1", "--allow-plaintext-auth=maybe"},
              {"--allow-plaintext-auth", "maybe"});
  // A bare boolean does not swallow the next argument.
  ExpectError({"--store", "s:1", "--allow-plaintext-auth", "false"},
              {"unexpected argument", "false"});
}

TEST(ParseCommandLineTest, StoreEventsIntake) {
  auto d = Parse({"--store", "s:1"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->options.store_events_listen.has_value());
  EXPECT_TRUE(d->options.store_events_secret_file.empty());
  EXPECT_FALSE(d->options.store_events_insecure);
  auto r = Parse({"--store", "s:1", "--store-events-listen", "127.0.0.1:8143",
                  "--store-events-secret-file=/etc/pimap/push.secret",
                  "--store-events-insecure"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.store_events_listen->ToString(), "127.0.0.1:8143");
  EXPECT_EQ(r->options.store_events_secret_file, "/etc/pimap/push.secret");
  EXPECT_TRUE(r->options.store_events_insecure);
  auto no = Parse({"--store", "s:1", "--store-events-insecure=no"});
  ASSERT_TRUE(no.ok()) << no.status();
  EXPECT_FALSE(no->options.store_events_insecure);
  ExpectError({"--store", "s:1", "--store-events-insecure=maybe"},
              {"--store-events-insecure", "maybe"});
  // From the config file too.
  TempFile f(
      "store = s:1\n"
      "store-events-listen = 127.0.0.1:8144\n"
      "store-events-secret-file = /run/push.secret\n"
      "store-events-insecure = true\n");
  auto c = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->options.store_events_listen->ToString(), "127.0.0.1:8144");
  EXPECT_EQ(c->options.store_events_secret_file, "/run/push.secret");
  EXPECT_TRUE(c->options.store_events_insecure);
}

TEST(ParseCommandLineTest, StoreTlsAndMasterUser) {
  auto d = Parse({"--store", "s:1"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->options.store_tls, "none");
  EXPECT_TRUE(d->options.store_tls_ca_file.empty());
  EXPECT_TRUE(d->options.store_tls_name.empty());
  EXPECT_EQ(d->options.store_master_separator, "*");
  auto r =
      Parse({"--store", "s:1", "--store-tls", "STARTTLS",
             "--store-tls-ca-file=/etc/pimap/store-ca.pem", "--store-tls-name",
             "imap.example.org", "--store-master-separator=%"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.store_tls, "starttls");
  EXPECT_EQ(r->options.store_tls_ca_file, "/etc/pimap/store-ca.pem");
  EXPECT_EQ(r->options.store_tls_name, "imap.example.org");
  EXPECT_EQ(r->options.store_master_separator, "%");
  ExpectError({"--store", "s:1", "--store-tls", "tls"},
              {"--store-tls", "none, starttls or implicit"});
  ExpectError({"--store", "s:1", "--store-master-separator="},
              {"--store-master-separator"});
  ExpectError({"--store", "s:1", "--store-master-separator", "a b"},
              {"--store-master-separator"});
  // A CA file or a name without TLS would be silently unused: an error.
  ExpectError({"--store", "s:1", "--store-tls-ca-file", "/ca.pem"},
              {"--store-tls-ca-file", "need --store-tls"});
  ExpectError({"--store", "s:1", "--store-tls-name", "x"},
              {"--store-tls-name", "need --store-tls"});
  // From the config file too.
  TempFile f(
      "store = s:1\n"
      "store-tls = implicit\n"
      "store-tls-ca-file = /run/ca.pem\n"
      "store-tls-name = 10.0.0.7\n"
      "store-master-separator = +\n");
  auto c = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->options.store_tls, "implicit");
  EXPECT_EQ(c->options.store_tls_ca_file, "/run/ca.pem");
  EXPECT_EQ(c->options.store_tls_name, "10.0.0.7");
  EXPECT_EQ(c->options.store_master_separator, "+");
}

TEST(ParseCommandLineTest, NoneDisablesListeners) {
  auto r =
      Parse({"--store", "s:1", "--imap-listen", "none", "--admin-listen=none"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->options.imap_listen.has_value());
  EXPECT_FALSE(r->options.admin_listen.has_value());
}

TEST(ParseCommandLineTest, LaterFlagWins) {
  auto r =
      Parse({"--store", "a:1", "--shards", "2", "--store=b:2", "--shards=3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->options.store.ToString(), "b:2");
  EXPECT_EQ(r->options.shards, 3);
}

TEST(ParseCommandLineTest, HelpAndVersionSkipValidation) {
  auto h = Parse({"--help"});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->show_help);
  auto h2 = Parse({"--bogus", "-h"});
  ASSERT_TRUE(h2.ok());
  EXPECT_TRUE(h2->show_help);
  auto v = Parse({"--version"});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->show_version);
  EXPECT_FALSE(v->show_help);
}

TEST(ParseCommandLineErrorsTest, UnknownOption) {
  ExpectError({"--store", "s:1", "--shard", "4"},
              {"unknown option", "--shard"});
  ExpectError({"--store", "s:1", "-v"}, {"unexpected argument", "-v"});
  ExpectError({"--store", "s:1", "extra"}, {"unexpected argument", "extra"});
  ExpectError({"--store", "s:1", "--"}, {"unexpected argument"});
}

TEST(ParseCommandLineErrorsTest, MissingValue) {
  ExpectError({"--store"}, {"missing value", "--store"});
  ExpectError({"--store", "--shards", "4"}, {"missing value", "--store"});
  ExpectError({"--store", "s:1", "--shards"}, {"missing value", "--shards"});
  ExpectError({"--store", "s:1", "--config"}, {"missing value", "--config"});
}

TEST(ParseCommandLineErrorsTest, BadNumbers) {
  ExpectError({"--store", "s:1", "--shards", "abc"},
              {"--shards", "\"abc\"", "0..256"});
  ExpectError({"--store", "s:1", "--shards", "257"}, {"--shards", "257"});
  ExpectError({"--store", "s:1", "--shards=-1"}, {"--shards", "-1"});
  ExpectError({"--store", "s:1", "--max-nesting-depth", "0"},
              {"--max-nesting-depth", "\"0\""});
  ExpectError({"--store", "s:1", "--max-line-bytes", "12Q"},
              {"--max-line-bytes", "12Q"});
  ExpectError({"--store", "s:1", "--max-line-bytes", "100"},
              {"--max-line-bytes", "\"100\"", "1K..1G"});
  ExpectError({"--store", "s:1", "--max-output-bytes=lots"},
              {"--max-output-bytes", "lots"});
  ExpectError({"--store", "s:1", "--max-connections-per-shard", "0"},
              {"--max-connections-per-shard", "\"0\""});
  ExpectError({"--store", "s:1", "--idle-timeout", "soon"},
              {"--idle-timeout", "soon"});
  ExpectError({"--store", "s:1", "--login-timeout", "0s"},
              {"--login-timeout", "0s", "positive"});
  ExpectError({"--store", "s:1", "--store-timeout=-5s"},
              {"--store-timeout", "-5s", "positive"});
  ExpectError({"--store", "s:1", "--log-level", "loud"},
              {"--log-level", "loud"});
  ExpectError({"--store", "s:1", "--log-format", "xml"},
              {"--log-format", "xml", "logfmt, json or text"});
  ExpectError({"--store", "s:1", "--store-links-per-shard", "0"},
              {"--store-links-per-shard", "\"0\"", "1..1048576"});
  ExpectError({"--store", "s:1", "--store-links-per-shard=-3"},
              {"--store-links-per-shard", "-3"});
  ExpectError({"--store", "s:1", "--store-links-per-shard", "1048577"},
              {"--store-links-per-shard", "1048577"});
  ExpectError({"--store", "s:1", "--store-link-idle", "0"},
              {"--store-link-idle", "\"0\"", "positive"});
  ExpectError({"--store", "s:1", "--store-link-idle", "later"},
              {"--store-link-idle", "later"});
  ExpectError({"--store", "s:1", "--auth-cache-ttl=-1m"},
              {"--auth-cache-ttl", "-1m", "negative"});
  ExpectError({"--store", "s:1", "--auth-cache-ttl", "forever"},
              {"--auth-cache-ttl", "forever"});
}

TEST(ParseCommandLineErrorsTest, PortOutOfRange) {
  ExpectError({"--store", "s:70000"}, {"--store", "s:70000", "1..65535"});
  ExpectError({"--store", "s:1", "--imap-listen", "0.0.0.0:0"},
              {"--imap-listen", "0.0.0.0:0"});
  ExpectError({"--store", "s:1", "--admin-listen=[::1]:65536"},
              {"--admin-listen", "[::1]:65536"});
}

TEST(ParseCommandLineErrorsTest, StoreRequired) {
  ExpectError({}, {"--store", "required"});
  ExpectError({"--shards", "2"}, {"--store", "required"});
}

TEST(ParseCommandLineErrorsTest, TlsConsistency) {
  ExpectError({"--store", "s:1", "--imaps-listen", "0.0.0.0:993"},
              {"--imaps-listen", "--tls-cert", "--tls-key"});
  ExpectError({"--store", "s:1", "--tls-cert", "c.pem"},
              {"--tls-cert", "without --tls-key"});
  ExpectError({"--store", "s:1", "--tls-key", "k.pem"},
              {"--tls-key", "without --tls-cert"});
  auto ok = Parse({"--store", "s:1", "--imaps-listen", "0.0.0.0:993",
                   "--tls-cert", "c.pem", "--tls-key", "k.pem"});
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(ConfigFileTest, ReadsKeysCommentsAndBlankLines) {
  TempFile f(
      "# pimapd test config\n"
      "\n"
      "store = store.example:143\n"
      "  shards=4   # trailing comment\n"
      "allow-plaintext-auth = yes\r\n"
      "imap-listen = none\n"
      "tls-cert = /etc/pimap/a#b.pem\n"
      "tls-key = /etc/pimap/key.pem\n"
      "imaps-listen = [::]:993\n"
      "idle-timeout = 45m\n"
      "max-literal-bytes = 16M\n");
  auto r = Parse({"--config", f.path().c_str()});
  ASSERT_TRUE(r.ok()) << r.status();
  const Options& o = r->options;
  EXPECT_EQ(o.config_file, f.path());
  EXPECT_EQ(o.store.ToString(), "store.example:143");
  EXPECT_EQ(o.shards, 4);
  EXPECT_TRUE(o.allow_plaintext_auth);
  EXPECT_FALSE(o.imap_listen.has_value());
  EXPECT_EQ(o.tls_cert, "/etc/pimap/a#b.pem");
  EXPECT_EQ(o.imaps_listen->ToString(), "[::]:993");
  EXPECT_EQ(o.idle_timeout, absl::Minutes(45));
  EXPECT_EQ(o.max_literal_bytes, 16u << 20);
}

TEST(ConfigFileTest, FlagsOverrideFileRegardlessOfOrder) {
  TempFile f(
      "store = file-store:143\n"
      "shards = 4\n"
      "log-level = error\n"
      "log-format = text\n"
      "allow-plaintext-auth = true\n");
  // Flags before --config.
  auto a = Parse({"--shards", "2", "--allow-plaintext-auth=no", "--config",
                  f.path().c_str()});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->options.shards, 2);
  EXPECT_FALSE(a->options.allow_plaintext_auth);
  EXPECT_EQ(a->options.store.host, "file-store");  // From the file.
  EXPECT_EQ(a->options.log_level, LogLevel::kError);
  EXPECT_EQ(a->options.log_format, LogFormat::kText);  // From the file.
  // Flags after --config.
  const std::string cfg = absl::StrCat("--config=", f.path());
  auto b =
      Parse({cfg.c_str(), "--store", "cli-store:1", "--log-level", "warn"});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->options.store.ToString(), "cli-store:1");
  EXPECT_EQ(b->options.log_level, LogLevel::kWarning);
  EXPECT_EQ(b->options.shards, 4);
}

TEST(ConfigFileTest, BadFileValueIsAnErrorEvenIfAFlagOverridesIt) {
  // The file is applied first, so a bad value there is reported even if a
  // flag would override it: a broken config file must not go unnoticed.
  TempFile f("store = s:1\nshards = many\n");
  ExpectError({"--config", f.path().c_str(), "--shards", "2"},
              {f.path().c_str(), ":2", "shards", "many"});
}

TEST(ConfigFileTest, UnknownKeyNamesFileAndLine) {
  TempFile f("store = s:1\n# comment\n\nshard = 4\n");
  const std::string where = f.path() + ":4";
  ExpectError({"--config", f.path().c_str()},
              {where.c_str(), "unknown key", "shard"});
}

TEST(ConfigFileTest, NestedConfigRejected) {
  TempFile f("config = /etc/other.conf\n");
  ExpectError({"--config", f.path().c_str()}, {":1", "unknown key", "config"});
}

TEST(ConfigFileTest, LineWithoutEquals) {
  TempFile f("store = s:1\nallow-plaintext-auth\n");
  const std::string where = f.path() + ":2";
  ExpectError({"--config", f.path().c_str()}, {where.c_str(), "key = value"});
}

TEST(ConfigFileTest, MissingFile) {
  ExpectError({"--config", "/nonexistent/pimapd.conf"},
              {"--config", "/nonexistent/pimapd.conf"});
}

TEST(ConfigFileTest, FileSatisfiesRequiredStoreAndTls) {
  TempFile f("tls-cert = c.pem\n");
  ExpectError({"--config", f.path().c_str(), "--store", "s:1"},
              {"--tls-cert", "without --tls-key"});
}

TEST(HelpTextTest, ListsEveryOptionWithDefault) {
  const std::string help = HelpText();
  EXPECT_TRUE(absl::StartsWith(help, "Usage: pimapd"));
  for (const char* opt : {"--config FILE",
                          "--store HOST:PORT",
                          "--imap-listen",
                          "--imaps-listen",
                          "--admin-listen",
                          "--tls-cert FILE",
                          "--tls-key FILE",
                          "--shards N",
                          "--allow-plaintext-auth",
                          "--log-level LEVEL",
                          "--log-format FORMAT",
                          "--max-line-bytes SIZE",
                          "--max-literal-bytes SIZE",
                          "--max-nesting-depth N",
                          "--max-output-bytes SIZE",
                          "--login-timeout DURATION",
                          "--idle-timeout DURATION",
                          "--store-timeout DURATION",
                          "--max-connections-per-shard N",
                          "--store-links-per-shard N",
                          "--store-link-idle DURATION",
                          "--auth-cache-ttl DURATION",
                          "--store-events-listen ADDR:PORT",
                          "--store-events-secret-file FILE",
                          "--store-events-insecure",
                          "--store-tls none|starttls|implicit",
                          "--store-tls-ca-file FILE",
                          "--store-tls-name NAME",
                          "--store-master-separator STRING",
                          "--login-fail-delay DURATION",
                          "--login-fail-max N",
                          "--login-fail-window DURATION",
                          "--help",
                          "--version"}) {
    EXPECT_TRUE(absl::StrContains(help, opt)) << opt;
  }
  for (const char* def :
       {"Default: 127.0.0.1:1143.", "Default: 64K.", "Default: 64M.",
        "Default: 4M.", "Default: 1m.", "Default: 31m.", "Default: 15s.",
        "Default: 16000.", "Default: 32.", "Default: info.",
        "Default: false."}) {
    EXPECT_TRUE(absl::StrContains(help, def)) << def;
  }
  // Defaults that other options share ("10m") are checked in their own entry.
  for (const auto& [opt, def] :
       std::vector<std::pair<std::string, std::string>>{
           {"--store-links-per-shard N\n", "Default: 1000."},
           {"--store-link-idle DURATION\n", "Default: 30s."},
           {"--auth-cache-ttl DURATION\n", "Default: 10m."},
           {"--store-events-secret-file FILE\n", "Default: none."},
           {"--store-events-insecure\n", "Default: false."},
           {"--store-tls none|starttls|implicit\n", "Default: none."},
           {"--store-tls-ca-file FILE\n", "Default: system."},
           {"--store-master-separator STRING\n", "Default: *."},
           {"--login-fail-delay DURATION\n", "Default: 1s."},
           {"--login-fail-max N\n", "Default: 10."},
           {"--login-fail-window DURATION\n", "Default: 15m."}}) {
    const size_t at = help.find(opt);
    ASSERT_NE(at, std::string::npos) << opt;
    const size_t next = help.find("  --", at + opt.size());
    EXPECT_NE(help.substr(at, next - at).find(def), std::string::npos)
        << opt << def;
  }
  for (absl::string_view line : absl::StrSplit(help, '\n')) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

}  // namespace
}  // namespace pimap
