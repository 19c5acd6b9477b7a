// UidView tests: MSN rendering against a naive sorted-vector model under
// seeded random interleavings of inserts and erases (small and chunk-splitting
// sizes), the text form, Resolve in MSN and UID mode.
#include "core/session/uid_view.h"

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// The obvious model: a sorted vector of UIDs.
struct Model {
  std::vector<uint32_t> uids;
  std::optional<uint32_t> Insert(uint32_t uid) {
    auto it = std::lower_bound(uids.begin(), uids.end(), uid);
    if (uid == 0 || (it != uids.end() && *it == uid)) return std::nullopt;
    const uint32_t msn = static_cast<uint32_t>(it - uids.begin()) + 1;
    uids.insert(it, uid);
    return msn;
  }
  std::optional<uint32_t> Erase(uint32_t uid) {
    auto it = std::lower_bound(uids.begin(), uids.end(), uid);
    if (it == uids.end() || *it != uid) return std::nullopt;
    const uint32_t msn = static_cast<uint32_t>(it - uids.begin()) + 1;
    uids.erase(it);
    return msn;
  }
  Ranges ToRanges() const {
    Ranges r;
    for (uint32_t u : uids) {
      if (!r.empty() && r.back().second + 1 == u) {
        r.back().second = u;
      } else {
        r.emplace_back(u, u);
      }
    }
    return r;
  }
};

void ExpectSame(const UidView& v, const Model& m, uint32_t probe_max) {
  ASSERT_EQ(v.size(), m.uids.size());
  ASSERT_EQ(v.max_uid(), m.uids.empty() ? 0 : m.uids.back());
  ASSERT_EQ(v.Ranges(), m.ToRanges());
  ASSERT_EQ(v.range_count(), m.ToRanges().size());
  for (size_t i = 0; i < m.uids.size(); ++i) {
    ASSERT_EQ(v.UidAt(static_cast<uint32_t>(i + 1)), m.uids[i])
        << "msn " << i + 1;
    ASSERT_EQ(v.MsnOf(m.uids[i]), i + 1) << "uid " << m.uids[i];
  }
  EXPECT_EQ(v.UidAt(0), std::nullopt);
  EXPECT_EQ(v.UidAt(static_cast<uint32_t>(m.uids.size() + 1)), std::nullopt);
  for (uint32_t u = 0; u <= probe_max; ++u) {
    const bool in = std::binary_search(m.uids.begin(), m.uids.end(), u);
    ASSERT_EQ(v.Contains(u), in) << "uid " << u;
    if (!in) {
      ASSERT_EQ(v.MsnOf(u), std::nullopt) << "uid " << u;
    }
  }
}

struct RandomCase {
  const char* name;
  uint32_t seed;
  uint32_t universe;  // UIDs drawn from 1..universe
  int ops;
  int check_every;
  int append_percent;  // share of ops that add a UID above max_uid
};

class UidViewRandomTest : public ::testing::TestWithParam<RandomCase> {};

TEST_P(UidViewRandomTest, MatchesSortedVectorModel) {
  const RandomCase& c = GetParam();
  std::mt19937 rng(c.seed);
  UidView view;
  Model model;
  std::uniform_int_distribution<uint32_t> uid_dist(1, c.universe);
  std::uniform_int_distribution<int> pct(0, 99);
  for (int op = 0; op < c.ops; ++op) {
    const int roll = pct(rng);
    if (roll < c.append_percent) {
      const uint32_t uid = view.max_uid() + 1 + (pct(rng) < 50 ? 0 : pct(rng));
      ASSERT_EQ(view.Insert(uid), model.Insert(uid)) << "op " << op;
    } else if (roll < 50 + c.append_percent / 2) {
      const uint32_t uid = uid_dist(rng);
      ASSERT_EQ(view.Insert(uid), model.Insert(uid)) << "op " << op;
    } else {
      // Erase mostly present UIDs so the view does not just drain.
      uint32_t uid = uid_dist(rng);
      if (!model.uids.empty() && pct(rng) < 70) {
        uid = model.uids[std::uniform_int_distribution<size_t>(
            0, model.uids.size() - 1)(rng)];
      }
      ASSERT_EQ(view.Erase(uid), model.Erase(uid)) << "op " << op;
    }
    if (op % c.check_every == 0) {
      ASSERT_NO_FATAL_FAILURE(ExpectSame(view, model, 50)) << "op " << op;
    }
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSame(view, model, c.universe + 10));
  absl::StatusOr<UidView> copy = UidView::Parse(view.Serialize());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->Ranges(), view.Ranges());
  EXPECT_EQ(copy->size(), view.size());
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, UidViewRandomTest,
    ::testing::Values(
        RandomCase{"tiny", 1, 20, 2000, 1, 10},
        RandomCase{"small", 2, 300, 5000, 7, 10},
        RandomCase{"dense_appends", 3, 200, 5000, 11, 60},
        // Thousands of ranges: chunk splits, merges and index rebuilds.
        RandomCase{"many_ranges", 4, 20000, 40000, 997, 5},
        RandomCase{"many_ranges_2", 5, 8000, 40000, 1499, 20}),
    [](const ::testing::TestParamInfo<RandomCase>& info) {
      return std::string(info.param.name);
    });

