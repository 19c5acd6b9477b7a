// A shard's pre-login connection counts (preauth_gate.h).
#include "core/base/preauth_gate.h"

namespace pimap {

bool PreAuthGate::Admit(const Endpoint& peer) {
  if (max_total_ != 0 && total_ >= max_total_) return false;
  if (peer.known()) {
    uint32_t& n = per_ip_[KeyOf(peer)];
    if (max_per_ip_ != 0 && n >= max_per_ip_) return false;
    ++n;
  }
  ++total_;
  return true;
}

void PreAuthGate::Leave(const Endpoint& peer) {
  if (total_ > 0) --total_;
  if (!peer.known()) return;
  auto it = per_ip_.find(KeyOf(peer));
  if (it == per_ip_.end()) return;
  if (--it->second == 0) per_ip_.erase(it);
}

size_t PreAuthGate::count(const Endpoint& peer) const {
  auto it = per_ip_.find(KeyOf(peer));
  return it == per_ip_.end() ? 0 : it->second;
}

}  // namespace pimap
