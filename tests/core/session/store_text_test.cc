// Tests for core/session/store_text: rendering parsed arguments for the store
// and for devices, the CONDSTORE echo a device without CONDSTORE must not
// see, and what the gateway reads out of the responses it collects.
#include "core/session/store_text.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

imap::Arg Quoted(std::string value) {
  imap::Arg a;
  a.type = imap::Arg::Type::kQuoted;
  a.value = std::move(value);
  return a;
}

imap::Arg Atom(std::string value) {
  imap::Arg a;
  a.type = imap::Arg::Type::kAtom;
  a.value = std::move(value);
  return a;
}

TEST(StoreTextTest, StripModseqSaysWhenOnlyTheUidIsLeft) {
  std::string line = "* 3 FETCH (UID 7 MODSEQ (12))";
  EXPECT_TRUE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7)");
  line = "* 3 FETCH (MODSEQ (12) UID 7)";
  EXPECT_TRUE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7)");
  line = "* 3 FETCH (UID 7 FLAGS (\\Seen) MODSEQ (12))";
  EXPECT_FALSE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7 FLAGS (\\Seen))");
  // No MODSEQ: what the device asked for, never dropped.
  line = "* 3 FETCH (UID 7)";
  EXPECT_FALSE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7)");
}

TEST(StoreTextTest, LiteralsAreNonSynchronisingToTheStoreAndPlainToDevices) {
  const std::string long_name(1500, 'x');
  std::vector<imap::Arg> args;
  imap::Arg attrs;
  attrs.type = imap::Arg::Type::kList;
  attrs.children.push_back(Atom("\\HasNoChildren"));
  args.push_back(attrs);
  args.push_back(Quoted("/"));
  args.push_back(Quoted(long_name));
  EXPECT_EQ(RenderArgs(args, 0),
            "(\\HasNoChildren) \"/\" {1500+}\r\n" + long_name);
  EXPECT_EQ(RenderArgs(args, 0, /*to_device=*/true),
            "(\\HasNoChildren) \"/\" {1500}\r\n" + long_name);
  args[2] = Quoted("a \"b\" \\c");
  EXPECT_EQ(RenderArgs(args, 1, /*to_device=*/true),
            "\"/\" \"a \\\"b\\\" \\\\c\"");
}

TEST(StoreTextTest, SearchNumbersInTheStoresOrderWithTheirModseq) {
  std::vector<uint32_t> numbers;
  std::string modseq = "old";
  ParseSearchNumbers("* SEARCH 9 4 12", &numbers, &modseq);
  EXPECT_THAT(numbers, ::testing::ElementsAre(9, 4, 12));
  EXPECT_EQ(modseq, "old");  // none in this one
  numbers.clear();
  ParseSearchNumbers("* SORT 12 4 (MODSEQ 917)", &numbers, &modseq);
  EXPECT_THAT(numbers, ::testing::ElementsAre(12, 4));
  EXPECT_EQ(modseq, "917");
  numbers.clear();
  ParseSearchNumbers("* SEARCH", &numbers, &modseq);
  ParseSearchNumbers("* SEA", &numbers, &modseq);
  EXPECT_TRUE(numbers.empty());
}

TEST(StoreTextTest, EsearchAllAppendsUidsUpToTheCap) {
  std::vector<uint32_t> uids = {1};
  AppendEsearchAll("* ESEARCH (TAG \"~p3\") UID ALL 4:6,9", &uids, 100);
  EXPECT_THAT(uids, ::testing::ElementsAre(1, 4, 5, 6, 9));
  uids.clear();
  AppendEsearchAll("* ESEARCH (TAG \"~p3\") UID ALL 1:100 COUNT 100", &uids, 3);
  EXPECT_THAT(uids, ::testing::ElementsAre(1, 2, 3));
  uids.clear();
  AppendEsearchAll("* ESEARCH (TAG \"~p3\") UID", &uids, 100);  // no match
  AppendEsearchAll("* ESEARCH (TAG \"~p3\") UID ALL x:y", &uids, 100);
  EXPECT_TRUE(uids.empty());
}

TEST(StoreTextTest, EsearchCount) {
  EXPECT_EQ(EsearchCount("* ESEARCH (TAG \"~p3\") UID COUNT 7"), 7u);
  EXPECT_EQ(EsearchCount("* ESEARCH (TAG \"~p3\") UID COUNT 7 ALL 1:7"), 7u);
  EXPECT_EQ(EsearchCount("* ESEARCH (TAG \"~p3\") UID COUNT x"), 0u);
  EXPECT_EQ(EsearchCount("* ESEARCH (TAG \"~p3\") UID"), std::nullopt);
}

TEST(StoreTextTest, StatusMessagesRewritten) {
  EXPECT_EQ(WithStatusMessages("* STATUS INBOX (MESSAGES 231 UIDNEXT 44)", 3),
            "* STATUS INBOX (MESSAGES 3 UIDNEXT 44)");
  EXPECT_EQ(WithStatusMessages("* STATUS INBOX (UIDNEXT 44)", 3),
            "* STATUS INBOX (UIDNEXT 44)");
}

}  // namespace
}  // namespace pimap::session
