// DevicePrefs tests: each preference, unknown names (BAD), unsupported values
// (NO), malformed fetch arguments (BAD), Get rendering and the durable form.
#include "core/session/prefs.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/imap/writer.h"
#include "core/session/outband_address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::session {
namespace {

using ::testing::HasSubstr;

std::vector<imap::Arg> Args(const std::string& text) {
  absl::StatusOr<imap::Command> cmd =
      imap::testing::ParseCommandBytes(absl::StrCat("t X ", text, "\r\n"));
  EXPECT_TRUE(cmd.ok()) << cmd.status() << " for " << text;
  return cmd.ok() ? cmd->args : std::vector<imap::Arg>{};
}

struct SetCase {
  std::string input;
  absl::StatusCode code;
  std::string get_name;  // what to read back (OK cases)
  std::string shown;     // Get() payload, or an error substring
};

// Printable (CR/LF escaped) so that ctest discovers every case by name.
void PrintTo(const SetCase& c, std::ostream* os) {
  *os << imap::QuoteForLog(c.input);
}

class PrefsSetTest : public ::testing::TestWithParam<SetCase> {};

TEST_P(PrefsSetTest, Sets) {
  const SetCase& c = GetParam();
  DevicePrefs prefs;
  const DevicePrefs before = prefs;
  absl::Status s = prefs.Set(Args(c.input));
  EXPECT_EQ(s.code(), c.code) << s;
  if (s.ok()) {
    absl::StatusOr<std::string> got = prefs.Get(Args(c.get_name));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.shown);
  } else {
    EXPECT_THAT(s.message(), HasSubstr(c.shown));
    EXPECT_TRUE(prefs == before) << "a failed Set must change nothing";
  }
}

constexpr auto kOk = absl::StatusCode::kOk;
constexpr auto kBad = absl::StatusCode::kInvalidArgument;
constexpr auto kNo = absl::StatusCode::kFailedPrecondition;

