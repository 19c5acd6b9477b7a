// Listening sockets handed from one pimapd process to the next (a graceful
// upgrade, SIGUSR2) or from systemd (socket activation): the LISTEN_FDS /
// LISTEN_PID / LISTEN_FDNAMES protocol of sd_listen_fds(3). A process-wide
// pool, filled once before any thread starts, from which each shard's
// Listener takes a socket for its address instead of binding a new one.
//
// Also the other direction: every listening socket this process holds, named,
// so that an upgrade can pass them all to the new binary (every shard's socket
// of an SO_REUSEPORT group is passed: connections queued on any of them are
// then accepted by the new process instead of being reset when this one
// closes its copy).
#ifndef PIMAP_CORE_ENGINE_INHERITED_SOCKETS_H_
#define PIMAP_CORE_ENGINE_INHERITED_SOCKETS_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pimap::engine {

// The first inherited descriptor (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

struct NamedSocket {
  int fd = -1;
  std::string name;  // "imap@127.0.0.1:1143"-like; may be empty
};

// Parses the three variables' values (nullptr: unset). Nothing is inherited
// (an empty list) when LISTEN_FDS is unset or LISTEN_PID is not `self` (the
// variables were meant for another process, e.g. our parent). Malformed
// values are an error. Names missing from LISTEN_FDNAMES are empty.
absl::StatusOr<std::vector<NamedSocket>> ParseListenFds(
    const char* listen_fds, const char* listen_pid, const char* listen_fdnames,
    pid_t self);

// Reads, then removes, the variables from the environment (call before any
// thread starts: unsetenv races getenv), sets FD_CLOEXEC on the descriptors
// and puts them in the pool. Returns how many were inherited.
absl::StatusOr<int> AdoptInheritedSocketsFromEnvironment();
// Puts sockets in the pool (tests; AdoptInheritedSocketsFromEnvironment).
void AdoptInheritedSockets(std::vector<NamedSocket> sockets);

// Takes a pooled listening stream socket bound to exactly `address` (compared
// by getsockname); -1 when there is none left. Thread-safe.
int TakeInheritedSocket(const sockaddr* address, socklen_t length);
// A new descriptor (dup) of an inherited socket already taken for `address`,
// -1 if none: for the shards beyond the inherited sockets when the address
// cannot be bound again (a socket from systemd without ReusePort=); the
// shards then accept from one queue. Thread-safe.
int DupTakenSocket(const sockaddr* address, socklen_t length);
// Whether the pool holds a socket for host:port (resolved as listeners do).
bool HasInheritedSocket(const std::string& host, uint16_t port);
// Closes what no listener took (after every shard has started); returns how
// many.
int CloseUnclaimedInheritedSockets();

// The process's listening sockets, registered by Listener while it holds one.
void RegisterListeningSocket(int fd, std::string name);
void UnregisterListeningSocket(int fd);
std::vector<NamedSocket> ListeningSockets();

// Set once the sockets are handed to a new process: a listener's Unix socket
// file then belongs to the new process and is not unlinked at our stop.
void MarkListenersHandedOver();
bool ListenersHandedOver();

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_INHERITED_SOCKETS_H_
