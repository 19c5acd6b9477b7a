// A client of etcd's v3 API through its JSON gateway (HTTP/1.1 POSTs to
// /v3/kv/..., /v3/lease/...; etcd 3.4 as Debian ships it), on the shard's
// ring: every call is one plain-HTTP request made with
// outband_http::StartHttpsRequest, never blocking the shard. The cluster
// agent (core/cluster) uses it for membership (a node key under the node's
// lease) and user ownership (a key per user, created only if absent).
//
// Why the JSON gateway and not gRPC: no gRPC/protobuf stack in the build for
// a handful of unary calls; the gateway is part of every etcd server.
//
// Endpoints are tried in order; a call that cannot reach one (connect,
// timeout, 5xx) is retried once on the next. Keys and values are bytes
// (base64 on the wire, as the gateway wants); int64 fields arrive as JSON
// strings and are parsed strictly.
//
// Hazard: `done` may run after the caller is gone; callers capture a weak
// liveness token, as everywhere on the rings.
#ifndef PIMAP_BINDINGS_ETCD_ETCD_CLIENT_H_
#define PIMAP_BINDINGS_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bindings/outband_http/https_request.h"

namespace pimap::engine {
class Shard;
}

namespace pimap::etcd {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;  // 0: none
};

struct RangeResult {
  int64_t revision = 0;  // the store's revision when read
  std::vector<KeyValue> kvs;
};

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl_s = 0;
};

// The outcome of a compare-and-put/delete transaction.
struct TxnResult {
  bool succeeded = false;  // the comparison held and the write was made
  int64_t revision = 0;
  // When it did not hold: the key as it is now (absent: empty optional-like,
  // `current_exists` false).
  bool current_exists = false;
  KeyValue current;
};

// The smallest key greater than every key with `prefix` (etcd's range_end for
// a prefix scan): the prefix with its last byte below 0xff incremented.
std::string PrefixEnd(absl::string_view prefix);

class EtcdClient {
 public:
  template <typename T>
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using StatusDone = absl::AnyInvocable<void(absl::Status)>;

  // `endpoints`: at least one (plain http; host used for the Host header).
  EtcdClient(engine::Shard* shard,
             std::vector<outband_http::HttpsTarget> endpoints,
             int64_t timeout_ms);
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // POST /v3/lease/grant {"TTL": ttl_s}.
  void Grant(int64_t ttl_s, Done<LeaseGrant> done);
  // One keep-alive of `lease`: the TTL it now has. NotFound when the lease
  // has expired or was revoked (the gateway answers TTL 0 / no TTL then).
  void KeepAlive(int64_t lease, Done<int64_t> done);
  // POST /v3/lease/revoke; a lease already gone is OK.
  void Revoke(int64_t lease, StatusDone done);

  // Put `value` at `key`, attached to `lease` (0: none). The new revision.
  void Put(std::string key, std::string value, int64_t lease,
           Done<int64_t> done);
  // Every key in [key, range_end) (range_end empty: `key` alone), sorted.
  void Range(std::string key, std::string range_end, Done<RangeResult> done);
  // Delete [key, range_end) (range_end empty: `key` alone); deleted count.
  void Delete(std::string key, std::string range_end, Done<int64_t> done);

  // Transaction: if `key` does not exist (create_revision == 0), put `value`
  // under `lease`; else read it back into TxnResult::current.
  // Hazard: a call retried on the next endpoint (the first timed out) may
  // find its own claim, made by the first attempt: not succeeded, with
  // `current.value == value` (and `current.lease == lease`).
  void PutIfAbsent(std::string key, std::string value, int64_t lease,
                   Done<TxnResult> done);
  // Transaction: if `key` holds exactly `expected`, delete it; else read it
  // back. (An owner releasing a user must not delete a successor's claim.)
  void DeleteIfValue(std::string key, std::string expected,
                     Done<TxnResult> done);

 private:
  class Call;
  // What a call in flight needs, shared with it: `done` may run after the
  // client is gone, and the call still records which endpoint answered.
  struct State {
    engine::Shard* shard;
    std::vector<outband_http::HttpsTarget> endpoints;
    int64_t timeout_ms;
    size_t preferred = 0;  // the endpoint that answered last
  };
  // POSTs `body` to `path`: `done` gets the 2xx body, or the error (an error
  // body's status, or the transport's).
  void Post(absl::string_view path, std::string body,
            absl::AnyInvocable<void(absl::StatusOr<std::string>)> done);

  std::shared_ptr<State> state_;
};

}  // namespace pimap::etcd

#endif  // PIMAP_BINDINGS_ETCD_ETCD_CLIENT_H_
