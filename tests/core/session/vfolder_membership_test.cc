// MatchFlags (core/session/vfolder_membership.h): what a message's new flags
// tell of its membership in a virtual folder, without the store.
#include "core/session/vfolder_membership.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pimap::session {
namespace {

FilterSpec Keys(std::string keys, std::optional<int> days = std::nullopt) {
  FilterSpec spec;
  spec.all = false;
  spec.search_keys = std::move(keys);
  spec.days_before_today = days;
  return spec;
}

TEST(MatchFlagsTest, FlagKeysOnlyDecideBothWays) {
  EXPECT_EQ(MatchFlags(Keys("FLAGGED"), {"\\Flagged", "\\Seen"}),
            FlagVerdict::kMatches);
  EXPECT_EQ(MatchFlags(Keys("FLAGGED"), {"\\Seen"}), FlagVerdict::kFails);
  EXPECT_EQ(MatchFlags(Keys("flagged UNSEEN"), {"\\flagged"}),
            FlagVerdict::kMatches);
  EXPECT_EQ(MatchFlags(Keys("FLAGGED UNSEEN"), {"\\Flagged", "\\Seen"}),
            FlagVerdict::kFails);
  EXPECT_EQ(MatchFlags(Keys("KEYWORD $Forwarded"), {"$forwarded"}),
            FlagVerdict::kMatches);
  EXPECT_EQ(MatchFlags(Keys("UNKEYWORD $Forwarded"), {"$Forwarded"}),
            FlagVerdict::kFails);
}

TEST(MatchFlagsTest, OtherKeysLetOnlyAFailingFlagKeyDecide) {
  const FilterSpec spec = Keys("FLAGGED FROM \"SEEN john\" SINCE 1-Jun-2003");
  EXPECT_EQ(MatchFlags(spec, {}), FlagVerdict::kFails);
  EXPECT_EQ(MatchFlags(spec, {"\\Flagged"}), FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(Keys("FLAGGED", 7), {"\\Flagged"}),
            FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(Keys("FLAGGED", 7), {}), FlagVerdict::kFails);
}

TEST(MatchFlagsTest, WhatIsNotAPlainConjunctionIsUnknown) {
  EXPECT_EQ(MatchFlags(Keys("NOT FLAGGED"), {"\\Flagged"}),
            FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(Keys("OR FLAGGED SEEN"), {}), FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(Keys("(FLAGGED SEEN)"), {}), FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(Keys("RECENT"), {}), FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(Keys("FROM \"x\""), {}), FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(FilterSpec::All(), {}), FlagVerdict::kUnknown);
  EXPECT_EQ(MatchFlags(FilterSpec::None(), {}), FlagVerdict::kUnknown);
}

}  // namespace
}  // namespace pimap::session
