// What the cluster needs of its coordination store: leases, keys, and two
// compare-and-write transactions. etcd implements it (bindings/etcd's
// EtcdCoordinator); the agent and the ownership claims see only this, so that
// their state machines are unit-tested with a fake (tests/core/cluster).
//
// Every call answers exactly once, on the calling shard's thread, possibly
// after the caller is gone (callers check a liveness token).
#ifndef PIMAP_CORE_CLUSTER_COORDINATOR_H_
#define PIMAP_CORE_CLUSTER_COORDINATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pimap::cluster {

struct StoredKey {
  std::string key;
  std::string value;
  int64_t lease = 0;
};

struct KeyRange {
  int64_t revision = 0;
  std::vector<StoredKey> keys;
};

// A compare-and-write: whether it was made, and if not what holds the key
// (`holder_exists` false: nobody).
struct WriteOutcome {
  bool written = false;
  bool holder_exists = false;
  StoredKey holder;
};

class Coordinator {
 public:
  template <typename T>
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  virtual ~Coordinator() = default;
  // A new lease of `ttl_s` seconds: its id.
  virtual void Grant(int64_t ttl_s, Done<int64_t> done) = 0;
  // One keep-alive: the TTL left (s). NotFound: the lease has expired.
  virtual void KeepAlive(int64_t lease, Done<int64_t> done) = 0;
  virtual void Revoke(int64_t lease, Done<bool> done) = 0;
  virtual void Put(std::string key, std::string value, int64_t lease,
                   Done<bool> done) = 0;
  // Every key that starts with `prefix`, sorted.
  virtual void List(std::string prefix, Done<KeyRange> done) = 0;
  virtual void Get(std::string key, Done<KeyRange> done) = 0;
  // Put `value` at `key` under `lease` unless the key exists.
  virtual void PutIfAbsent(std::string key, std::string value, int64_t lease,
                           Done<WriteOutcome> done) = 0;
  // Delete `key` if it holds exactly `expected`.
  virtual void DeleteIfValue(std::string key, std::string expected,
                             Done<WriteOutcome> done) = 0;
};

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_COORDINATOR_H_
