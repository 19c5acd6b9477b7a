// XFILTER tests: parsing (valid and invalid), aliases, DAYSBEFORETODAY mixed
// with keys, ToSearchProgram dates at fixed instants and zones, the device
// filter table, GET lines and the durable form.
#include "core/session/filter.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "core/imap/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The args of "t XFILTER <text>" as the real codec parses them.
std::vector<imap::Arg> Args(const std::string& text) {
  absl::StatusOr<imap::Command> cmd = imap::testing::ParseCommandBytes(
      absl::StrCat("t XFILTER ", text, "\r\n"));
  EXPECT_TRUE(cmd.ok()) << cmd.status() << " for " << text;
  return cmd.ok() ? cmd->args : std::vector<imap::Arg>{};
}

absl::StatusOr<XFilterCommand> Parse(const std::string& text) {
  return ParseXFilter(Args(text));
}

struct GoodCase {
  std::string input;
  std::string target;  // "" for ALL
  FilterKind kind;
  std::string shown;  // ToImapText, or "GET"
};

// Printable (CR/LF escaped) so that ctest discovers every case by name.
void PrintTo(const GoodCase& c, std::ostream* os) {
  *os << imap::QuoteForLog(c.input);
}

class XFilterGoodTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(XFilterGoodTest, Parses) {
  const GoodCase& c = GetParam();
  absl::StatusOr<XFilterCommand> cmd = Parse(c.input);
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->all_folders, c.target.empty());
  EXPECT_EQ(cmd->target, c.target);
  EXPECT_EQ(cmd->kind, c.kind);
  EXPECT_EQ(cmd->get ? "GET" : cmd->spec.ToImapText(), c.shown);
  if (!cmd->get) {
    // The canonical text parses back to the same spec.
    absl::StatusOr<XFilterCommand> again =
        Parse(absl::StrCat("X V ", cmd->spec.ToImapText()));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->spec, cmd->spec);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, XFilterGoodTest,
    ::testing::Values(
        GoodCase{"INBOX N SINCE 1-Jun-2003 FROM \"John\"", "INBOX",
                 FilterKind::kNotification, "SINCE 1-Jun-2003 FROM \"John\""},
        GoodCase{"ALL V GET", "", FilterKind::kView, "GET"},
        GoodCase{"inbox b get", "INBOX", FilterKind::kBoth, "GET"},
        GoodCase{"ALL N NONE", "", FilterKind::kNotification, "NONE"},
        GoodCase{"ALL P NOT ALL", "", FilterKind::kNotification, "NONE"},
        GoodCase{"Trash p none", "Trash", FilterKind::kNotification, "NONE"},
        GoodCase{"INBOX V DAYSBEFORETODAY 7", "INBOX", FilterKind::kView,
                 "DAYSBEFORETODAY 7"},
        GoodCase{"INBOX V DAYSBEFORETODAY0", "INBOX", FilterKind::kView,
                 "DAYSBEFORETODAY 0"},
        GoodCase{"INBOX V from boss DAYSBEFORETODAY 3 SUBJECT x", "INBOX",
                 FilterKind::kView,
                 "FROM \"boss\" SUBJECT \"x\" DAYSBEFORETODAY 3"},
        GoodCase{"INBOX V DAYSBEFORETODAY 9 DAYSBEFORETODAY 2", "INBOX",
                 FilterKind::kView, "DAYSBEFORETODAY 2"},
        GoodCase{"INBOX V ALL", "INBOX", FilterKind::kView, "ALL"},
        GoodCase{"INBOX V ALL ALL", "INBOX", FilterKind::kView, "ALL"},
        GoodCase{"INBOX V ALL DAYSBEFORETODAY 1", "INBOX", FilterKind::kView,
                 "DAYSBEFORETODAY 1"},
        GoodCase{"INBOX V ALL FROM a", "INBOX", FilterKind::kView,
                 "FROM \"a\""},
        GoodCase{"\"ALL\" V ALL", "ALL", FilterKind::kView, "ALL"},
        GoodCase{"~/INBOX V ALL", "INBOX", FilterKind::kView, "ALL"},
        GoodCase{"\"My Folder\" B SEEN", "My Folder", FilterKind::kBoth,
                 "SEEN"},
        GoodCase{"INBOX N OR FROM a (TO b CC c) NOT SEEN", "INBOX",
                 FilterKind::kNotification,
                 "OR FROM \"a\" (TO \"b\" CC \"c\") NOT SEEN"},
        GoodCase{"INBOX N header X-Prio 1 keyword $Urgent unkeyword Junk",
                 "INBOX", FilterKind::kNotification,
                 "HEADER \"X-Prio\" \"1\" KEYWORD $Urgent UNKEYWORD Junk"},
        GoodCase{"INBOX N LARGER 100 SMALLER 0 UID 1:*,7 1:5", "INBOX",
                 FilterKind::kNotification,
                 "LARGER 100 SMALLER 0 UID 1:*,7 1:5"},
        GoodCase{"INBOX N BEFORE \"01-jan-2020\" ON 29-Feb-2024 SENTON "
                 "1-Dec-1999 SENTBEFORE 2-Mar-2000 SENTSINCE 3-Apr-2001",
                 "INBOX", FilterKind::kNotification,
                 "BEFORE 1-Jan-2020 ON 29-Feb-2024 SENTON 1-Dec-1999 "
                 "SENTBEFORE 2-Mar-2000 SENTSINCE 3-Apr-2001"},
        GoodCase{"INBOX N ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT "
                 "UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
                 "INBOX", FilterKind::kNotification,
                 "ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT UNANSWERED "
                 "UNDELETED UNDRAFT UNFLAGGED UNSEEN"},
        GoodCase{"INBOX N BCC {3}\r\na b BODY \"q\\\"x\" TEXT nil", "INBOX",
                 FilterKind::kNotification,
                 "BCC \"a b\" BODY \"q\\\"x\" TEXT \"nil\""},
        GoodCase{"INBOX N FORWARDED UNFORWARDED", "INBOX",
                 FilterKind::kNotification,
                 "KEYWORD $Forwarded UNKEYWORD $Forwarded"}));

