// etcd as the cluster's coordination store (etcd_coordinator.h).
#include "bindings/etcd/etcd_coordinator.h"

#include <utility>

namespace pimap::etcd {
namespace {

cluster::KeyRange ToKeyRange(const RangeResult& range) {
  cluster::KeyRange out;
  out.revision = range.revision;
  out.keys.reserve(range.kvs.size());
  for (const KeyValue& kv : range.kvs) {
    out.keys.push_back({kv.key, kv.value, kv.lease});
  }
  return out;
}

cluster::WriteOutcome ToOutcome(const TxnResult& txn) {
  cluster::WriteOutcome out;
  out.written = txn.succeeded;
  out.holder_exists = !txn.succeeded && txn.current_exists;
  if (out.holder_exists) {
    out.holder = {txn.current.key, txn.current.value, txn.current.lease};
  }
  return out;
}

}  // namespace

void EtcdCoordinator::Grant(int64_t ttl_s, Done<int64_t> done) {
  client_->Grant(ttl_s, [done = std::move(done)](
                            absl::StatusOr<LeaseGrant> grant) mutable {
    if (!grant.ok()) return done(grant.status());
    done(grant->id);
  });
}

void EtcdCoordinator::KeepAlive(int64_t lease, Done<int64_t> done) {
  client_->KeepAlive(lease, std::move(done));
}

void EtcdCoordinator::Revoke(int64_t lease, Done<bool> done) {
  client_->Revoke(lease, [done = std::move(done)](absl::Status s) mutable {
    if (!s.ok()) return done(s);
    done(true);
  });
}

void EtcdCoordinator::Put(std::string key, std::string value, int64_t lease,
                          Done<bool> done) {
  client_->Put(std::move(key), std::move(value), lease,
               [done = std::move(done)](absl::StatusOr<int64_t> r) mutable {
                 if (!r.ok()) return done(r.status());
                 done(true);
               });
}

void EtcdCoordinator::List(std::string prefix, Done<cluster::KeyRange> done) {
  std::string end = PrefixEnd(prefix);
  client_->Range(
      std::move(prefix), std::move(end),
      [done = std::move(done)](absl::StatusOr<RangeResult> range) mutable {
        if (!range.ok()) return done(range.status());
        done(ToKeyRange(*range));
      });
}

void EtcdCoordinator::Get(std::string key, Done<cluster::KeyRange> done) {
  client_->Range(
      std::move(key), "",
      [done = std::move(done)](absl::StatusOr<RangeResult> range) mutable {
        if (!range.ok()) return done(range.status());
        done(ToKeyRange(*range));
      });
}

void EtcdCoordinator::PutIfAbsent(std::string key, std::string value,
                                  int64_t lease,
                                  Done<cluster::WriteOutcome> done) {
  client_->PutIfAbsent(
      std::move(key), std::move(value), lease,
      [done = std::move(done)](absl::StatusOr<TxnResult> txn) mutable {
        if (!txn.ok()) return done(txn.status());
        done(ToOutcome(*txn));
      });
}

void EtcdCoordinator::DeleteIfValue(std::string key, std::string expected,
                                    Done<cluster::WriteOutcome> done) {
  client_->DeleteIfValue(
      std::move(key), std::move(expected),
      [done = std::move(done)](absl::StatusOr<TxnResult> txn) mutable {
        if (!txn.ok()) return done(txn.status());
        done(ToOutcome(*txn));
      });
}

}  // namespace pimap::etcd
