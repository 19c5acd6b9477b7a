// pimapctl's human output (tools/pimapctl/render.h) from pimapd's JSON
// answers as tools/pimapd/admin_report.h renders them, and its client's query
// escaping.
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tools/pimapctl/admin_client.h"
#include "tools/pimapctl/render.h"
#include "tools/pimapd/admin_report.h"

namespace pimap::ctl {
namespace {

TEST(PimapctlRenderTest, AlignColumns) {
  EXPECT_EQ(AlignColumns({{"USER", "DEVICE", "X"},
                          {"alice", "d", "1"},
                          {"bo", "device2", ""}}),
            "USER   DEVICE   X\n"
            "alice  d        1\n"
            "bo     device2\n");
}

TEST(PimapctlRenderTest, HumanDuration) {
  EXPECT_EQ(HumanDuration(850), "850ms");
  EXPECT_EQ(HumanDuration(12000), "12s");
  EXPECT_EQ(HumanDuration(303000), "5m03s");
  EXPECT_EQ(HumanDuration(7800000), "2h10m");
  EXPECT_EQ(HumanDuration(273600000), "3d04h");
  EXPECT_EQ(HumanDuration(-5), "0ms");
}

TEST(PimapctlRenderTest, WhoFromPimapdsJson) {
  AdminShardReport merged;
  AdminDevice d;
  d.user = "alice";
  d.device = "phone";
  d.shard = 1;
  d.connected = true;
  d.binding = "imaps";
  d.idle_ms = 12000;
  d.store_link = true;
  d.journal = 3;
  merged.devices.push_back(d);
  d.device = "tablet-long-name";
  d.connected = false;
  d.binding = "";
  d.store_link = false;
  merged.devices.push_back(d);
  merged.users.push_back({"alice", 1, 2, true});
  absl::StatusOr<std::string> text = RenderWho(RenderWhoJson(merged, {0}));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "USER   DEVICE            SHARD  BINDING  STATE      IDLE  "
            "STORE-LINK  JOURNAL\n"
            "alice  phone             1      imaps    connected  12s   yes "
            "        3\n"
            "alice  tablet-long-name  1      -        away       12s   no  "
            "        3\n"
            "\n"
            "USER   SHARD  PARKED-STOCK-CLIENTS  STORE-WATCH\n"
            "alice  1      2                     open\n"
            "warning: shard(s) 0 did not answer in time; their sessions are "
            "missing\n");
  EXPECT_EQ(*RenderWho(RenderWhoJson(AdminShardReport{}, {})),
            "no P-IMAP device sessions\n");
  EXPECT_FALSE(RenderWho("not json").ok());
  EXPECT_FALSE(RenderWho("{\"sessions\":[]}").ok());
}

TEST(PimapctlRenderTest, SessionsShowFiltersAndPrefsAsCommands) {
  AdminShardReport merged;
  AdminSession s;
  s.device.user = "alice";
  s.device.device = "phone";
  s.device.connected = true;
  s.device.binding = "imap";
  s.session_id = 7;
  s.selected = "INBOX";
  s.journal_limit = 10000;
  s.filters =
      "f PIMAP-FILTERS 1\r\nf XFILTER ALL V ALL\r\nf XFILTER INBOX N ALL\r\n";
  s.prefs = "p PIMAP-PREFS 1\r\np XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL NONE\r\n";
  s.uidvalidity = 9;
  s.modseq = 120;
  s.view_messages = 4;
  s.checkpoint_dirty = true;
  merged.sessions.push_back(s);
  absl::StatusOr<std::string> text =
      RenderSessions(RenderSessionsJson(merged, {}));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_TRUE(absl::StartsWith(
      *text,
      "alice#phone  (shard 0, session 7, connected via imap, idle "
      "0ms)\n"))
      << *text;
  for (const char* want :
       {"  selected:       INBOX\n", "  journal:        0 of 10000\n",
        "  checkpoint:     uidvalidity 9, modseq 120, 4 messages, dirty\n",
        "  filters:        XFILTER ALL V ALL\n",
        "                  XFILTER INBOX N ALL\n",
        "  prefs:          XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL NONE\n"}) {
    EXPECT_TRUE(absl::StrContains(*text, want)) << want << "\n" << *text;
  }
  EXPECT_FALSE(absl::StrContains(*text, "PIMAP-FILTERS")) << *text;
}

TEST(PimapctlRenderTest, KickAndErrors) {
  AdminShardReport merged;
  merged.kicked.push_back({"alice", "a", 0, true, true, true});
  merged.kicked.push_back({"alice", "b", 0, false, false, false});
  EXPECT_EQ(*RenderKick(RenderKickJson(merged, {})),
            "alice#a (shard 0): connection closed, session ended\n"
            "alice#b (shard 0): not connected; nothing done\n");
  EXPECT_EQ(*RenderKick(RenderKickJson(AdminShardReport{}, {})), "");
  EXPECT_EQ(ErrorMessage(RenderErrorJson("use the Unix socket")),
            "use the Unix socket");
  EXPECT_EQ(ErrorMessage("plain text\n"), "plain text");
}

TEST(PimapctlRenderTest, Drain) {
  AdminShardReport merged;
  merged.drained = 5;
  EXPECT_EQ(*RenderDrain(RenderDrainJson(merged, {})),
            "draining: device listeners closed, 5 connection(s) told BYE "
            "[UNAVAILABLE]\n");
  EXPECT_FALSE(RenderDrain("{}").ok());
}

TEST(PimapctlRenderTest, StatsKeepTheSums) {
  const std::string metrics =
      "# HELP pimap_sessions x\n# TYPE pimap_sessions gauge\n"
      "pimap_sessions{shard=\"0\"} 2\npimap_sessions{shard=\"1\"} 1\n"
      "pimap_sessions 3\npimap_heap_in_use_bytes 123456\n"
      "pimap_x_seconds_bucket{le=\"+Inf\"} 4\npimap_odd NaN\n";
  EXPECT_EQ(RenderStats(metrics, false),
            "pimap_sessions           3\n"
            "pimap_heap_in_use_bytes  123456\n"
            "pimap_odd                NaN\n");
  EXPECT_EQ(RenderStats(metrics, true),
            "{\"pimap_sessions\":3,\"pimap_heap_in_use_bytes\":123456,"
            "\"pimap_odd\":\"NaN\"}\n");
}

TEST(PimapctlRenderTest, QueryEscape) {
  EXPECT_EQ(QueryEscape("alice@example.org"), "alice%40example.org");
  EXPECT_EQ(QueryEscape("a b#c&d=e"), "a%20b%23c%26d%3De");
  EXPECT_EQ(QueryEscape("Az09-_.~"), "Az09-_.~");
}

}  // namespace
}  // namespace pimap::ctl
