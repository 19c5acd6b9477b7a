// PreAuthGate: a shard's count of device connections that have not logged in
// yet, in all and per client IP, so that a flood of them cannot take the
// descriptors (--max-connections-per-shard) that logged-in sessions and store
// links need. Every binding (tcp/, http/) admits a new connection here and
// lets it go when it logs in or closes; past either bound the connection is
// told it is unavailable and closed (--max-preauth-per-shard,
// --max-preauth-per-ip). A connection handed over to its user's shard is
// admitted there again, so the owner shard's bounds hold for arrivals too:
// one IP costs each shard at most its per-IP bound.
//
// Per shard and touched only by its thread: no locks. Memory is bounded by the
// total bound (an IP has an entry only while it has a connection counted).
#ifndef PIMAP_CORE_BASE_PREAUTH_GATE_H_
#define PIMAP_CORE_BASE_PREAUTH_GATE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "core/base/client_address.h"

namespace pimap {

class PreAuthGate {
 public:
  // 0: no bound of that kind.
  PreAuthGate(size_t max_total, size_t max_per_ip)
      : max_total_(max_total), max_per_ip_(max_per_ip) {}
  PreAuthGate(const PreAuthGate&) = delete;
  PreAuthGate& operator=(const PreAuthGate&) = delete;

  // A connection from `peer` before login: counted and true, or false (not
  // counted) past a bound. An unknown address counts in the total only.
  bool Admit(const Endpoint& peer);
  // An admitted connection logged in or closed.
  void Leave(const Endpoint& peer);

  size_t count() const { return total_; }
  size_t count(const Endpoint& peer) const;

 private:
  struct IpKey {
    std::array<uint8_t, 16> ip;
    uint8_t family;
    bool operator==(const IpKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const IpKey& k) {
      return H::combine(std::move(h), k.ip, k.family);
    }
  };
  static IpKey KeyOf(const Endpoint& peer) { return {peer.ip, peer.family}; }

  size_t max_total_;
  size_t max_per_ip_;
  size_t total_ = 0;
  absl::flat_hash_map<IpKey, uint32_t> per_ip_;
};

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_PREAUTH_GATE_H_