struct BadCase {
  std::string input;
  std::string message;  // substring of the error
};

// Printable (CR/LF escaped) so that ctest discovers every case by name.
void PrintTo(const BadCase& c, std::ostream* os) {
  *os << imap::QuoteForLog(c.input);
}

class XFilterBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(XFilterBadTest, Rejects) {
  const BadCase& c = GetParam();
  absl::StatusOr<XFilterCommand> cmd = Parse(c.input);
  ASSERT_FALSE(cmd.ok()) << c.input;
  EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cmd.status().message(), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, XFilterBadTest,
    ::testing::Values(
        BadCase{"INBOX V", "needs a target"},
        BadCase{"INBOX X ALL", "invalid filter kind"},
        BadCase{"INBOX (V) ALL", "invalid filter kind"},
        BadCase{"(INBOX) V ALL", "mailbox"},
        BadCase{"INBOX V GET ALL", "GET takes no"},
        BadCase{"INBOX V NONE SEEN", "NONE must be the whole"},
        BadCase{"INBOX V FROM", "FROM needs"},
        BadCase{"INBOX V FROM (a)", "needs a string"},
        BadCase{"INBOX V HEADER x", "HEADER needs"},
        BadCase{"INBOX V SINCE yesterday", "invalid date"},
        BadCase{"INBOX V SINCE 30-Feb-2003", "invalid date"},
        BadCase{"INBOX V SINCE 1-Foo-2003", "invalid date"},
        BadCase{"INBOX V SINCE 1-Jun-03", "invalid date"},
        BadCase{"INBOX V SINCE 123-Jun-2003", "invalid date"},
        BadCase{"INBOX V LARGER big", "LARGER needs a number"},
        BadCase{"INBOX V LARGER 4294967296", "LARGER needs a number"},
        BadCase{"INBOX V KEYWORD \\Seen", "keyword atom"},
        BadCase{"INBOX V KEYWORD \"x\"", "keyword atom"},
        BadCase{"INBOX V UID abc", "invalid UID set"},
        BadCase{"INBOX V UID $", "saved result"},
        BadCase{"INBOX V 0:3", "invalid sequence set"},
        BadCase{"INBOX V $", "saved result"},
        BadCase{"INBOX V NOT", "NOT needs 1 search key"},
        BadCase{"INBOX V OR SEEN", "OR needs 2 search keys"},
        BadCase{"INBOX V ()", "empty parenthesised"},
        BadCase{"INBOX V WITHIN 3", "unknown search key"},
        BadCase{"INBOX V YOUNGER 3", "unknown search key"},
        BadCase{"INBOX V CHARSET UTF-8 FROM x", "unknown search key"},
        BadCase{"INBOX V \"FROM\" x", "expected a search key"},
        BadCase{"INBOX V DAYSBEFORETODAY", "number of days"},
        BadCase{"INBOX V DAYSBEFORETODAY -1", "number of days"},
        BadCase{"INBOX V DAYSBEFORETODAY x", "number of days"},
        BadCase{"INBOX V DAYSBEFORETODAY 99999", "number of days"},
        BadCase{"INBOX V NOT DAYSBEFORETODAY 3", "top-level"},
        BadCase{"INBOX V (DAYSBEFORETODAY 3)", "top-level"},
        BadCase{"INBOX V OR SEEN DAYSBEFORETODAY 3", "top-level"}));

