// SequenceSet parsing, membership and formatting tests.
#include "core/imap/sequence_set.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

using ::testing::ElementsAre;

TEST(SequenceSetTest, ParsesAndFormats) {
  absl::StatusOr<SequenceSet> s = SequenceSet::Parse("1:3,5,7:*");
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->ranges(),
              ElementsAre(SeqRange{1, 3}, SeqRange{5, 5}, SeqRange{7, kStar}));
  EXPECT_EQ(s->ToString(), "1:3,5,7:*");
  EXPECT_FALSE(s->is_saved_result());
}

TEST(SequenceSetTest, NormalisesReversedRanges) {
  absl::StatusOr<SequenceSet> s = SequenceSet::Parse("9:2,*:4,*");
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->ranges(), ElementsAre(SeqRange{2, 9}, SeqRange{4, kStar},
                                       SeqRange{kStar, kStar}));
  EXPECT_EQ(s->ToString(), "2:9,4:*,*");
}

TEST(SequenceSetTest, Contains) {
  absl::StatusOr<SequenceSet> s = SequenceSet::Parse("1:3,5,7:*");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Contains(1, 10));
  EXPECT_TRUE(s->Contains(3, 10));
  EXPECT_FALSE(s->Contains(4, 10));
  EXPECT_TRUE(s->Contains(5, 10));
  EXPECT_FALSE(s->Contains(6, 10));
  EXPECT_TRUE(s->Contains(10, 10));
  EXPECT_FALSE(s->Contains(11, 10));
  // "7:*" with star = 3 means 3:7.
  EXPECT_TRUE(s->Contains(6, 3));
  absl::StatusOr<SequenceSet> star = SequenceSet::Parse("*");
  ASSERT_TRUE(star.ok());
  EXPECT_TRUE(star->Contains(42, 42));
  EXPECT_FALSE(star->Contains(41, 42));
}

TEST(SequenceSetTest, SavedResult) {
  absl::StatusOr<SequenceSet> s = SequenceSet::Parse("$");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->is_saved_result());
  EXPECT_TRUE(s->ranges().empty());
  EXPECT_FALSE(s->Contains(1, 1));
  EXPECT_EQ(s->ToString(), "$");
}

TEST(SequenceSetTest, MaxNumber) {
  absl::StatusOr<SequenceSet> s = SequenceSet::Parse("4294967294");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ranges()[0].first, 4294967294u);
}

TEST(SequenceSetTest, Rejects) {
  for (const char* bad :
       {"", "0", "01", "1:", ":1", "1,", ",1", "1,,2", "a", "1:2:3", "1 2",
        "$,1", "$$", "4294967295", "99999999999", "1:0", "-1", "**"}) {
    EXPECT_FALSE(SequenceSet::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pimap::imap
