// Tests of the log line formats (log_format.h): logfmt's quoting and
// escaping, that every JSON line parses (RapidJSON, as json.loads would), the
// fixed key order, absent keys, and that a forged "\n user=root" inside a peer
// given name stays one line and one key.
#include "core/base/log_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace pimap {
namespace {

using log_internal::AppendLogfmtValue;
using log_internal::FormatRecord;

std::string Logfmt(absl::string_view value) {
  std::string out;
  AppendLogfmtValue(&out, value);
  return out;
}

Endpoint Peer() {
  Endpoint e;
  e.family = 4;
  e.ip = {192, 0, 2, 7};
  e.port = 40000;
  return e;
}

LogRecord Full() {
  LogRecord r;
  r.level = LogLevel::kInfo;
  r.shard = 1;
  r.when = absl::FromUnixMillis(1796677200123);  // 2026-12-07T21:00:00.123Z
  r.conn = 42002;
  r.user = "alice";
  r.device = "phone1";
  r.client = Peer();
  r.event = "login.ok";
  r.message = "login";
  return r;
}

// The keys of a logfmt line, in order (values with quotes are skipped over).
std::vector<std::string> LogfmtKeys(absl::string_view line) {
  std::vector<std::string> keys;
  size_t i = 0;
  while (i < line.size()) {
    const size_t eq = line.find('=', i);
    if (eq == absl::string_view::npos) break;
    keys.emplace_back(line.substr(i, eq - i));
    i = eq + 1;
    if (i < line.size() && line[i] == '"') {
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\') ++i;
      }
      ++i;
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\n') ++i;
    }
    while (i < line.size() && (line[i] == ' ' || line[i] == '\n')) ++i;
  }
  return keys;
}

TEST(LogfmtTest, BareWhenItCanBeQuotedWhenItMust) {
  EXPECT_EQ(Logfmt("alice"), "alice");
  EXPECT_EQ(Logfmt("alice@example.org"), "alice@example.org");
  EXPECT_EQ(Logfmt("Jürgen"), "Jürgen");  // UTF-8 as it is
  EXPECT_EQ(Logfmt(""), "\"\"");
  EXPECT_EQ(Logfmt("a b"), "\"a b\"");
  EXPECT_EQ(Logfmt("a=b"), "\"a=b\"");
  EXPECT_EQ(Logfmt("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(Logfmt("back\\slash"), "\"back\\\\slash\"");
  EXPECT_EQ(Logfmt("a\tb"), "\"a\\tb\"");
  EXPECT_EQ(Logfmt("a\r\nb"), "\"a\\r\\nb\"");
  EXPECT_EQ(Logfmt(std::string("a\0b\x7f", 4)), "\"a\\x00b\\x7f\"");
}

TEST(LogfmtTest, KeysInFixedOrder) {
  LogRecord r = Full();
  const std::pair<absl::string_view, std::string> fields[] = {
      {"reason", "bad password"}};
  r.event = "login.fail";
  r.fields = fields;
  EXPECT_EQ(FormatRecord(LogFormat::kLogfmt, r),
            "ts=2026-12-07T21:00:00.123Z level=info shard=1 conn=42002 "
            "user=alice device=phone1 client=192.0.2.7:40000 event=login.fail "
            "reason=\"bad password\" msg=login\n");
}

TEST(LogfmtTest, UnknownKeysAreAbsent) {
  LogRecord r;
  r.level = LogLevel::kWarning;
  r.when = absl::FromUnixMillis(0);
  r.message = "store unreachable";
  EXPECT_EQ(FormatRecord(LogFormat::kLogfmt, r),
            "ts=1970-01-01T00:00:00.000Z level=warning shard=main "
            "msg=\"store unreachable\"\n");
  r.shard = 0;
  r.message = "";
  EXPECT_EQ(FormatRecord(LogFormat::kLogfmt, r),
            "ts=1970-01-01T00:00:00.000Z level=warning shard=0 msg=\"\"\n");
}

TEST(LogfmtTest, AForgedKeyInAUserNameStaysOneLineAndOneKey) {
  LogRecord r = Full();
  r.user = "mallory\n user=root";
  r.device = "x\" user=\"root";
  r.message = "login\r\nts=0 level=error user=root msg=forged";
  const std::string line = FormatRecord(LogFormat::kLogfmt, r);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  EXPECT_EQ(LogfmtKeys(line),
            (std::vector<std::string>{"ts", "level", "shard", "conn", "user",
                                      "device", "client", "event", "msg"}))
      << line;
  EXPECT_NE(line.find(" user=\"mallory\\n user=root\" "), std::string::npos)
      << line;
  EXPECT_NE(line.find(" device=\"x\\\" user=\\\"root\" "), std::string::npos)
      << line;
}

TEST(LogfmtTest, LongValuesAreCut) {
  LogRecord r = Full();
  const std::string user(5000, 'u');
  const std::string message(100000, 'm');
  r.user = user;
  r.message = message;
  const std::string line = FormatRecord(LogFormat::kLogfmt, r);
  EXPECT_LT(line.size(), 10000u);
  EXPECT_NE(line.find("u...(truncated)\" "), std::string::npos);
  EXPECT_NE(line.find("m...(truncated)\"\n"), std::string::npos);
}

// Parses one JSON line as json.loads would; fails the test if it does not.
rapidjson::Document ParseJson(const std::string& line) {
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  rapidjson::Document d;
  d.Parse(line.data(), line.size() - 1);
  EXPECT_FALSE(d.HasParseError()) << line;
  EXPECT_TRUE(d.IsObject()) << line;
  return d;
}

TEST(JsonLogTest, OneObjectPerLineWithTheKeysInOrder) {
  LogRecord r = Full();
  const std::pair<absl::string_view, std::string> fields[] = {
      {"reason", "bad password"}};
  r.fields = fields;
  const std::string line = FormatRecord(LogFormat::kJson, r);
  EXPECT_EQ(line,
            "{\"ts\":\"2026-12-07T21:00:00.123Z\",\"level\":\"info\","
            "\"shard\":1,\"conn\":42002,\"user\":\"alice\",\"device\":"
            "\"phone1\",\"client\":\"192.0.2.7:40000\",\"event\":\"login.ok\","
            "\"reason\":\"bad password\",\"msg\":\"login\"}\n");
  rapidjson::Document d = ParseJson(line);
  std::vector<std::string> keys;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    keys.emplace_back(it->name.GetString());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"ts", "level", "shard", "conn",
                                            "user", "device", "client", "event",
                                            "reason", "msg"}));
  EXPECT_EQ(d["conn"].GetUint64(), 42002u);
}

