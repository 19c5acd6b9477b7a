// Connecting to a name's addresses one after another until one answers: what
// every outbound client of a shard (Web Push and EMN over HTTPS, SMTP for
// XDELIVER) does with what the Resolver found. IPv6 and IPv4 in the order the
// resolver gave them; the last failure is the one reported.
#ifndef PIMAP_CORE_ENGINE_CONNECT_ANY_H_
#define PIMAP_CORE_ENGINE_CONNECT_ANY_H_

#include <vector>

#include "core/engine/resolver.h"
#include "core/engine/socket.h"

namespace pimap::engine {

// `done` runs once on the shard with the first connected socket, or with the
// last address's error (Unavailable "no address" for none). The caller that
// may be gone by then keeps its own liveness check in `done` (and aborts a
// socket it no longer wants).
void ConnectAny(Shard* shard, std::vector<ResolvedAddress> addresses,
                Socket::ConnectCallback done);

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_CONNECT_ANY_H_
