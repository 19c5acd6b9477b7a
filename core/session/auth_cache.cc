// AuthCache: keyed password digests per user with a TTL and a FIFO bound; see
// auth_cache.h for the contract and the eviction design.
#include "core/session/auth_cache.h"

#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <utility>

namespace pimap::session {
namespace {

static_assert(AuthCache::kDigestSize == SHA256_DIGEST_LENGTH);

// Stale FIFO items tolerated beyond the live ones before compacting, so that a
// tiny cache does not compact on nearly every replacement.
constexpr size_t kFifoSlack = 16;

// BoringSSL's HMAC/RAND calls fail only on allocation failure or a broken
// entropy source; a cache that cannot key or hash must not guess, and the
// process cannot do TLS either, so stop.
void Require(int ok) {
  if (ok != 1) std::abort();
}

}  // namespace

AuthCache::AuthCache(int64_t ttl_ms, size_t max_entries)
    : ttl_ms_(ttl_ms), max_entries_(max_entries) {
  // Drawn even when disabled: cheap, and the key is never left uninitialised.
  Require(RAND_bytes(key_.data(), key_.size()));
}

AuthCache::~AuthCache() {
  for (auto& [user, entry] : entries_) {
    OPENSSL_cleanse(entry.digest.data(), entry.digest.size());
  }
  OPENSSL_cleanse(key_.data(), key_.size());
}

AuthCache::Verdict AuthCache::Check(absl::string_view user,
                                    absl::string_view password,
                                    int64_t now_ms) {
  if (!enabled()) return Verdict::kMiss;
  auto it = entries_.find(user);
  if (it == entries_.end()) return Verdict::kMiss;
  if (Expired(it->second, now_ms)) {
    Erase(it);
    MaybeCompact();
    return Verdict::kMiss;
  }
  Digest digest = ComputeDigest(user, password);
  const bool equal = CRYPTO_memcmp(digest.data(), it->second.digest.data(),
                                   kDigestSize) == 0;
  OPENSSL_cleanse(digest.data(), digest.size());
  return equal ? Verdict::kMatch : Verdict::kMismatch;
}

void AuthCache::Remember(absl::string_view user, absl::string_view password,
                         int64_t now_ms) {
  if (!enabled()) return;
  // Expired entries at the front go first, so they free room before a live
  // entry would be evicted for the new one.
  Prune(now_ms);
  auto it = entries_.find(user);
  if (it == entries_.end()) {
    while (entries_.size() >= max_entries_) {
      // Every live entry has exactly one live FIFO item, so a non-empty map
      // guarantees a live item before the FIFO runs out. Prune just left a
      // live item at the front, so the generation test is defensive: it keeps
      // eviction correct should Prune ever stop at a stale item.
      const Queued& oldest = fifo_.front();
      auto victim = entries_.find(oldest.user);
      if (victim != entries_.end() &&
          victim->second.generation == oldest.generation) {
        Erase(victim);
      }
      fifo_.pop_front();
    }
    it = entries_.try_emplace(std::string(user)).first;
  }
  Entry& entry = it->second;
  // On replacement the old digest is overwritten in place (same node), so
  // nothing of the old password's digest is left behind.
  entry.digest = ComputeDigest(user, password);
  entry.remembered_ms = now_ms;
  entry.generation = next_generation_++;
  fifo_.push_back(Queued{std::string(user), entry.generation});
  MaybeCompact();
}

void AuthCache::Forget(absl::string_view user) {
  auto it = entries_.find(user);
  if (it == entries_.end()) return;
  Erase(it);
  MaybeCompact();
}

AuthCache::Digest AuthCache::ComputeDigest(absl::string_view user,
                                           absl::string_view password) const {
  // Streamed into the HMAC rather than concatenated, so that no buffer holding
  // the password is ever built (and would need wiping).
  static constexpr uint8_t kSeparator = 0;
  bssl::ScopedHMAC_CTX ctx;  // HMAC_CTX_cleanup wipes its state
  Require(HMAC_Init_ex(ctx.get(), key_.data(), key_.size(), EVP_sha256(),
                       nullptr));
  Require(HMAC_Update(ctx.get(),
                      reinterpret_cast<const uint8_t*>(user.data()),
                      user.size()));
  Require(HMAC_Update(ctx.get(), &kSeparator, 1));
  Require(HMAC_Update(ctx.get(),
                      reinterpret_cast<const uint8_t*>(password.data()),
                      password.size()));
  Digest out;
  unsigned int len = 0;
  Require(HMAC_Final(ctx.get(), out.data(), &len));
  if (len != kDigestSize) std::abort();
  return out;
}

bool AuthCache::Expired(const Entry& e, int64_t now_ms) const {
  // A clock that went backwards is treated as expired: a store login is
  // always safe, trusting an entry of unknown age is not.
  if (now_ms < e.remembered_ms) return true;
  // Unsigned difference: exact for any pair with now_ms >= remembered_ms,
  // where the signed one could overflow.
  const uint64_t age = static_cast<uint64_t>(now_ms) -
                       static_cast<uint64_t>(e.remembered_ms);
  return age >= static_cast<uint64_t>(ttl_ms_);
}

void AuthCache::Erase(Map::iterator it) {
  OPENSSL_cleanse(it->second.digest.data(), it->second.digest.size());
  entries_.erase(it);
}

bool AuthCache::Live(const Queued& q) const {
  auto it = entries_.find(q.user);
  return it != entries_.end() && it->second.generation == q.generation;
}

void AuthCache::Prune(int64_t now_ms) {
  while (!fifo_.empty()) {
    const Queued& front = fifo_.front();
    auto it = entries_.find(front.user);
    if (it != entries_.end() && it->second.generation == front.generation) {
      // FIFO order is Remember order: the first unexpired live item means
      // the rest are younger (for a monotonic now_ms), so stop.
      if (!Expired(it->second, now_ms)) break;
      Erase(it);
    }
    fifo_.pop_front();
  }
}

void AuthCache::MaybeCompact() {
  // Every stale item was made stale by one Remember/Forget/Check since the
  // last compaction, and a compaction costs less than twice the stale items
  // it removes: O(1) amortised, FIFO length <= 2 * size() + slack + 1.
  if (fifo_.size() <= 2 * entries_.size() + kFifoSlack) return;
  std::deque<Queued> live;
  for (Queued& q : fifo_) {
    if (Live(q)) live.push_back(std::move(q));
  }
  fifo_ = std::move(live);
}

}  // namespace pimap::session
