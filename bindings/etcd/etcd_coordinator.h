// The cluster's coordination store (core/cluster/coordinator.h) on etcd: each
// call is one EtcdClient request, the answer translated. A shard has one.
#ifndef PIMAP_BINDINGS_ETCD_ETCD_COORDINATOR_H_
#define PIMAP_BINDINGS_ETCD_ETCD_COORDINATOR_H_

#include <string>

#include "bindings/etcd/etcd_client.h"
#include "core/cluster/coordinator.h"

namespace pimap::etcd {

class EtcdCoordinator final : public cluster::Coordinator {
 public:
  explicit EtcdCoordinator(EtcdClient* client) : client_(client) {}

  void Grant(int64_t ttl_s, Done<int64_t> done) override;
  void KeepAlive(int64_t lease, Done<int64_t> done) override;
  void Revoke(int64_t lease, Done<bool> done) override;
  void Put(std::string key, std::string value, int64_t lease,
           Done<bool> done) override;
  void List(std::string prefix, Done<cluster::KeyRange> done) override;
  void Get(std::string key, Done<cluster::KeyRange> done) override;
  void PutIfAbsent(std::string key, std::string value, int64_t lease,
                   Done<cluster::WriteOutcome> done) override;
  void DeleteIfValue(std::string key, std::string expected,
                     Done<cluster::WriteOutcome> done) override;

 private:
  EtcdClient* client_;
};

}  // namespace pimap::etcd

#endif  // PIMAP_BINDINGS_ETCD_ETCD_COORDINATOR_H_