TEST(JsonLogTest, UnknownKeysAreAbsentAndTheMainThreadIsNamed) {
  LogRecord r;
  r.when = absl::FromUnixMillis(0);
  r.message = "listening";
  rapidjson::Document d = ParseJson(FormatRecord(LogFormat::kJson, r));
  EXPECT_STREQ(d["shard"].GetString(), "main");
  for (const char* key : {"conn", "user", "device", "client", "event"}) {
    EXPECT_FALSE(d.HasMember(key)) << key;
  }
}

TEST(JsonLogTest, HostileTextStaysInItsString) {
  LogRecord r = Full();
  const std::string user =
      std::string("mallory\n\"user\":\"root\"\\\0\x01", 21);
  // Invalid UTF-8 (Latin-1, a cut sequence) becomes U+FFFD.
  r.device = "caf\xe9 \xe2\x82";
  r.message = "\xf0\x9f\x93\xa7 mail\r\n{\"level\":\"error\"}";
  r.user = user;
  const std::string line = FormatRecord(LogFormat::kJson, r);
  rapidjson::Document d = ParseJson(line);
  EXPECT_EQ(std::string(d["user"].GetString(), d["user"].GetStringLength()),
            user);
  EXPECT_STREQ(d["device"].GetString(),
               "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_STREQ(d["msg"].GetString(),
               "\xf0\x9f\x93\xa7 mail\r\n{\"level\":\"error\"}");
  EXPECT_STREQ(d["level"].GetString(), "info");
}

TEST(JsonLogTest, LongValuesAreCutAndStillParse) {
  LogRecord r = Full();
  // A 3-byte character across the cut.
  std::string message(8 * 1024 - 1, 'm');
  message += "\xe2\x82\xac tail";
  r.message = message;
  rapidjson::Document d = ParseJson(FormatRecord(LogFormat::kJson, r));
  const std::string msg = d["msg"].GetString();
  EXPECT_EQ(msg.substr(msg.size() - 18), "m\xef\xbf\xbd...(truncated)");
}

TEST(TextLogTest, TheFormatOfOld) {
  LogRecord r = Full();
  const std::pair<absl::string_view, std::string> fields[] = {
      {"via", "auth_cache"}};
  r.fields = fields;
  EXPECT_EQ(FormatRecord(LogFormat::kText, r),
            "2026-12-07T21:00:00.123Z I shard=1 client=192.0.2.7:40000 login "
            "user=\"alice\" device=\"phone1\" via=auth_cache conn=42002\n");
  LogRecord plain;
  plain.when = absl::FromUnixMillis(0);
  plain.message = "a\r\nFAKE\tz";
  EXPECT_EQ(FormatRecord(LogFormat::kText, plain),
            "1970-01-01T00:00:00.000Z I shard=main a\\r\\nFAKE\tz\n");
}

}  // namespace
}  // namespace pimap