INSTANTIATE_TEST_SUITE_P(
    Table, PrefsSetTest,
    ::testing::Values(
        SetCase{"PIMAP_OUTBAND_ADDRESS 13335559999", kOk,
                "(PIMAP_OUTBAND_ADDRESS)",
                "(PIMAP_OUTBAND_ADDRESS 13335559999)"},
        SetCase{"pimap_outband_address \"joe smith@foo.com\"", kOk,
                "PIMAP_OUTBAND_ADDRESS",
                "(PIMAP_OUTBAND_ADDRESS \"joe smith@foo.com\")"},
        SetCase{"PIMAP_OUTBAND_ADDRESS {4}\r\nNIL!", kOk,
                "PIMAP_OUTBAND_ADDRESS", "(PIMAP_OUTBAND_ADDRESS NIL!)"},
        SetCase{"PIMAP_OUTBAND_ADDRESS (x)", kBad, "", "address"},
        SetCase{"PIMAP_OUTBAND_CHANNEL SMS", kOk, "(PIMAP_OUTBAND_CHANNEL)",
                "(PIMAP_OUTBAND_CHANNEL SMS)"},
        SetCase{"PIMAP_OUTBAND_CHANNEL wap_push", kOk,
                "(PIMAP_OUTBAND_CHANNEL)", "(PIMAP_OUTBAND_CHANNEL WAP_PUSH)"},
        SetCase{"PIMAP_OUTBAND_CHANNEL \"udp\"", kOk, "(PIMAP_OUTBAND_CHANNEL)",
                "(PIMAP_OUTBAND_CHANNEL UDP)"},
        SetCase{"PIMAP_OUTBAND_CHANNEL None", kOk, "(PIMAP_OUTBAND_CHANNEL)",
                "(PIMAP_OUTBAND_CHANNEL NONE)"},
        SetCase{"PIMAP_OUTBAND_CHANNEL JMS", kNo, "", "unsupported value"},
        SetCase{"PIMAP_OUTBAND_CHANNEL MMS", kNo, "", "unsupported value"},
        SetCase{"PIMAP_OUTBAND_CHANNEL carrier-pigeon", kNo, "",
                "unsupported value"},
        SetCase{"PIMAP_OUTBAND_CHANNEL (SMS)", kBad, "", "atom"},
        SetCase{"PIMAP_EVENT_FILTER new", kOk, "(PIMAP_EVENT_FILTER)",
                "(PIMAP_EVENT_FILTER NEW)"},
        SetCase{"PIMAP_EVENT_FILTER NONE", kOk, "(PIMAP_EVENT_FILTER)",
                "(PIMAP_EVENT_FILTER NONE)"},
        SetCase{"PIMAP_EVENT_FILTER SOME", kNo, "", "unsupported value"},
        SetCase{"PIMAP_INBAND_NEW_FORMAT (ALL BODY[])", kBad, "",
                "invalid fetch item"},
        SetCase{"PIMAP_INBAND_NEW_FORMAT (flags body[] uid)", kOk,
                "(PIMAP_INBAND_NEW_FORMAT)",
                "(PIMAP_INBAND_NEW_FORMAT (FLAGS BODY[] UID))"},
        SetCase{"PIMAP_INBAND_NEW_FORMAT all", kOk, "(PIMAP_INBAND_NEW_FORMAT)",
                "(PIMAP_INBAND_NEW_FORMAT ALL)"},
        SetCase{"PIMAP_INBAND_NEW_FORMAT NONE", kOk,
                "(PIMAP_INBAND_NEW_FORMAT)", "(PIMAP_INBAND_NEW_FORMAT NONE)"},
        SetCase{"PIMAP_INBAND_NEW_FORMAT "
                "(ENVELOPE INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY "
                "RFC822 RFC822.HEADER RFC822.TEXT MODSEQ)",
                kOk, "(PIMAP_INBAND_NEW_FORMAT)",
                "(PIMAP_INBAND_NEW_FORMAT (ENVELOPE INTERNALDATE RFC822.SIZE "
                "BODYSTRUCTURE BODY RFC822 RFC822.HEADER RFC822.TEXT MODSEQ))"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT "
                "body.peek[header.fields (from \"To\" subject)]<0.1024>",
                kOk, "(PIMAP_OUTBAND_NEW_FORMAT)",
                "(PIMAP_OUTBAND_NEW_FORMAT "
                "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT)]<0.1024>)"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT (BODY[1.2.MIME] BODY[3.TEXT] "
                "BODY[2.HEADER.FIELDS.NOT (X-A)] BODY[TEXT]<10.5> "
                "BINARY[1] BINARY.PEEK[]<0.10> BINARY.SIZE[2.1] BODY[4])",
                kOk, "(PIMAP_OUTBAND_NEW_FORMAT)",
                "(PIMAP_OUTBAND_NEW_FORMAT (BODY[1.2.MIME] BODY[3.TEXT] "
                "BODY[2.HEADER.FIELDS.NOT (X-A)] BODY[TEXT]<10.5> "
                "BINARY[1] BINARY.PEEK[]<0.10> BINARY.SIZE[2.1] BODY[4]))"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT FLAGZ", kBad, "", "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[MIME]", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[0]", kBad, "", "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[1.]", kBad, "", "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[HEADER.FIELDS ()]", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[HEADER.FIELDS]", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[]<0.0>", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BODY[]<5>", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BINARY[TEXT]", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT BINARY.SIZE[1]<0.5>", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT ()", kBad, "", "empty"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT (FLAGS (UID))", kBad, "",
                "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT \"ALL\"", kBad, "", "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT (FAST)", kBad, "", "invalid fetch"},
        SetCase{"PIMAP_OUTBAND_NEW_FORMAT", kBad, "", "exactly one value"},
        SetCase{"PIMAP_OUTBAND_CHANNEL SMS UDP", kBad, "", "exactly one value"},
        SetCase{"PIMAP_INBAND_PUSH ON", kBad, "", "unknown preference"},
        SetCase{"PIMAP_FOO 1", kBad, "", "unknown preference"},
        SetCase{"\"PIMAP_OUTBAND_CHANNEL\" SMS", kBad, "",
                "needs a preference"}));

TEST(PrefsTest, DefaultsAndMultiGet) {
  DevicePrefs prefs;
  absl::StatusOr<std::string> got =
      prefs.Get(Args("(PIMAP_OUTBAND_ADDRESS PIMAP_OUTBAND_CHANNEL "
                     "PIMAP_INBAND_NEW_FORMAT PIMAP_OUTBAND_NEW_FORMAT "
                     "pimap_event_filter)"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got,
            "(PIMAP_OUTBAND_ADDRESS \"\" PIMAP_OUTBAND_CHANNEL NONE "
            "PIMAP_INBAND_NEW_FORMAT NONE PIMAP_OUTBAND_NEW_FORMAT NONE "
            "PIMAP_EVENT_FILTER ALL)");
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_CHANNEL SMS")).ok());
  ASSERT_TRUE(prefs.Set(Args("PIMAP_INBAND_NEW_FORMAT (ALL)")).ok() == false);
  ASSERT_TRUE(prefs.Set(Args("PIMAP_INBAND_NEW_FORMAT (FLAGS BODY[])")).ok());
  got = prefs.Get(Args("(PIMAP_OUTBAND_CHANNEL PIMAP_INBAND_NEW_FORMAT)"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(
      *got,
      "(PIMAP_OUTBAND_CHANNEL SMS PIMAP_INBAND_NEW_FORMAT (FLAGS BODY[]))");
}

TEST(PrefsTest, GetErrors) {
  DevicePrefs prefs;
  EXPECT_EQ(prefs.Get({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(prefs.Get(Args("()")).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::string> got =
      prefs.Get(Args("(PIMAP_OUTBAND_CHANNEL PIMAP_NOPE)"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("PIMAP_NOPE"));
  EXPECT_EQ(prefs.Get(Args("(\"PIMAP_OUTBAND_CHANNEL\")")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PrefsTest, SerializeRoundTrip) {
  DevicePrefs prefs;
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_ADDRESS \"a \\\"b\\\" c\"")).ok());
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_CHANNEL udp")).ok());
  ASSERT_TRUE(prefs
                  .Set(Args("PIMAP_INBAND_NEW_FORMAT (FLAGS "
                            "BODY.PEEK[HEADER.FIELDS (FROM)]<0.9>)"))
                  .ok());
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_NEW_FORMAT fast")).ok());
  ASSERT_TRUE(prefs.Set(Args("PIMAP_EVENT_FILTER NEW")).ok());
  const std::string text = prefs.Serialize();
  absl::StatusOr<DevicePrefs> back = DevicePrefs::Parse(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_TRUE(*back == prefs) << text;
  EXPECT_EQ(back->outband_address, "a \"b\" c");
  EXPECT_EQ(back->Serialize(), text);

  DevicePrefs defaults;
  absl::StatusOr<DevicePrefs> d = DevicePrefs::Parse(defaults.Serialize());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(*d == defaults);

  DevicePrefs eight_bit;
  eight_bit.outband_address = "j\xc3\xb6rg@example.com";
  absl::StatusOr<DevicePrefs> e = DevicePrefs::Parse(eight_bit.Serialize());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->outband_address, eight_bit.outband_address);
}

TEST(PrefsTest, ParseRejectsCorruptText) {
  for (const char* bad :
       {"", "p PIMAP-PREFS 2\r\n",
        "p XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL SMS\r\n",
        "p PIMAP-PREFS 1\r\np XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL JMS\r\n",
        "p PIMAP-PREFS 1\r\np XSETPIMAPPREF PIMAP_BOGUS 1\r\n",
        "p PIMAP-PREFS 1\r\np NOOP\r\n",
        "p PIMAP-PREFS 1\r\np XSETPIMAPPREF PIMAP_EVENT_FILTER NEW"}) {
    EXPECT_FALSE(DevicePrefs::Parse(bad).ok()) << bad;
  }
}

// A Web Push subscription as browsers give it (the keys of RFC 8291 §5).
constexpr char kSubscription[] =
    R"({"endpoint":"https://push.example.net:8443/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",)"
    R"("expirationTime":null,"keys":{)"
    R"("p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",)"
    R"("auth":"BTBZMqHH6r4Tts7J_aSIgg"}})";

std::string Quoted(absl::string_view text) {
  return absl::StrCat("{", text.size(), "}\r\n", text);
}

TEST(PrefsWebPushTest, SubscriptionParsed) {
  absl::StatusOr<WebPushSubscription> sub =
      ParseWebPushSubscription(kSubscription);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(sub->host, "push.example.net");
  EXPECT_EQ(sub->port, "8443");
  EXPECT_EQ(sub->path, "/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV");
  EXPECT_EQ(sub->origin, "https://push.example.net:8443");
  EXPECT_EQ(sub->p256dh.size(), 65u);
  EXPECT_EQ(sub->auth.size(), 16u);
  absl::StatusOr<WebPushSubscription> v6 = ParseWebPushSubscription(
      absl::StrReplaceAll(kSubscription, {{"push.example.net:8443", "[::1]"}}));
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->origin, "https://[::1]");
}

TEST(PrefsWebPushTest, ChannelAndAddress) {
  DevicePrefs prefs;
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_CHANNEL webpush")).ok());
  EXPECT_EQ(prefs.outband_channel, "WEBPUSH");
  absl::Status s = prefs.Set(
      Args(absl::StrCat("PIMAP_OUTBAND_ADDRESS ", Quoted(kSubscription))));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(prefs.outband_address, kSubscription);
  // Survives the durable form.
  absl::StatusOr<DevicePrefs> back = DevicePrefs::Parse(prefs.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == prefs);

  // Under WEBPUSH a phone number is no address: BAD, nothing changes.
  const DevicePrefs before = prefs;
  s = prefs.Set(Args("PIMAP_OUTBAND_ADDRESS 13335559999"));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(prefs == before);
  // Nor may WEBPUSH be chosen with a phone number set.
  DevicePrefs sms;
  ASSERT_TRUE(sms.Set(Args("PIMAP_OUTBAND_ADDRESS 13335559999")).ok());
  s = sms.Set(Args("PIMAP_OUTBAND_CHANNEL WEBPUSH"));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(sms.outband_channel, "NONE");
}

TEST(PrefsWebPushTest, MalformedSubscriptionsAreBad) {
  const std::string good = kSubscription;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not a JSON object"},
      {good + "x", "not a JSON object"},
      {absl::StrReplaceAll(good, {{"https://", "http://"}}), "https"},
      {absl::StrReplaceAll(good, {{"https://", "https://u@"}}), "user info"},
      {absl::StrReplaceAll(good, {{":8443", ":99999"}}), "port"},
      {absl::StrReplaceAll(good, {{"push/", "pu sh/"}}), "spaces"},
      {absl::StrReplaceAll(good, {{"\"auth\":\"BTBZMqHH6r4Tts7J_aSIgg\"",
                                   "\"auth\":\"BTBZMqHH6r4Tts7J\""}}),
       "keys.auth"},
      {absl::StrReplaceAll(good, {{"\"p256dh\":\"BCVx", "\"p256dh\":\"BCV"}}),
       "keys.p256dh"},
      {absl::StrReplaceAll(good, {{"\"keys\"", "\"kays\""}}), "keys missing"},
      {R"({"keys":{}})", "endpoint missing"},
  };
  for (const auto& [address, why] : cases) {
    DevicePrefs prefs;
    absl::Status s = prefs.Set(
        Args(absl::StrCat("PIMAP_OUTBAND_ADDRESS ", Quoted(address))));
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << address << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(why)) << address;
    EXPECT_EQ(prefs.outband_address, "");
  }
}

TEST(PrefsEmnTest, AddressesOfSmsAndWapPush) {
  for (const char* good : {"+15551234567", "13335559999", "123"}) {
    EXPECT_TRUE(CheckEmnAddress("SMS", good).ok()) << good;
    EXPECT_TRUE(CheckEmnAddress("WAP_PUSH", good).ok()) << good;
  }
  for (const char* good :
       {"WAPPUSH=+15551234567/TYPE=PLMN@ppg.operator.net",
        "WAPPUSH=10.1.2.3/TYPE=IPv4", "WAPPUSH=joe%40foo.com/TYPE=USER"}) {
    EXPECT_TRUE(CheckEmnAddress("WAP_PUSH", good).ok()) << good;
    EXPECT_TRUE(absl::IsInvalidArgument(CheckEmnAddress("SMS", good))) << good;
  }
  for (const char* bad :
       {"", "+", "12", "1234567890123456", "+1 555 1234", "++15551234",
        "joe@foo.com", "15551234x", "WAPPUSH=/TYPE=PLMN",
        "WAPPUSH=+1555/TYPE=", "WAPPUSH=+1555/TYPE=PLMN@", "WAPPUSH=+1555",
        "WAPPUSH=a b/TYPE=PLMN", "WAPPUSH=+1555/TYPE=PLMN@bad_host"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(CheckEmnAddress("WAP_PUSH", bad)))
        << bad;
  }
  EXPECT_TRUE(
      absl::IsInvalidArgument(CheckEmnAddress("SMS", std::string(300, '1'))));
  // Other channels are not this check's.
  EXPECT_TRUE(CheckEmnAddress("UDP", "host:1").ok());
  EXPECT_TRUE(CheckEmnAddress("NONE", "anything").ok());
}

TEST(PrefsEmnTest, BadAtXSetPimapPrefWhicheverComesLast) {
  // Channel first, then a malformed address: BAD, nothing changes.
  DevicePrefs prefs;
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_CHANNEL SMS")).ok());
  absl::Status s = prefs.Set(Args("PIMAP_OUTBAND_ADDRESS \"joe smith\""));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("MSISDN"));
  EXPECT_EQ(prefs.outband_address, "");
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_ADDRESS +15551234567")).ok());
  // Clearing it is fine.
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_ADDRESS \"\"")).ok());
  // Address first (for another channel), then SMS/WAP_PUSH: BAD.
  DevicePrefs udp;
  ASSERT_TRUE(udp.Set(Args("PIMAP_OUTBAND_ADDRESS host.example:4000")).ok());
  s = udp.Set(Args("PIMAP_OUTBAND_CHANNEL wap_push"));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(udp.outband_channel, "NONE");
  ASSERT_TRUE(udp.Set(Args("PIMAP_OUTBAND_ADDRESS "
                           "WAPPUSH=+15551234567/TYPE=PLMN@ppg.example.net"))
                  .ok());
  ASSERT_TRUE(udp.Set(Args("PIMAP_OUTBAND_CHANNEL wap_push")).ok());
  // A durable form written before the check existed still loads.
  absl::StatusOr<DevicePrefs> old = DevicePrefs::Parse(
      "p PIMAP-PREFS 1\r\np XSETPIMAPPREF PIMAP_OUTBAND_ADDRESS "
      "\"joe smith@foo.com\"\r\np XSETPIMAPPREF PIMAP_OUTBAND_CHANNEL "
      "SMS\r\n");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->outband_channel, "SMS");
}

}  // namespace
}  // namespace pimap::session
