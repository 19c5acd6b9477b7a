// AuthCache tests: verdicts, TTL boundary, disabling, Forget, replacement,
// the FIFO bound (eviction order and lazy deletion), per-instance keying and
// the user/password encoding of the digest input.
#include "core/session/auth_cache.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using Verdict = AuthCache::Verdict;

constexpr int64_t kTtl = 1000;

TEST(AuthCacheTest, MatchesTheRememberedPassword) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 100);
  EXPECT_EQ(cache.Check("alice", "alicepw", 100), Verdict::kMatch);
  EXPECT_EQ(cache.Check("alice", "alicepw", 500), Verdict::kMatch);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(AuthCacheTest, DifferentPasswordIsMismatchAndKeepsTheEntry) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 100);
  EXPECT_EQ(cache.Check("alice", "alicepW", 200), Verdict::kMismatch);
  EXPECT_EQ(cache.Check("alice", "alicepw2", 200), Verdict::kMismatch);
  EXPECT_EQ(cache.Check("alice", "alicep", 200), Verdict::kMismatch);
  // The store decides a mismatch; the entry stays until Forget.
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Check("alice", "alicepw", 200), Verdict::kMatch);
}

TEST(AuthCacheTest, UnknownUserIsMiss) {
  AuthCache cache(kTtl);
  EXPECT_EQ(cache.Check("alice", "alicepw", 100), Verdict::kMiss);
  cache.Remember("alice", "alicepw", 100);
  EXPECT_EQ(cache.Check("bob", "alicepw", 100), Verdict::kMiss);
  EXPECT_EQ(cache.Check("Alice", "alicepw", 100), Verdict::kMiss);
}

TEST(AuthCacheTest, ExpiresAtExactlyTtl) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 5000);
  EXPECT_EQ(cache.Check("alice", "alicepw", 5000 + kTtl - 1), Verdict::kMatch);
  EXPECT_EQ(cache.Check("alice", "alicepw", 5000 + kTtl), Verdict::kMiss);
  // The expired entry was dropped: an earlier time no longer matches either.
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Check("alice", "alicepw", 5000 + kTtl - 1), Verdict::kMiss);
}

TEST(AuthCacheTest, TtlIsMeasuredFromTheLastRemember) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 0);
  cache.Remember("alice", "alicepw", 800);
  EXPECT_EQ(cache.Check("alice", "alicepw", 1500), Verdict::kMatch);
  EXPECT_EQ(cache.Check("alice", "alicepw", 1800), Verdict::kMiss);
}

TEST(AuthCacheTest, ExpiredEntryWithWrongPasswordIsMiss) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 0);
  EXPECT_EQ(cache.Check("alice", "other", kTtl), Verdict::kMiss);
}

TEST(AuthCacheTest, ClockGoingBackwardsIsMiss) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 5000);
  EXPECT_EQ(cache.Check("alice", "alicepw", 4999), Verdict::kMiss);
}

TEST(AuthCacheTest, ZeroOrNegativeTtlDisables) {
  for (int64_t ttl : {int64_t{0}, int64_t{-1}}) {
    AuthCache cache(ttl);
    EXPECT_FALSE(cache.enabled());
    cache.Remember("alice", "alicepw", 100);
    EXPECT_EQ(cache.size(), 0u) << ttl;
    EXPECT_EQ(cache.Check("alice", "alicepw", 100), Verdict::kMiss) << ttl;
    EXPECT_EQ(cache.Check("alice", "other", 100), Verdict::kMiss) << ttl;
  }
  AuthCache no_room(kTtl, 0);
  no_room.Remember("alice", "alicepw", 100);
  EXPECT_EQ(no_room.size(), 0u);
  EXPECT_EQ(no_room.Check("alice", "alicepw", 100), Verdict::kMiss);
}

TEST(AuthCacheTest, ForgetDropsTheEntry) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "alicepw", 100);
  cache.Remember("bob", "bobpw", 100);
  cache.Forget("alice");
  cache.Forget("nobody");  // no-op
  EXPECT_EQ(cache.Check("alice", "alicepw", 200), Verdict::kMiss);
  EXPECT_EQ(cache.Check("bob", "bobpw", 200), Verdict::kMatch);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(AuthCacheTest, RememberReplacesThePassword) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "old", 100);
  cache.Remember("alice", "new", 200);
  EXPECT_EQ(cache.Check("alice", "new", 300), Verdict::kMatch);
  EXPECT_EQ(cache.Check("alice", "old", 300), Verdict::kMismatch);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(AuthCacheTest, BoundEvictsTheOldest) {
  AuthCache cache(kTtl, 2);
  cache.Remember("a", "pa", 1);
  cache.Remember("b", "pb", 2);
  cache.Remember("c", "pc", 3);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Check("a", "pa", 4), Verdict::kMiss);
  EXPECT_EQ(cache.Check("b", "pb", 4), Verdict::kMatch);
  EXPECT_EQ(cache.Check("c", "pc", 4), Verdict::kMatch);
}

