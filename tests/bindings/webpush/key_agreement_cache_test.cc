// KeyAgreementCache (bindings/webpush/key_agreement_cache.h): agreements are
// made on timer turns, a few per turn, handed out once, and bounded.
#include "bindings/webpush/key_agreement_cache.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "core/base/timer_wheel.h"
#include "gtest/gtest.h"

namespace pimap::webpush {
namespace {

// Valid P-256 public keys (uncompressed points), as browsers send them.
std::string Key(int which) {
  static const char* kKeys[] = {
      "BK9M5iu7WiNSCQFUjYccsVnAllpHMYJ5kFVxcVTDpHoeFYJHN2mh5kTpVNN3Q6HSOSRKw-"
      "XtSyWWfPlgCouLF64",
      "BEX7014dJiTBIMqr70342H8JrvC2U1d3Y260LrXco2SqZYFYEl38FjNFbGmjDFQEiNieG9"
      "UT3VTAPcEhruU3b_Q",
      "BGY1yIk9YuCazTWBCQIlYk4L1Z1rIRYdD5P5VhY_OsbsaAsBtJ6zyEg8FX6XSQBLSx2PsQ"
      "upmBZrkvKKhsn6xmI",
      "BCdKUDgTiiV2-5fusHMZTSvkak0jeLGfN_cGawI0HXXFqPzw2tSwC8E_xpYZBL3c6fXofz"
      "NqeEz9bvpZY4Yh7rg",
      "BH_pP9jJ1bcDVWIFApl3il272hZwuLVAXqEqFqEzFInfFo37MI6X3zwcOUsUtyVnYTHcrX"
      "m__loV_bLy1_Jl3kA"};
  std::string out;
  absl::WebSafeBase64Unescape(kKeys[which], &out);
  return out;
}

class KeyAgreementCacheTest : public ::testing::Test {
 protected:
  void Advance(int64_t ms) {
    now_ += ms;
    timers_.Advance(now_);
  }
  int64_t now_ = 1000;
  TimerWheel timers_{now_};
};

TEST_F(KeyAgreementCacheTest, MadeOnATimerTurnAndHandedOutOnce) {
  KeyAgreementCache cache(&timers_);
  cache.Want(Key(0));
  cache.Want(Key(0));  // once is enough
  EXPECT_EQ(cache.queued(), 1u);
  // Not inside Want(): nothing is ready before the shard's next turn.
  EXPECT_FALSE(cache.Take(Key(0)).has_value());
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.ready(), 1u);
  std::optional<KeyAgreement> a = cache.Take(Key(0));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->as_public.size(), 65u);
  EXPECT_FALSE(cache.Take(Key(0)).has_value());  // used once
  EXPECT_FALSE(cache.Take(Key(1)).has_value());
}

TEST_F(KeyAgreementCacheTest, AFewPerTurn) {
  KeyAgreementCache cache(&timers_);
  for (int i = 0; i < 5; ++i) cache.Want(Key(i));
  EXPECT_EQ(cache.queued(), 5u);
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.queued(), 5u - KeyAgreementCache::kPerTurn);
  EXPECT_EQ(cache.ready(), size_t{KeyAgreementCache::kPerTurn});
  for (int i = 0; i < 5; ++i) Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.queued(), 0u);
  EXPECT_EQ(cache.ready(), 5u);
}

TEST_F(KeyAgreementCacheTest, AKeyThatIsNoPointGetsNothing) {
  KeyAgreementCache cache(&timers_);
  std::string bad = Key(0);
  bad[10] ^= 1;
  cache.Want(bad);
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.queued(), 0u);
  EXPECT_EQ(cache.ready(), 0u);
}

TEST_F(KeyAgreementCacheTest, WaitsWhileWakeUpsAreSent) {
  KeyAgreementCache cache(&timers_);
  cache.NoteBusy();
  cache.Want(Key(0));
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.ready(), 0u);  // a burst is on: later
  Advance(KeyAgreementCache::kQuietMs / 2);
  cache.NoteBusy();  // still on
  Advance(KeyAgreementCache::kQuietMs - 1);
  EXPECT_EQ(cache.ready(), 0u);
  Advance(KeyAgreementCache::kQuietMs);
  EXPECT_EQ(cache.ready(), 1u);
}

TEST_F(KeyAgreementCacheTest, BoundedTheOldestMakesRoom) {
  KeyAgreementCache cache(&timers_, /*max_entries=*/2);
  cache.Want(Key(0));
  Advance(KeyAgreementCache::kTurnMs);
  Advance(KeyAgreementCache::kTurnMs);
  cache.Want(Key(1));
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.ready(), 2u);
  // Full: the oldest ready one (Key 0) goes for the new one.
  cache.Want(Key(2));
  EXPECT_EQ(cache.ready() + cache.queued(), 2u);
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_FALSE(cache.Take(Key(0)).has_value());
  EXPECT_TRUE(cache.Take(Key(1)).has_value());
  EXPECT_TRUE(cache.Take(Key(2)).has_value());
  // Only queued work and no room: nothing more is taken on.
  KeyAgreementCache busy(&timers_, /*max_entries=*/1);
  busy.Want(Key(3));
  busy.Want(Key(4));
  EXPECT_EQ(busy.queued(), 1u);
}

TEST_F(KeyAgreementCacheTest, UnusedOnesAgeOutAndGoneOnesAreDropped) {
  KeyAgreementCache cache(&timers_);
  cache.Want(Key(0));
  cache.Want(Key(1));
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_EQ(cache.ready(), 2u);
  cache.Drop(Key(1));  // the push service said 410
  EXPECT_EQ(cache.ready(), 1u);
  // A device that never needed its agreement: gone after kMaxAgeMs (found
  // at the next turn).
  Advance(KeyAgreementCache::kMaxAgeMs + 1);
  cache.Want(Key(2));
  Advance(KeyAgreementCache::kTurnMs);
  EXPECT_FALSE(cache.Take(Key(0)).has_value());
  EXPECT_TRUE(cache.Take(Key(2)).has_value());
}

TEST(KeyAgreementTest, MovesLeaveNoSecretBehind) {
  absl::StatusOr<KeyAgreement> a = AgreeKey(Key(0));
  absl::StatusOr<KeyAgreement> b = AgreeKey(Key(1));
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string secret = b->ecdh_secret;
  KeyAgreement target = *std::move(a);
  target = *std::move(b);
  EXPECT_EQ(target.ecdh_secret, secret);
  EXPECT_TRUE(b->ecdh_secret.empty());  // NOLINT: moved-from on purpose
  KeyAgreement moved(std::move(target));
  EXPECT_TRUE(target.ecdh_secret.empty());  // NOLINT
  EXPECT_EQ(moved.ecdh_secret, secret);
}

TEST_F(KeyAgreementCacheTest, DestroyedWithWorkQueued) {
  auto cache = std::make_unique<KeyAgreementCache>(&timers_);
  cache->Want(Key(0));
  cache.reset();
  Advance(KeyAgreementCache::kTurnMs);  // the turn was cancelled
}

}  // namespace
}  // namespace pimap::webpush