TEST(UidViewTest, EmptyView) {
  UidView v;
  EXPECT_EQ(v.size(), 0u);
  EXPECT_EQ(v.max_uid(), 0u);
  EXPECT_EQ(v.Serialize(), "");
  EXPECT_EQ(v.MsnOf(1), std::nullopt);
  EXPECT_EQ(v.UidAt(1), std::nullopt);
  EXPECT_EQ(v.Erase(1), std::nullopt);
  EXPECT_EQ(v.Insert(0), std::nullopt);
}

TEST(UidViewTest, InsertAndEraseReturnMsns) {
  UidView v;
  EXPECT_EQ(v.Insert(10), 1u);
  EXPECT_EQ(v.Insert(20), 2u);
  EXPECT_EQ(v.Insert(15), 2u);
  EXPECT_EQ(v.Insert(15), std::nullopt);
  EXPECT_EQ(v.Insert(5), 1u);
  EXPECT_EQ(v.Serialize(), "5,10,15,20");
  EXPECT_EQ(v.Erase(10), 2u);  // "* 2 EXPUNGE"
  EXPECT_EQ(v.MsnOf(20), 3u);  // renumbered
  EXPECT_EQ(v.Erase(10), std::nullopt);
  EXPECT_EQ(v.Erase(20), 3u);
  EXPECT_EQ(v.Erase(5), 1u);
  EXPECT_EQ(v.Erase(15), 1u);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(v.Insert(7), 1u);  // reusable after draining
  EXPECT_EQ(v.max_uid(), 7u);
}

TEST(UidViewTest, JoinsAndSplitsRanges) {
  UidView v = UidView::FromSortedUids({1, 2, 3, 5, 6, 7});
  EXPECT_EQ(v.range_count(), 2u);
  EXPECT_EQ(v.Insert(4), 4u);
  EXPECT_EQ(v.Serialize(), "1:7");
  EXPECT_EQ(v.range_count(), 1u);
  EXPECT_EQ(v.Erase(4), 4u);
  EXPECT_EQ(v.Serialize(), "1:3,5:7");
  EXPECT_EQ(v.Erase(1), 1u);
  EXPECT_EQ(v.Erase(7), 5u);
  EXPECT_EQ(v.Serialize(), "2:3,5:6");
}

TEST(UidViewTest, ExtremeUids) {
  UidView v;
  EXPECT_EQ(v.Insert(4294967295u), 1u);
  EXPECT_EQ(v.Insert(1), 1u);
  EXPECT_EQ(v.Insert(4294967294u), 2u);
  EXPECT_EQ(v.MsnOf(4294967295u), 3u);
  EXPECT_EQ(v.Serialize(), "1,4294967294:4294967295");
  absl::StatusOr<UidView> p = UidView::Parse("1:4294967295");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->size(), 4294967295u);
  EXPECT_EQ(p->UidAt(4294967295u), 4294967295u);
  EXPECT_EQ(p->MsnOf(4000000000u), 4000000000u);
  EXPECT_EQ(p->Erase(2), 2u);
  EXPECT_EQ(p->Serialize(), "1,3:4294967295");
}

