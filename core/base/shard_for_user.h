// ShardForUser: which shard owns a user. The mapping must be identical in
// every process and across restarts, because per-user durable state will be
// stored per shard; so it uses FNV-1a 64 (a fixed, documented function; never
// std::hash or absl::Hash, which are seeded per process) followed by Lamping
// & Veach's jump consistent hash, which moves only ~1/n of the users when
// the shard count changes from n-1 to n (a plain modulo would move most).
//
// Hazard: the caller must canonicalise `user_key` first (e.g. the
// authenticated user name as the store reports it, consistently cased):
// different spellings of one user hash to different shards.
#ifndef PIMAP_CORE_BASE_SHARD_FOR_USER_H_
#define PIMAP_CORE_BASE_SHARD_FOR_USER_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace pimap {

// Returns a shard in [0, shard_count). shard_count == 0 is treated as 1.
uint32_t ShardForUser(absl::string_view user_key, uint32_t shard_count);

// FNV-1a, 64-bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
uint64_t Fnv1a64(absl::string_view bytes);

// Jump consistent hash (arXiv:1406.2294). Returns a bucket in
// [0, num_buckets); num_buckets must be >= 1.
uint32_t JumpConsistentHash(uint64_t key, uint32_t num_buckets);

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_SHARD_FOR_USER_H_