TEST(AuthCacheTest, BoundCountsReplacementAsNewest) {
  // "a" is remembered again after "b": "b" is now the oldest. A FIFO that
  // ignored the stale first item of "a" would evict "a" instead.
  AuthCache cache(kTtl, 2);
  cache.Remember("a", "pa", 1);
  cache.Remember("b", "pb", 2);
  cache.Remember("a", "pa2", 3);
  cache.Remember("c", "pc", 4);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Check("a", "pa2", 5), Verdict::kMatch);
  EXPECT_EQ(cache.Check("b", "pb", 5), Verdict::kMiss);
  EXPECT_EQ(cache.Check("c", "pc", 5), Verdict::kMatch);
}

TEST(AuthCacheTest, BoundSkipsForgottenAndReaddedEntries) {
  AuthCache cache(kTtl, 2);
  cache.Remember("a", "pa", 1);
  cache.Forget("a");
  cache.Remember("b", "pb", 2);
  cache.Remember("a", "pa", 3);
  cache.Remember("c", "pc", 4);
  EXPECT_EQ(cache.Check("a", "pa", 5), Verdict::kMatch);
  EXPECT_EQ(cache.Check("b", "pb", 5), Verdict::kMiss);
  EXPECT_EQ(cache.Check("c", "pc", 5), Verdict::kMatch);
}

TEST(AuthCacheTest, RememberDropsExpiredEntries) {
  // Expired users do not sit in memory until the bound evicts them: the next
  // Remember drops them, even with room to spare.
  AuthCache cache(kTtl, 3);
  cache.Remember("a", "pa", 0);
  cache.Remember("b", "pb", 600);
  cache.Remember("c", "pc", 1100);  // "a" expired at 1000
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Check("b", "pb", 1200), Verdict::kMatch);
  EXPECT_EQ(cache.Check("c", "pc", 1200), Verdict::kMatch);
  cache.Remember("b", "pb", 1650);  // "b"'s first item is stale, not expired
  cache.Remember("d", "pd", 2150);  // drops "c" (expired at 2100), keeps "b"
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Check("b", "pb", 2200), Verdict::kMatch);
  EXPECT_EQ(cache.Check("d", "pd", 2200), Verdict::kMatch);
}

TEST(AuthCacheTest, FifoStaysBoundedUnderReplacementAndForget) {
  AuthCache cache(kTtl * 1000, 8);
  for (int i = 0; i < 10000; ++i) {
    cache.Remember("alice", "pw" + std::to_string(i), i);
    EXPECT_LE(cache.QueuedForTesting(), 2 * cache.size() + 17) << i;
  }
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Check("alice", "pw9999", 10000), Verdict::kMatch);
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "u" + std::to_string(i % 8);
    cache.Remember(user, "pw", 10000 + i);
    if (i % 3 == 0) cache.Forget(user);
    EXPECT_LE(cache.QueuedForTesting(), 2 * cache.size() + 17) << i;
    EXPECT_LE(cache.size(), 8u);
  }
}

TEST(AuthCacheTest, DigestIsKeyedPerInstance) {
  AuthCache one(kTtl);
  AuthCache two(kTtl);
  const AuthCache::Digest a = one.DigestForTesting("alice", "alicepw");
  EXPECT_EQ(a, one.DigestForTesting("alice", "alicepw"));  // deterministic
  EXPECT_NE(a, two.DigestForTesting("alice", "alicepw"));
  EXPECT_NE(a, AuthCache::Digest{});
}

TEST(AuthCacheTest, UserPasswordBoundaryDoesNotCollide) {
  AuthCache cache(kTtl);
  // With a ':' separator both would hash "a:b:c"; without any, "ab"+"c" and
  // "a"+"bc" would both hash "abc".
  EXPECT_NE(cache.DigestForTesting("a", "b:c"),
            cache.DigestForTesting("a:b", "c"));
  EXPECT_NE(cache.DigestForTesting("ab", "c"),
            cache.DigestForTesting("a", "bc"));
  cache.Remember("a", "b:c", 100);
  EXPECT_EQ(cache.Check("a:b", "c", 100), Verdict::kMiss);
  EXPECT_EQ(cache.Check("a", "b:c", 100), Verdict::kMatch);
  cache.Remember("a:b", "c", 100);
  EXPECT_EQ(cache.Check("a", "b:c", 100), Verdict::kMatch);
  EXPECT_EQ(cache.Check("a:b", "c", 100), Verdict::kMatch);
  EXPECT_EQ(cache.Check("a:b", "b:c", 100), Verdict::kMismatch);
}

TEST(AuthCacheTest, EmptyPassword) {
  AuthCache cache(kTtl);
  cache.Remember("alice", "", 100);
  EXPECT_EQ(cache.Check("alice", "", 100), Verdict::kMatch);
  EXPECT_EQ(cache.Check("alice", std::string(1, '\0'), 100),
            Verdict::kMismatch);
  EXPECT_EQ(cache.Check("alice", "x", 100), Verdict::kMismatch);
  cache.Remember("alice", "x", 200);
  EXPECT_EQ(cache.Check("alice", "", 200), Verdict::kMismatch);
  EXPECT_EQ(cache.Check("alice", "x", 200), Verdict::kMatch);
}

}  // namespace
}  // namespace pimap::session