TEST(FilterSpecTest, ToSearchProgram) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::TimeZone plus10 = absl::FixedTimeZone(10 * 3600);
  const absl::TimeZone minus5 = absl::FixedTimeZone(-5 * 3600);
  // 2024-03-01 02:30 UTC: still 29 Feb in UTC-5, already 1 Mar +10.
  const absl::Time t =
      absl::FromCivil(absl::CivilSecond(2024, 3, 1, 2, 30, 0), utc);
  FilterSpec days;
  days.all = false;
  days.days_before_today = 0;
  EXPECT_EQ(days.ToSearchProgram(t, utc), "SINCE 1-Mar-2024");
  EXPECT_EQ(days.ToSearchProgram(t, minus5), "SINCE 29-Feb-2024");
  EXPECT_EQ(days.ToSearchProgram(t, plus10), "SINCE 1-Mar-2024");
  days.days_before_today = 1;
  EXPECT_EQ(days.ToSearchProgram(t, utc), "SINCE 29-Feb-2024");
  days.days_before_today = 366;
  EXPECT_EQ(days.ToSearchProgram(t, utc), "SINCE 1-Mar-2023");
  EXPECT_EQ(days.DaysCutoff(t, minus5),
            absl::FromCivil(absl::CivilSecond(2023, 2, 28, 5, 0, 0), utc));

  absl::StatusOr<XFilterCommand> mixed =
      Parse("INBOX V FROM boss DAYSBEFORETODAY 7");
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(mixed->spec.ToSearchProgram(t, utc),
            "FROM \"boss\" SINCE 23-Feb-2024");
  EXPECT_EQ(FilterSpec::All().ToSearchProgram(t, utc), "ALL");
  EXPECT_EQ(FilterSpec::None().ToSearchProgram(t, utc), "NOT ALL");
  EXPECT_EQ(FilterSpec::All().DaysCutoff(t, utc), std::nullopt);
}

TEST(FilterSpecTest, NonAsciiStringsBecomeLiterals) {
  absl::StatusOr<XFilterCommand> cmd = Parse("INBOX V SUBJECT {2}\r\n\xc3\xa9");
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->spec.ToImapText(), "SUBJECT {2}\r\n\xc3\xa9");
}

TEST(CanonicalSearchKeysTest, ValidatesAList) {
  absl::StatusOr<std::string> keys = CanonicalSearchKeys(Args("from x seen"));
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(*keys, "FROM \"x\" SEEN");
  EXPECT_FALSE(CanonicalSearchKeys({}).ok());
}

XFilterCommand Cmd(const std::string& text) {
  absl::StatusOr<XFilterCommand> c = Parse(text);
  EXPECT_TRUE(c.ok()) << c.status() << " for " << text;
  return c.ok() ? *c : XFilterCommand{};
}

TEST(DeviceFiltersTest, DefaultsAndOverrides) {
  DeviceFilters f(FilterSpec::None());
  EXPECT_EQ(f.View("INBOX").ToImapText(), "ALL");
  EXPECT_EQ(f.Notification("INBOX").ToImapText(), "NONE");
  f.Set(Cmd("INBOX N FROM boss"));
  f.Set(Cmd("Sent B DAYSBEFORETODAY 3"));
  EXPECT_EQ(f.Notification("INBOX").ToImapText(), "FROM \"boss\"");
  EXPECT_EQ(f.View("INBOX").ToImapText(), "ALL");
  EXPECT_EQ(f.View("Sent").ToImapText(), "DAYSBEFORETODAY 3");
  EXPECT_EQ(f.Notification("Sent").ToImapText(), "DAYSBEFORETODAY 3");
  f.Set(Cmd("ALL V GET"));  // no-op
  EXPECT_EQ(f.View("Sent").ToImapText(), "DAYSBEFORETODAY 3");
  // ALL N replaces every notification filter, views untouched.
  f.Set(Cmd("ALL P SEEN"));
  EXPECT_EQ(f.Notification("INBOX").ToImapText(), "SEEN");
  EXPECT_EQ(f.Notification("Sent").ToImapText(), "SEEN");
  EXPECT_EQ(f.View("Sent").ToImapText(), "DAYSBEFORETODAY 3");
  f.Set(Cmd("ALL B NOT ALL"));
  EXPECT_EQ(f.View("Sent").ToImapText(), "NONE");
  EXPECT_EQ(f.Notification("Other").ToImapText(), "NONE");

  DeviceFilters server_default(FilterSpec::All());
  EXPECT_EQ(server_default.Notification("INBOX").ToImapText(), "ALL");
}

