// Virtual folders (core/session/vfolder.h): XPSEARCH's parsing, the AND of two
// searches, LIST's wildcards, the bounds and the durable form.
#include "core/session/vfolder.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;

absl::StatusOr<XPsearchCommand> Parse(absl::string_view args) {
  absl::StatusOr<imap::Command> c = imap::testing::ParseCommandBytes(
      absl::StrCat("t XPSEARCH ", args, "\r\n"));
  if (!c.ok()) return c.status();
  return ParseXPsearch(c->args);
}

FilterSpec Keys(absl::string_view keys) {
  absl::StatusOr<XPsearchCommand> p = Parse(absl::StrCat("x ", keys));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? p->spec : FilterSpec::None();
}

TEST(ParseXPsearchTest, NameAndKeysRenderedCanonically) {
  absl::StatusOr<XPsearchCommand> p = Parse("from_john flagged FROM John");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "from_john");
  EXPECT_EQ(p->spec.ToImapText(), "FLAGGED FROM \"John\"");
}

TEST(ParseXPsearchTest, CharsetUtf8IsAcceptedOthersAreNot) {
  absl::StatusOr<XPsearchCommand> p = Parse("v CHARSET UTF-8 SUBJECT x");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->spec.ToImapText(), "SUBJECT \"x\"");
  EXPECT_TRUE(
      absl::IsFailedPrecondition(Parse("v CHARSET KOI8-R SUBJECT x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Parse("v CHARSET UTF-8").status()));
}

TEST(ParseXPsearchTest, BadInputIsInvalidArgument) {
  EXPECT_TRUE(absl::IsInvalidArgument(Parse("onlyaname").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Parse("v NOSUCHKEY").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Parse("v GET").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Parse("v LARGER").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      Parse(absl::StrCat(std::string(300, 'n'), " ALL")).status()));
}

TEST(AndSpecsTest, CombinesKeysAndDays) {
  EXPECT_EQ(AndSpecs(FilterSpec::All(), Keys("FLAGGED")), Keys("FLAGGED"));
  EXPECT_EQ(AndSpecs(Keys("SEEN"), FilterSpec::All()), Keys("SEEN"));
  EXPECT_TRUE(AndSpecs(Keys("SEEN"), FilterSpec::None()).none);
  const FilterSpec both = AndSpecs(Keys("OR SEEN DELETED DAYSBEFORETODAY 7"),
                                   Keys("FLAGGED DAYSBEFORETODAY 3"));
  EXPECT_EQ(both.ToImapText(), "OR SEEN DELETED FLAGGED DAYSBEFORETODAY 3");
}

TEST(ListPatternTest, Wildcards) {
  EXPECT_TRUE(ListPatternMatches("*", "a/b", '/'));
  EXPECT_TRUE(ListPatternMatches("%", "ab", '/'));
  EXPECT_FALSE(ListPatternMatches("%", "a/b", '/'));
  EXPECT_TRUE(ListPatternMatches("%", "a/b", 0));
  EXPECT_TRUE(ListPatternMatches("fr*n", "from_john", 0));
  EXPECT_FALSE(ListPatternMatches("fr*x", "from_john", 0));
  EXPECT_FALSE(ListPatternMatches("", "x", 0));
  EXPECT_TRUE(ListPatternMatches("x", "x", 0));
}

TEST(VirtualFoldersTest, AddFindRemoveRename) {
  VirtualFolders v;
  ASSERT_TRUE(v.Add("Flagged", {"INBOX", Keys("FLAGGED")}, 2, 100).ok());
  EXPECT_TRUE(
      absl::IsAlreadyExists(v.Add("Flagged", {"INBOX", Keys("SEEN")}, 2, 100)));
  EXPECT_TRUE(
      absl::IsAlreadyExists(v.Add("inbox", {"INBOX", Keys("SEEN")}, 2, 100)));
  EXPECT_TRUE(absl::IsResourceExhausted(v.Add(
      "Big", {"INBOX", Keys(absl::StrCat("SUBJECT ", std::string(200, 'x')))},
      2, 100)));
  ASSERT_TRUE(v.Add("Seen", {"Work", Keys("SEEN")}, 2, 100).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(
      v.Add("Third", {"INBOX", Keys("SEEN")}, 2, 100)));
  ASSERT_NE(v.Find("Seen"), nullptr);
  EXPECT_EQ(v.Find("Seen")->backing, "Work");
  EXPECT_THAT(v.Matching("*"), ElementsAre("Flagged", "Seen"));
  EXPECT_THAT(v.Matching("F%"), ElementsAre("Flagged"));
  EXPECT_FALSE(v.Rename("Seen", "Flagged"));
  EXPECT_TRUE(v.Rename("Seen", "Read"));
  EXPECT_EQ(v.Find("Seen"), nullptr);
  EXPECT_TRUE(v.Remove("Read"));
  EXPECT_FALSE(v.Remove("Read"));
}

TEST(VirtualFoldersTest, DurableFormRoundTripsThroughTheFiltersText) {
  VirtualFolders v;
  ASSERT_TRUE(v.Add("Flagged", {"INBOX", Keys("FLAGGED")}, 0, 0).ok());
  ASSERT_TRUE(
      v.Add("all of it", {"Lists/pimap", FilterSpec::All()}, 0, 0).ok());
  ASSERT_TRUE(v.Add("ALL",
                    {"INBOX", Keys("SUBJECT \"a\\\"b\" DAYSBEFORETODAY 2")}, 0,
                    0)
                  .ok());
  DeviceFilters filters;
  const std::string text = filters.Serialize() + v.Serialize();
  std::vector<imap::Command> others;
  absl::StatusOr<DeviceFilters> back =
      DeviceFilters::Parse(text, FilterSpec::None(), &others);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, filters);
  absl::StatusOr<VirtualFolders> restored = VirtualFolders::Parse(others);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, v);
  // Without a taker, the vfolder lines are skipped, not an error.
  EXPECT_TRUE(DeviceFilters::Parse(text, FilterSpec::None()).ok());
}

}  // namespace
}  // namespace pimap::session
