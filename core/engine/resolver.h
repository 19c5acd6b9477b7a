// Name resolution for the gateway's own outbound connections (out-of-band
// channels), off the shard:
// glibc's getaddrinfo_a resolves on a thread of its own, and the answer comes
// back to the shard's thread through Shard::Post, where it finds this resolver
// through the shard's services (no pointer into an object that may be gone).
// Answers are cached per host and port for a minute; concurrent questions for
// one name share one lookup; lookups in flight are bounded.
#ifndef PIMAP_CORE_ENGINE_RESOLVER_H_
#define PIMAP_CORE_ENGINE_RESOLVER_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::engine {

class Shard;

struct ResolvedAddress {
  sockaddr_storage address{};
  socklen_t len = 0;
};

// "IP:PORT" or "[IPv6]:PORT", no names (a cluster member's address: never
// waits for DNS).
absl::StatusOr<ResolvedAddress> ParseIpPort(absl::string_view text);

// Whether a connection to `address` could reach the gateway's own network
// rather than the Internet: loopback, private (RFC 1918, ULA), link-local,
// CGNAT, unspecified, multicast, and IPv4-mapped forms of those.
bool IsInternalAddress(const sockaddr_storage& address);

class Resolver {
 public:
  static constexpr int64_t kCacheMs = 60000;
  static constexpr size_t kMaxCached = 4096;
  static constexpr size_t kMaxLookups = 256;  // distinct names in flight

  using Done =
      absl::AnyInvocable<void(absl::StatusOr<std::vector<ResolvedAddress>>)>;

  explicit Resolver(Shard* shard) : shard_(shard) {}
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // `done` runs on the shard's thread: at once for an IP literal or a cached
  // name, else when the lookup ends (ResourceExhausted when too many are in
  // flight, NotFound when the name does not resolve).
  void Resolve(const std::string& host, uint16_t port, Done done);

  // From the lookup's thread via Shard::Post (resolver.cc).
  void Deliver(const std::string& key,
               absl::StatusOr<std::vector<ResolvedAddress>> result);

 private:
  struct Cached {
    std::vector<ResolvedAddress> addresses;
    int64_t expires_ms = 0;
  };
  Shard* shard_;
  absl::flat_hash_map<std::string, Cached> cache_;
  absl::flat_hash_map<std::string, std::vector<Done>> waiting_;
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_RESOLVER_H_