TEST(UidViewTest, FromSortedUidsToleratesDuplicatesZeroAndDisorder) {
  EXPECT_EQ(UidView::FromSortedUids({0, 1, 1, 2, 4}).Serialize(), "1:2,4");
  EXPECT_EQ(UidView::FromSortedUids({9, 3, 4, 3}).Serialize(), "3:4,9");
  EXPECT_EQ(UidView::FromSortedUids({}).Serialize(), "");
}

TEST(UidViewTest, LargeBulkViewAppendsAndErasesAtEnd) {
  std::vector<uint32_t> uids;
  for (uint32_t u = 1; u <= 2000000; u += 2) uids.push_back(u);  // 1M ranges
  UidView v = UidView::FromSortedUids(uids);
  ASSERT_EQ(v.size(), 1000000u);
  EXPECT_EQ(v.range_count(), 1000000u);
  EXPECT_EQ(v.MsnOf(1999999), 1000000u);
  EXPECT_EQ(v.UidAt(500000), 999999u);
  EXPECT_EQ(v.Insert(2000001), 1000001u);  // joins nothing: new range
  EXPECT_EQ(v.Insert(2000002), 1000002u);  // extends it
  EXPECT_EQ(v.Erase(2000002), 1000002u);
  EXPECT_EQ(v.Erase(2000001), 1000001u);
  EXPECT_EQ(v.Insert(2), 2u);  // joins 1 and 3 in the middle of chunk 0
  EXPECT_EQ(v.MsnOf(1999999), 1000001u);
  EXPECT_EQ(v.Erase(1000001), 500002u);
  EXPECT_EQ(v.UidAt(500001), 999999u);
  EXPECT_EQ(v.UidAt(500002), 1000003u);
  // 12 bytes per range plus chunk overhead.
  EXPECT_LT(v.MemoryBytes(), 1000000u * 16);
  EXPECT_LT(UidView::Parse("1:1000000")->MemoryBytes(), 512u);
}

struct ParseCase {
  std::string text;
  bool ok;
};

class UidViewParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(UidViewParseTest, AcceptsOnlyCanonicalForm) {
  const ParseCase& c = GetParam();
  absl::StatusOr<UidView> v = UidView::Parse(c.text);
  EXPECT_EQ(v.ok(), c.ok) << c.text << ": " << v.status();
  if (v.ok()) {
    EXPECT_EQ(v->Serialize(), c.text);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, UidViewParseTest,
    ::testing::Values(ParseCase{"", true}, ParseCase{"1", true},
                      ParseCase{"1:5,7,9:12", true},
                      ParseCase{"3,4294967295", true}, ParseCase{"0", false},
                      ParseCase{"01", false}, ParseCase{"5:3", false},
                      ParseCase{"3:3", false}, ParseCase{"1,1", false},
                      ParseCase{"1:5,5", false}, ParseCase{"1:5,6", false},
                      ParseCase{"5,3", false}, ParseCase{",", false},
                      ParseCase{"1,", false}, ParseCase{"a", false},
                      ParseCase{"1::2", false}, ParseCase{"4294967296", false},
                      ParseCase{" 1", false}, ParseCase{"1:*", false},
                      ParseCase{"1;2", false}));

struct ResolveCase {
  std::string view;
  std::string set;
  bool uid_mode;
  Ranges want;
};

class UidViewResolveTest : public ::testing::TestWithParam<ResolveCase> {};

TEST_P(UidViewResolveTest, Resolves) {
  const ResolveCase& c = GetParam();
  absl::StatusOr<UidView> v = UidView::Parse(c.view);
  ASSERT_TRUE(v.ok());
  absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(c.set);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(v->Resolve(*set, c.uid_mode), c.want)
      << c.view << " " << c.set << (c.uid_mode ? " (uid)" : " (msn)");
}

// View "1:3,7,10:12": MSNs 1..7 are UIDs 1 2 3 7 10 11 12.
INSTANTIATE_TEST_SUITE_P(
    Table, UidViewResolveTest,
    ::testing::Values(
        ResolveCase{"1:3,7,10:12", "1:*", false, {{1, 3}, {7, 7}, {10, 12}}},
        ResolveCase{"1:3,7,10:12", "2:4", false, {{2, 3}, {7, 7}}},
        ResolveCase{"1:3,7,10:12", "*", false, {{12, 12}}},
        ResolveCase{"1:3,7,10:12", "*:5", false, {{10, 12}}},
        ResolveCase{"1:3,7,10:12", "6:100", false, {{11, 12}}},
        ResolveCase{"1:3,7,10:12", "100", false, {}},
        ResolveCase{"1:3,7,10:12", "4,1,3,2", false, {{1, 3}, {7, 7}}},
        ResolveCase{"1:3,7,10:12", "5,4", false, {{7, 7}, {10, 10}}},
        ResolveCase{"1:3,7,10:12", "1:*", true, {{1, 3}, {7, 7}, {10, 12}}},
        ResolveCase{"1:3,7,10:12", "4:6", true, {}},
        ResolveCase{"1:3,7,10:12", "5:11", true, {{7, 7}, {10, 11}}},
        ResolveCase{"1:3,7,10:12", "*", true, {{12, 12}}},
        ResolveCase{"1:3,7,10:12", "20:*", true, {{12, 12}}},
        ResolveCase{
            "1:3,7,10:12", "3,7,8,9,10", true, {{3, 3}, {7, 7}, {10, 10}}},
        ResolveCase{"1:3,7,10:12", "$", false, {}},
        ResolveCase{"", "1:*", false, {}}, ResolveCase{"", "*", true, {}}));

TEST(UidViewTest, ResolveAcrossChunks) {
  std::vector<uint32_t> uids;
  for (uint32_t u = 2; u <= 2000; u += 2) uids.push_back(u);  // 1000 ranges
  UidView v = UidView::FromSortedUids(uids);
  auto set = imap::SequenceSet::Parse("100:900");
  ASSERT_TRUE(set.ok());
  Ranges got = v.Resolve(*set, false);
  ASSERT_EQ(got.size(), 801u);
  EXPECT_EQ(got.front(), std::make_pair(200u, 200u));
  EXPECT_EQ(got.back(), std::make_pair(1800u, 1800u));
  got = v.Resolve(*set, true);
  EXPECT_EQ(got.size(), 401u);
  EXPECT_EQ(got.front(), std::make_pair(100u, 100u));
}

TEST(UidViewTest, RangesToSequenceSet) {
  EXPECT_EQ(RangesToSequenceSet({}), "");
  EXPECT_EQ(RangesToSequenceSet({{1, 5}, {9, 9}}), "1:5,9");
  EXPECT_EQ(RangesToSequenceSet({{4294967295u, 4294967295u}}), "4294967295");
}

}  // namespace
}  // namespace pimap::session

namespace pimap::session {
namespace {

// Issue 14, item 4: a device that repeats a range (15,000 times "1:*") costs
// one walk over the view, counted in view ranges visited, not in time.
TEST(UidViewResolveWorkTest, RepeatedRangesCostOneWalk) {
  UidView view;
  for (uint32_t uid = 1; uid < 400; uid += 2) view.Insert(uid);  // 200 ranges
  ASSERT_EQ(view.range_count(), 200u);
  std::string text = "1:*";
  for (int i = 1; i < 15000; ++i) text += ",1:*";
  absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(text);
  ASSERT_TRUE(set.ok()) << set.status();
  for (bool uid_mode : {true, false}) {
    size_t steps = 0;
    const auto ranges = view.Resolve(*set, uid_mode, &steps);
    EXPECT_LE(steps, view.range_count() + 1) << uid_mode;
    EXPECT_EQ(ranges, view.Resolve(*imap::SequenceSet::Parse("1:*"), uid_mode))
        << uid_mode;
  }
  // Overlapping and adjacent pieces merge too: "1:10,5:20,21:30,2".
  size_t steps = 0;
  auto parts = view.Resolve(*imap::SequenceSet::Parse("1:10,5:20,21:30,2"),
                            true, &steps);
  EXPECT_EQ(parts.front().first, 1u);
  EXPECT_EQ(parts.back().second, 29u);
  EXPECT_LE(steps, 16u);
}

}  // namespace
}  // namespace pimap::session
