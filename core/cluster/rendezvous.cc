// Rendezvous hashing (rendezvous.h).
#include "core/cluster/rendezvous.h"

#include "core/base/shard_for_user.h"

namespace pimap::cluster {
namespace {

// splitmix64's finaliser: a bijection that spreads every input bit.
uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t RendezvousScore(absl::string_view user, absl::string_view node_id) {
  // Two independent hashes combined, rather than a hash of a concatenation:
  // no separator can make ("ab","c") and ("a","bc") collide.
  return Mix64(Fnv1a64(user) ^ Mix64(Fnv1a64(node_id) + 0x9e3779b97f4a7c15ULL));
}

size_t RendezvousOwner(absl::string_view user,
                       const std::vector<std::string>& node_ids) {
  return RendezvousOwner(user, node_ids.size(), [&](size_t i) {
    return absl::string_view(node_ids[i]);
  });
}

size_t RendezvousOwner(absl::string_view user, size_t count,
                       absl::FunctionRef<absl::string_view(size_t)> id_at) {
  size_t best = SIZE_MAX;
  uint64_t best_score = 0;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t score = RendezvousScore(user, id_at(i));
    if (best == SIZE_MAX || score > best_score ||
        (score == best_score && id_at(i) < id_at(best))) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

}  // namespace pimap::cluster
