// Reading the PROXY protocol header (core/base/proxy_header.h) off a connection
// just accepted from a trusted load balancer (--proxy-protocol-from), before
// the connection is handed to its protocol (IMAP greeting, TLS handshake,
// HTTP). Hazard: the client's first bytes may sit right behind the header in
// the same segment (a TLS ClientHello); a plain recv would take them too, and
// the protocol that reads next would miss them. So the header is read with
// MSG_PEEK first, parsed, and then exactly its length is consumed: the
// connection's stream begins at the client's first byte for whoever reads it.
#ifndef PIMAP_CORE_ENGINE_PROXY_ACCEPT_H_
#define PIMAP_CORE_ENGINE_PROXY_ACCEPT_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/base/cidr.h"
#include "core/base/client_address.h"
#include "core/base/proxy_header.h"
#include "core/base/timer_wheel.h"
#include "core/engine/completion.h"

namespace pimap::engine {

class Shard;
class ProxyHeaderReader;

// A listener's connections waiting for their header, per shard: bounded (a
// trusted range is often a whole cluster network, and every waiting
// connection holds a descriptor slot that no pre-auth limit sees until its
// header names the client), and closed at once when the listener drains.
class ProxyHeaderGate {
 public:
  static constexpr size_t kDefaultMaxPending = 256;
  explicit ProxyHeaderGate(size_t max_pending = kDefaultMaxPending)
      : max_pending_(max_pending) {}
  ProxyHeaderGate(const ProxyHeaderGate&) = delete;
  ProxyHeaderGate& operator=(const ProxyHeaderGate&) = delete;
  ~ProxyHeaderGate() { AbortAll(); }

  size_t pending() const { return readers_.size(); }
  bool full() const { return readers_.size() >= max_pending_; }
  // Closes every connection still waiting (a drain, a stop): none is handed
  // on afterwards.
  void AbortAll();

 private:
  friend class ProxyHeaderReader;
  size_t max_pending_;
  absl::flat_hash_set<ProxyHeaderReader*> readers_;
};

// Who may send a PROXY header (--proxy-protocol-from): a connection from one
// of these addresses must begin with one; from any other, none is read (its
// bytes are the client's own, and a forged header is just bad input).
struct ProxyProtocolPolicy {
  std::vector<CidrRange> trusted;
  int64_t timeout_ms = 5000;  // for the header to arrive
};

// Hands an accepted connection to `accept` with the client's address: at once
// for a peer the policy does not trust (or no policy), after its PROXY header
// for one it does (a connection without a valid header is closed and logged).
// A peer past the gate's bound is closed at once.
void AcceptWithProxyPolicy(
    Shard* shard, const ProxyProtocolPolicy* policy, ProxyHeaderGate* gate,
    int slot, const ClientAddress& accepted,
    absl::AnyInvocable<void(int slot, const ClientAddress& client)> accept);

class ProxyHeaderReader {
 public:
  // With the addresses the header carries (the accepted ones kept for a
  // header without any: a balancer's health check), or an error, after which
  // the connection is closed already (a missing or malformed header, none
  // within `timeout_ms`, the peer gone).
  using Done = absl::AnyInvocable<void(absl::StatusOr<ClientAddress>)>;
  static void Start(Shard* shard, ProxyHeaderGate* gate, int slot,
                    const ClientAddress& accepted, int64_t timeout_ms,
                    Done done);

  // Cancels what is in flight, closes the connection, reports `error`.
  void Fail(absl::Status error);

 private:
  ProxyHeaderReader(Shard* shard, ProxyHeaderGate* gate, int slot,
                    const ClientAddress& accepted, Done done);
  ~ProxyHeaderReader();
  void Peek();
  void OnPeek(const io_uring_cqe& cqe);
  void OnConsumed(const io_uring_cqe& cqe);
  void OnAux(const io_uring_cqe& cqe);
  // Out of the gate (finished or failed): it is never touched again.
  void LeaveGate();
  void MaybeFree();

  Shard* shard_;
  ProxyHeaderGate* gate_;  // null once out of it
  int slot_;
  ClientAddress address_;
  Done done_;
  ProxyHeader header_;
  int ops_in_flight_ = 0;
  bool finished_ = false;  // done_ ran (or runs at free)
  TimerWheel::TimerId deadline_ = 0;
  TimerWheel::TimerId retry_ = 0;
  int64_t retry_ms_;  // the next wait for the rest of a cut header
  char buffer_[kMaxProxyHeaderBytes];
  MemberCompletion<ProxyHeaderReader, &ProxyHeaderReader::OnPeek> peek_op_{
      this};
  MemberCompletion<ProxyHeaderReader, &ProxyHeaderReader::OnConsumed>
      consume_op_{this};
  MemberCompletion<ProxyHeaderReader, &ProxyHeaderReader::OnAux> aux_op_{this};
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_PROXY_ACCEPT_H_
