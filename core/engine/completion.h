// What an in-flight io_uring operation points back to. Every SQE the engine submits
// carries a Completion* as user_data (or a tagged handoff pointer, see handoff.h); the
// shard's loop calls OnComplete() with the CQE. The object must stay alive until its
// CQE arrives: owners count their ops in flight and free themselves only at zero.
#ifndef PIMAP_CORE_ENGINE_COMPLETION_H_
#define PIMAP_CORE_ENGINE_COMPLETION_H_

#include <liburing.h>

#include <cstdint>

namespace pimap::engine {

class Completion {
 public:
  virtual void OnComplete(const io_uring_cqe& cqe) = 0;

 protected:
  ~Completion() = default;
};

// Forwards a completion to a member function, so one owner can have several ops.
template <typename Owner, void (Owner::*Method)(const io_uring_cqe&)>
class MemberCompletion final : public Completion {
 public:
  explicit MemberCompletion(Owner* owner) : owner_(owner) {}
  void OnComplete(const io_uring_cqe& cqe) override { (owner_->*Method)(cqe); }

 private:
  Owner* owner_;
};

inline uint64_t CompletionData(Completion* c) {
  return reinterpret_cast<uint64_t>(c);
}

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_COMPLETION_H_
