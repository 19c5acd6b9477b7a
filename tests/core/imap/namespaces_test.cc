// Tests of NAMESPACE parsing and the personal-folder test
// (core/imap/namespaces.h).
#include "core/imap/namespaces.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

Namespaces Parse(absl::string_view line) {
  absl::StatusOr<Response> r =
      ParseWholeResponse(line, ParserLimits{}, 64 * 1024);
  EXPECT_TRUE(r.ok()) << r.status();
  absl::StatusOr<Namespaces> ns = Namespaces::FromResponse(*r);
  EXPECT_TRUE(ns.ok()) << ns.status();
  return ns.ok() ? *ns : Namespaces();
}

TEST(NamespacesTest, DovecotDefaultIsAllPersonal) {
  Namespaces ns = Parse("* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
  EXPECT_TRUE(ns.all_personal());
  EXPECT_TRUE(ns.IsPersonal("INBOX"));
  EXPECT_TRUE(ns.IsPersonal("Public.News"));
}

TEST(NamespacesTest, PublicNamespaceIsNotPersonal) {
  Namespaces ns =
      Parse("* NAMESPACE ((\"\" \".\")) NIL ((\"Public.\" \".\"))\r\n");
  EXPECT_FALSE(ns.all_personal());
  EXPECT_TRUE(ns.IsPersonal("INBOX"));
  EXPECT_TRUE(ns.IsPersonal("Work.Reports"));
  EXPECT_TRUE(ns.IsPersonal("Publications"));  // not under "Public."
  EXPECT_FALSE(ns.IsPersonal("Public.News"));
  EXPECT_FALSE(ns.IsPersonal("Public.News.Old"));
  EXPECT_FALSE(ns.IsPersonal("Public"));  // the namespace's root
}

TEST(NamespacesTest, OtherUsersAndSharedWithExtensions) {
  Namespaces ns = Parse(
      "* NAMESPACE ((\"INBOX.\" \".\")) ((\"shared/\" \"/\" \"X-PARAM\" "
      "(\"FLAG1\"))) ((\"#news.\" \".\") (\"#ftp/\" \"/\"))\r\n");
  EXPECT_EQ(ns.personal().size(), 1u);
  EXPECT_EQ(ns.others().size(), 3u);
  EXPECT_TRUE(ns.IsPersonal("inbox"));
  EXPECT_TRUE(ns.IsPersonal("INBOX.Sent"));
  EXPECT_FALSE(ns.IsPersonal("shared/bob/INBOX"));
  EXPECT_FALSE(ns.IsPersonal("#news.comp.mail"));
  EXPECT_FALSE(ns.IsPersonal("#ftp/pub"));
  EXPECT_TRUE(ns.IsPersonal("Elsewhere"));  // under no namespace
}

TEST(NamespacesTest, LongerPersonalPrefixWins) {
  // A personal namespace nested inside a shared one's prefix.
  Namespaces ns =
      Parse("* NAMESPACE ((\"Mine/\" \"/\")) NIL ((\"\" \"/\"))\r\n");
  EXPECT_TRUE(ns.IsPersonal("Mine/Drafts"));
  EXPECT_FALSE(ns.IsPersonal("Team/Board"));
  EXPECT_TRUE(ns.IsPersonal("INBOX"));
}

TEST(NamespacesTest, NilDelimiter) {
  Namespaces ns = Parse("* NAMESPACE ((\"\" NIL)) NIL ((\"Pub\" NIL))\r\n");
  EXPECT_FALSE(ns.IsPersonal("Pubnews"));
  EXPECT_EQ(ns.others()[0].delimiter, "");
}

TEST(NamespacesTest, RejectsWhatIsNotANamespaceResponse) {
  for (absl::string_view line :
       {"* NAMESPACE ((\"\" \".\")) NIL\r\n", "* NAMESPACE foo NIL NIL\r\n",
        "* NAMESPACE ((\"\")) NIL NIL\r\n",
        "* NAMESPACE (\"\" \".\") NIL NIL\r\n",
        "* NAMESPACE ((\"\" (\".\"))) NIL NIL\r\n",
        "* CAPABILITY IMAP4rev1\r\n"}) {
    absl::StatusOr<Response> r =
        ParseWholeResponse(line, ParserLimits{}, 64 * 1024);
    ASSERT_TRUE(r.ok()) << line;
    EXPECT_FALSE(Namespaces::FromResponse(*r).ok()) << line;
  }
}

TEST(NamespacesTest, KeepsAtMostTheBoundPerClass) {
  std::string line = "* NAMESPACE ((\"\" \".\")) NIL (";
  for (int i = 0; i < 100; ++i) absl::StrAppend(&line, "(\"P", i, ".\" \".\")");
  line += ")\r\n";
  Namespaces ns = Parse(line);
  EXPECT_EQ(ns.others().size(), Namespaces::kMaxPerClass);
}

TEST(NamespacesTest, TheBoundIsPerClass) {
  // Many other users' namespaces do not crowd out the shared one.
  std::string line = "* NAMESPACE ((\"\" \".\")) (";
  for (int i = 0; i < 40; ++i) absl::StrAppend(&line, "(\"U", i, ".\" \".\")");
  line += ") ((\"Public.\" \".\"))\r\n";
  Namespaces ns = Parse(line);
  EXPECT_EQ(ns.others().size(), Namespaces::kMaxPerClass + 1);
  EXPECT_FALSE(ns.IsPersonal("Public.News"));
}

}  // namespace
}  // namespace pimap::imap