TEST(DeviceFiltersTest, GetLines) {
  DeviceFilters f(FilterSpec::None());
  EXPECT_THAT(f.GetLines(Cmd("ALL V GET")), ElementsAre("* XFILTER ALL V ALL"));
  EXPECT_THAT(f.GetLines(Cmd("ALL B GET")),
              ElementsAre("* XFILTER ALL V ALL", "* XFILTER ALL N NONE"));
  EXPECT_THAT(f.GetLines(Cmd("ALL V GET"), {"TRASH", "INBOX"}),
              ElementsAre("* XFILTER INBOX V ALL", "* XFILTER TRASH V ALL"));
  f.Set(Cmd("TRASH V NONE"));
  f.Set(Cmd("\"My Box\" N FROM x"));
  f.Set(Cmd("\"all\" N SEEN"));
  EXPECT_THAT(f.GetLines(Cmd("ALL V GET"), {"INBOX"}),
              ElementsAre("* XFILTER INBOX V ALL", "* XFILTER TRASH V NONE"));
  EXPECT_THAT(f.GetLines(Cmd("ALL N GET")),
              ElementsAre("* XFILTER \"My Box\" N FROM \"x\"",
                          "* XFILTER \"all\" N SEEN"));
  EXPECT_THAT(f.GetLines(Cmd("TRASH B GET")),
              ElementsAre("* XFILTER TRASH V NONE", "* XFILTER TRASH N NONE"));
  EXPECT_THAT(f.GetLines(Cmd("inbox p GET")),
              ElementsAre("* XFILTER INBOX N NONE"));
}

TEST(DeviceFiltersTest, SerializeRoundTrip) {
  DeviceFilters f(FilterSpec::None());
  f.Set(Cmd("ALL V DAYSBEFORETODAY 30"));
  f.Set(
      Cmd("INBOX N OR FROM \"a b\" SUBJECT {2}\r\n\xc3\xa9 SINCE 1-Jun-2003"));
  f.Set(Cmd("\"ALL\" V NONE"));
  f.Set(Cmd("Sent B ALL"));
  const std::string text = f.Serialize();
  absl::StatusOr<DeviceFilters> back =
      DeviceFilters::Parse(text, FilterSpec::None());
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_TRUE(*back == f) << text;
  EXPECT_EQ(back->Serialize(), text);
  EXPECT_EQ(back->View("ALL").ToImapText(), "NONE");
  EXPECT_EQ(back->View("INBOX").ToImapText(), "DAYSBEFORETODAY 30");

  DeviceFilters empty(FilterSpec::All());
  absl::StatusOr<DeviceFilters> e2 =
      DeviceFilters::Parse(empty.Serialize(), FilterSpec::None());
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ(e2->Notification("x").ToImapText(), "ALL");  // stored default wins
}

TEST(DeviceFiltersTest, ParseRejectsCorruptText) {
  for (const char* bad :
       {"", "f XFILTER ALL V ALL\r\n", "f PIMAP-FILTERS 2\r\n",
        "f PIMAP-FILTERS 1\r\nf XFILTER ALL V FROM\r\n",
        "f PIMAP-FILTERS 1\r\nf XFILTER ALL B ALL\r\n",
        "f PIMAP-FILTERS 1\r\nf XFILTER ALL V GET\r\n",
        "f PIMAP-FILTERS 1\r\nf NOOP\r\n",
        "f PIMAP-FILTERS 1\r\nf XFILTER ALL V ALL"}) {
    EXPECT_FALSE(DeviceFilters::Parse(bad, FilterSpec::None()).ok()) << bad;
  }
}

}  // namespace
}  // namespace pimap::session
