// AuthCache: one shard's memory of the last password the store accepted for
// each user, so that a returning P-IMAP device (LOGIN user#device password) is
// admitted without a store login when it presents that password again.
//
// Semantics (the contract the login path relies on):
//  * Remember(user, password, now) records that the store accepted the pair;
//    it replaces any earlier password of the user.
//  * Check(user, password, now) is kMatch only when `password` equals the last
//    remembered password of `user` and it was remembered less than ttl_ms
//    before `now` (now - remembered < ttl). An expired entry is dropped and
//    reported as kMiss; kMismatch keeps the entry (the store decides: on
//    acceptance the caller calls Remember, on rejection Forget).
//  * ttl_ms <= 0 or max_entries == 0 disables the cache: Check is always
//    kMiss, Remember does nothing.
//  * At most max_entries users are held; remembering a new user when full
//    drops the user remembered longest ago.
//
// Secrets: the plain password is never stored. Each entry holds
// HMAC-SHA256(key, user || 0x00 || password) with a 32-byte key drawn per
// instance from RAND_bytes, so digests are useless outside this process and
// differ between instances; comparisons are constant time. The NUL separator
// makes the input injective for a fixed user (the map is keyed by user, so a
// digest is only ever compared with one of the same user). Discarded digests
// and, on destruction, the key and all digests are wiped.
//
// Bound and eviction: a node_hash_map (user -> entry) plus a FIFO of (user,
// generation) in Remember order, with lazy deletion: replacing, forgetting or
// expiring an entry leaves its FIFO item stale (its generation no longer
// matches the map's), and eviction pops stale items until it finds a live one.
// Stale items are bounded by compacting the FIFO when it exceeds twice the
// live entries (plus slack); each compaction is paid for by the operations
// that made the items stale, so every operation is O(1) amortised. "Oldest"
// means first remembered, which is the oldest Remember time as long as now_ms
// never goes backwards (the shard's monotonic clock). node_hash_map (rather
// than flat_hash_map) keeps each digest at one address for its lifetime, so a
// rehash never leaves unwiped copies in freed memory.
//
// Per shard, single-threaded: no locks. Not copyable or movable (one key per
// instance, never duplicated).
#ifndef PIMAP_CORE_SESSION_AUTH_CACHE_H_
#define PIMAP_CORE_SESSION_AUTH_CACHE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"

namespace pimap::session {

class AuthCache {
 public:
  enum class Verdict { kMatch, kMismatch, kMiss };

  static constexpr size_t kKeySize = 32;
  static constexpr size_t kDigestSize = 32;  // SHA-256
  using Digest = std::array<uint8_t, kDigestSize>;

  // ttl_ms <= 0 disables the cache (Check always kMiss, Remember does nothing).
  explicit AuthCache(int64_t ttl_ms, size_t max_entries = size_t{1} << 20);
  ~AuthCache();

  AuthCache(const AuthCache&) = delete;
  AuthCache& operator=(const AuthCache&) = delete;

  // Whether `password` is the last accepted password of `user`, accepted less
  // than ttl ago (measured from Remember).
  Verdict Check(absl::string_view user, absl::string_view password,
                int64_t now_ms);
  // The store accepted (user, password) at now_ms.
  void Remember(absl::string_view user, absl::string_view password,
                int64_t now_ms);
  // The store rejected a password for user (or it changed): drop the entry.
  void Forget(absl::string_view user);

  // Users held, including expired ones not yet dropped.
  size_t size() const { return entries_.size(); }
  bool enabled() const { return ttl_ms_ > 0 && max_entries_ > 0; }

  // The digest this instance stores for (user, password); for tests of the
  // keying and the input encoding.
  Digest DigestForTesting(absl::string_view user,
                          absl::string_view password) const {
    return ComputeDigest(user, password);
  }
  // FIFO length, live and stale items; for tests of the bound.
  size_t QueuedForTesting() const { return fifo_.size(); }

 private:
  struct Entry {
    Digest digest;
    int64_t remembered_ms = 0;
    uint64_t generation = 0;  // matches the entry's live FIFO item
  };
  struct Queued {
    std::string user;
    uint64_t generation = 0;
  };
  using Map = absl::node_hash_map<std::string, Entry>;

  Digest ComputeDigest(absl::string_view user,
                       absl::string_view password) const;
  bool Expired(const Entry& e, int64_t now_ms) const;
  // Wipes the entry's digest and erases it (its FIFO item becomes stale).
  // Never touches the FIFO, so callers may hold references into it.
  void Erase(Map::iterator it);
  // Whether the FIFO item still names the live entry of its user.
  bool Live(const Queued& q) const;
  // Pops stale and expired items off the FIFO front, dropping the expired
  // entries.
  void Prune(int64_t now_ms);
  // Rebuilds the FIFO from its live items once stale ones dominate it.
  void MaybeCompact();

  const int64_t ttl_ms_;
  const size_t max_entries_;
  std::array<uint8_t, kKeySize> key_;
  Map entries_;
  std::deque<Queued> fifo_;
  uint64_t next_generation_ = 1;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_AUTH_CACHE_H_
