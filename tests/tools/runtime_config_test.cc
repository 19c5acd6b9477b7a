// What a SIGHUP reload applies and what it leaves for a restart
// (tools/pimapd/runtime_config.h PlanReload), and the settings made from the
// options (BuildRuntimeConfig).
#include "tools/pimapd/runtime_config.h"

#include <initializer_list>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

Options Parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"pimapd", "--store", "127.0.0.1:143"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandLine> r =
      ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->options : Options{};
}

TEST(PlanReloadTest, NothingChanged) {
  const Options running = Parse({});
  ReloadPlan plan = PlanReload(running, Parse({}));
  EXPECT_THAT(plan.applied, IsEmpty());
  EXPECT_THAT(plan.need_restart, IsEmpty());
}

TEST(PlanReloadTest, LimitsTimeoutsAndTheStoreAreApplied) {
  const Options running = Parse({});
  const Options fresh =
      Parse({"--log-level", "debug", "--log-format", "json", "--max-line-bytes",
             "2048", "--idle-timeout", "5m", "--journal-limit", "77",
             "--default-notification-filter", "ALL", "--store-link-idle", "3s",
             "--login-fail-max", "3"});
  ReloadPlan plan = PlanReload(running, fresh);
  EXPECT_THAT(plan.applied,
              UnorderedElementsAre("log-level", "log-format", "max-line-bytes",
                                   "idle-timeout", "journal-limit",
                                   "default-notification-filter",
                                   "store-link-idle", "login-fail-max"));
  EXPECT_THAT(plan.need_restart, IsEmpty());
  EXPECT_EQ(plan.options.log_level, LogLevel::kDebug);
  EXPECT_EQ(plan.options.log_format, LogFormat::kJson);
  EXPECT_EQ(plan.options.max_line_bytes, 2048u);
  EXPECT_EQ(plan.options.idle_timeout, absl::Minutes(5));
  EXPECT_EQ(plan.options.journal_limit, 77u);
  EXPECT_EQ(plan.options.default_notification_filter, "ALL");
  EXPECT_EQ(plan.options.store_link_idle, absl::Seconds(3));
  EXPECT_EQ(plan.options.login_fail_max, 3);

  ReloadPlan store = PlanReload(running, [] {
    std::vector<const char*> argv = {"pimapd", "--store", "127.0.0.1:1430"};
    return ParseCommandLine(3, argv.data())->options;
  }());
  EXPECT_THAT(store.applied, ElementsAre("store"));
  EXPECT_EQ(store.options.store.port, 1430);
}

// Listeners, shards, event sources, the state directory, the user-name
// format: named, and kept as they run.
TEST(PlanReloadTest, WhatNeedsARestartIsNamedAndKept) {
  const Options running = Parse({});
  const Options fresh =
      Parse({"--shards", "3", "--imap-listen", "127.0.0.1:2143",
             "--user-name-format", "%u", "--state-dir", "/tmp/x",
             "--store-events", "both", "--store-events-listen",
             "127.0.0.1:9999", "--store-events-insecure", "--max-line-bytes",
             "4096"});
  ReloadPlan plan = PlanReload(running, fresh);
  EXPECT_THAT(plan.applied, ElementsAre("max-line-bytes"));
  EXPECT_THAT(plan.need_restart,
              UnorderedElementsAre("shards", "imap-listen", "user-name-format",
                                   "user-name-case",  // another view of it
                                   "state-dir", "store-events",
                                   "store-events-listen",
                                   "store-events-insecure"));
  EXPECT_EQ(plan.options.shards, running.shards);
  EXPECT_EQ(plan.options.imap_listen->port, running.imap_listen->port);
  EXPECT_EQ(plan.options.user_name_format, running.user_name_format);
  EXPECT_EQ(plan.options.state_dir, running.state_dir);
  EXPECT_EQ(plan.options.store_events, running.store_events);
  EXPECT_FALSE(plan.options.store_events_listen.has_value());
  EXPECT_EQ(plan.options.max_line_bytes, 4096u);
}

TEST(BuildRuntimeConfigTest, CarriesTheOptions) {
  const Options options = Parse(
      {"--max-line-bytes", "2048", "--idle-timeout", "5m", "--store-events",
       "notify", "--store-link-idle", "3s", "--store-links-per-shard", "9",
       "--http-idle-max", "2m", "--proxy-protocol-from", "192.0.2.0/24",
       "--max-output-bytes", "9M"});
  absl::StatusOr<RuntimeConfig> c = BuildRuntimeConfig(options, ServerTls{});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->imap.limits.max_line_bytes, 2048u);
  EXPECT_EQ(c->http.session.limits.max_line_bytes, 2048u);
  EXPECT_EQ(c->upstream.limits.max_line_bytes, 2048u);
  EXPECT_EQ(c->imap.idle_timeout_ms, 300000);
  EXPECT_EQ(c->http.session.session_idle_ms, 300000);
  EXPECT_EQ(c->http.session.idle_max_ms, 120000);
  EXPECT_EQ(c->upstream.port, 143);
  EXPECT_TRUE(c->session.watch);
  EXPECT_FALSE(c->session.pushes);
  EXPECT_EQ(c->session.parked_watch_linger_ms, 3000);
  EXPECT_EQ(c->pool.max_links, 9u);
  EXPECT_EQ(c->pool.idle_timeout_ms, 3000);
  // Both listeners believe the same balancers.
  ASSERT_EQ(c->imap.proxy_protocol.trusted.size(), 1u);
  EXPECT_EQ(c->imap.proxy_protocol.trusted[0].ToString(), "192.0.2.0/24");
  EXPECT_EQ(c->http.proxy_protocol.trusted, c->imap.proxy_protocol.trusted);
  // One --max-output-bytes for both bindings' sessions.
  EXPECT_EQ(c->http.max_output_bytes, 9u << 20);
  EXPECT_EQ(c->imap.max_output_bytes, 9u << 20);
}

TEST(BuildRuntimeConfigTest, AnUnreadableMasterPasswordFileIsAnError) {
  const Options options =
      Parse({"--store-master-user", "master", "--store-master-password-file",
             "/nonexistent/pw"});
  absl::StatusOr<RuntimeConfig> c = BuildRuntimeConfig(options, ServerTls{});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              ::testing::HasSubstr("/nonexistent/pw"));
}

}  // namespace
}  // namespace pimap
