// Stable user -> shard mapping (see shard_for_user.h). Changing anything in
// this file re-homes users: treat the output as an on-disk format.
#include "core/base/shard_for_user.h"

namespace pimap {

uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

uint32_t JumpConsistentHash(uint64_t key, uint32_t num_buckets) {
  int64_t b = -1;
  int64_t j = 0;
  while (j < static_cast<int64_t>(num_buckets)) {
    b = j;
    key = key * 2862933555777941757ull + 1;
    j = static_cast<int64_t>((b + 1) * (static_cast<double>(1ll << 31) /
                                        static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<uint32_t>(b);
}

uint32_t ShardForUser(absl::string_view user_key, uint32_t shard_count) {
  if (shard_count <= 1) return 0;
  return JumpConsistentHash(Fnv1a64(user_key), shard_count);
}

}  // namespace pimap
