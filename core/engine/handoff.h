// Hand-over of a connection to the shard that owns its user. The descriptor moves
// between rings with IORING_OP_MSG_RING (IORING_MSG_SEND_FD); the rest of the
// connection's state (TLS session, bytes already read, the pending login) travels as
// a Handoff object whose pointer rides in the message's user_data. The kernel posts
// descriptor and pointer together in one CQE on the target ring, which also wakes it:
// no lock, no shared memory besides the object whose ownership moves with the message.
#ifndef PIMAP_CORE_ENGINE_HANDOFF_H_
#define PIMAP_CORE_ENGINE_HANDOFF_H_

namespace pimap::engine {

class Shard;

class Handoff {
 public:
  virtual ~Handoff() = default;
  // On the target shard's thread: the descriptor now lives in `slot` of its ring.
  virtual void Arrive(Shard& shard, int slot) = 0;
  // On the source shard's thread: the transfer failed (target table full, shutting
  // down). The descriptor is still in `slot` of the source ring; the Handoff may use
  // it (e.g. to send "* BYE") and must dispose of it.
  virtual void Failed(Shard& source, int slot, int error) = 0;
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_HANDOFF_H_
