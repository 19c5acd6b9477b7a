// A cluster's store-event intake (issue 16 item 2): the store may post a
// user's notification to any node; a node that does not serve the user passes
// it, as the store sent it, to the node that does. One per shard, called as
// the intake's divert hook (store/events/event_intake.h) on the user's shard.
//
// Who serves the user is what etcd says (its owner key), not the hashing: a
// user stays with the node that claimed it. Nobody holding the key means no
// node serves the user: no device can be told anything, and the notification
// is dropped (the sessions resynchronise from the store when they come back).
//
// Order: the store sends a user's notifications one after another; they are
// passed on one at a time per user, in that order (a FIFO per user, bounded:
// past kMaxQueuedPerUser, or kMaxQueued for the shard, they are dropped and
// counted). A failed post drops what waits behind it for that user: the
// owner reconciles from the store, as after any lost notification.
#ifndef PIMAP_BINDINGS_CLUSTER_INTAKE_FORWARDER_H_
#define PIMAP_BINDINGS_CLUSTER_INTAKE_FORWARDER_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "store/events/store_notification.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::cluster {
class ShardCluster;
}

namespace pimap::cluster_intake {

struct IntakeForwarderConfig {
  std::string path = "/dovecot";  // the intake's route, the same on every node
  std::string secret;             // X-Pimap-Secret; empty: none sent
  int64_t timeout_ms = 5000;
};

class IntakeForwarder {
 public:
  static constexpr size_t kMaxQueuedPerUser = 64;
  static constexpr size_t kMaxQueued = 4096;

  IntakeForwarder(engine::Shard* shard, cluster::ShardCluster* cluster,
                  IntakeForwarderConfig config);
  ~IntakeForwarder();
  IntakeForwarder(const IntakeForwarder&) = delete;
  IntakeForwarder& operator=(const IntakeForwarder&) = delete;

  // True when the notification is not this node's to deliver (taken: passed
  // on or dropped); false to deliver it here.
  bool Divert(store::StoreNotification& n);

 private:
  struct UserQueue {
    std::deque<std::string> bodies;
    bool busy = false;
  };
  void Lookup(const std::string& user);
  void SendNext(const std::string& user, std::string intake);
  void DropQueue(const std::string& user, absl::string_view why);

  engine::Shard* shard_;
  cluster::ShardCluster* cluster_;
  IntakeForwarderConfig config_;
  absl::flat_hash_map<std::string, UserQueue> queues_;
  size_t queued_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::cluster_intake

#endif  // PIMAP_BINDINGS_CLUSTER_INTAKE_FORWARDER_H_
