// Taking a connection's descriptor off this shard for a hand-over (a LOGIN,
// a cookie or a request for another shard's user), the same way for every
// binding: reading stops, the send in flight completes, then the slot and,
// for TLS, the SSL object with the ciphertext it has buffered are handed to
// `detached`. Bytes a receive already in flight still delivers go to the
// transport's handler as usual (the binding keeps them and sends them along).
//
// Hazard: a peer that does not read could keep the last send in flight for
// ever and pin the connection between shards; after `timeout_ms` the
// transport is aborted and `timed_out` runs instead. Exactly one of the two
// callbacks runs, on this shard; the socket and the transport are gone by
// then either way.
#ifndef PIMAP_BINDINGS_TLS_DETACH_H_
#define PIMAP_BINDINGS_TLS_DETACH_H_

#include <openssl/ssl.h>

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "core/base/timer_wheel.h"

namespace pimap::engine {
class Socket;
class Transport;
}  // namespace pimap::engine

namespace pimap::tls {

// `transport` is `socket` itself or a TlsTransport over it. Returns the
// timeout's timer, for a caller that may be torn down meanwhile to cancel.
TimerWheel::TimerId DetachForHandOver(
    engine::Socket* socket, engine::Transport* transport, TimerWheel& timers,
    int64_t timeout_ms, absl::AnyInvocable<void(int slot, SSL* ssl)> detached,
    absl::AnyInvocable<void()> timed_out);

}  // namespace pimap::tls

#endif  // PIMAP_BINDINGS_TLS_DETACH_H_
