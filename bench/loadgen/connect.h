// One outbound connection of a bench device on its shard's ring: a real socket
// (so it can be bound to a chosen source address), connected through io_uring,
// then moved into the ring's direct-descriptor table. Shared by the IMAP
// devices (fleet.h) and the HTTP binding's extra connections (http_client.h).
#ifndef PIMAP_BENCH_LOADGEN_CONNECT_H_
#define PIMAP_BENCH_LOADGEN_CONNECT_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::bench {

// Gets exactly one of the two calls, on the shard's thread; it must stay alive
// until then.
class ConnectClient {
 public:
  virtual void OnConnected(engine::Socket* socket) = 0;
  virtual void OnConnectFailed(int err, const char* what) = 0;

 protected:
  ~ConnectClient() = default;
};

// Starts a connect to `addr`, from `source` when not null (IPv4 only).
void StartConnect(engine::Shard* shard, const sockaddr_storage& addr,
                  socklen_t len, const in_addr* source, ConnectClient* client);

// An errno from the connect path explained in terms of the limit that was hit.
std::string ConnectErrorKind(int err);

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_CONNECT_H_
