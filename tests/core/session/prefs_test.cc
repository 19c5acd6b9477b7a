// DevicePrefs tests: each preference, unknown names (BAD), unsupported values
// (NO), malformed fetch arguments (BAD), Get rendering and the durable form.
#include "core/session/prefs.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/imap/writer.h"
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
  ASSERT_TRUE(prefs.Set(Args("PIMAP_OUTBAND_CHANNEL wap_push")).ok());
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

}  // namespace
}  // namespace pimap::session
