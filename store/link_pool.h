// LinkPool: the per-shard pool of authenticated store links
// (session::StoreLinkPool). It owns every link it opened, lends one to a device
// connection for the duration of a command, keeps returned links idle (keyed by
// user + authzid) for the next command of the same identity, and enforces the
// shard's cap on store connections: at the cap it logs out the least recently
// used idle link for a new login, and when no link is idle, borrowers queue.
//
// Hazards:
//  * Single-threaded: the owning shard thread only (like the TimerWheel and
//    the StoreConnector it is built on).
//  * Borrow() callbacks always run from a TimerWheel callback (Schedule(0)),
//    never inside a pool method, so a borrower may call back into the pool
//    from `done`. Failures delivered that way do not touch the pool, so they
//    still arrive after the pool is gone, as long as the TimerWheel lives.
//  * A lent PooledLink must come back (Return or Lost) before the pool is
//    destroyed: the PooledLink object belongs to the pool.
//  * Idle links of one identity are shared regardless of the password the
//    borrower presents: checking the password is the caller's job (the link
//    was authenticated once, by whoever opened it).
//  * Likewise the store was told (ID x-originating-ip) the address of the
//    device whose borrow opened a link; later borrowers of it are other
//    devices of the user. A device's own ID fields never go on a pooled link.
#ifndef PIMAP_STORE_LINK_POOL_H_
#define PIMAP_STORE_LINK_POOL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"

namespace pimap::store {

struct LinkPoolConfig {
  // Links of the shard open or being opened (lent, idle or logging in); 0 is
  // treated as 1.
  size_t max_links = 1000;
  // An idle link is logged out after this.
  int64_t idle_timeout_ms = 30000;
};

class LinkPool final : public session::StoreLinkPool {
 public:
  // Borrowers queued at once, per link of the cap; past that a Borrow fails
  // with UnavailableError instead of queueing (bounded memory under a storm).
  static constexpr size_t kWaitersPerLink = 4;

  // `connector`, `timers` and `counters` must outlive the pool.
  LinkPool(session::StoreConnector* connector, TimerWheel* timers,
           ShardCounters* counters, LinkPoolConfig config);
  // Shutdown(), then forgets the rest (logins in progress close their link
  // when they finish).
  ~LinkPool() override;

  LinkPool(const LinkPool&) = delete;
  LinkPool& operator=(const LinkPool&) = delete;
  // A reload: the cap applies from now on (links over a lowered cap close as
  // they idle out, none is taken away; borrowers waiting get the room a
  // raised one makes at once), the idle time to links returned from now on.
  void Reconfigure(LinkPoolConfig config) {
    config_ = {std::max<size_t>(config.max_links, 1), config.idle_timeout_ms};
    ServeWaiters();
  }

  session::PooledLink* TryBorrow(
      const session::StoreCredentials& credentials) override;
  void Borrow(const session::StoreCredentials& credentials, int64_t timeout_ms,
              BorrowCallback done) override;
  session::PooledLink* Adopt(const session::StoreCredentials& credentials,
                             session::StoreLink* link) override;
  void Return(session::PooledLink* link, bool reusable) override;
  void Lost(session::PooledLink* link) override;

  // Logs out every idle link and fails every waiting borrower (and any whose
  // link was not delivered yet) with UnavailableError("shutting down"). After
  // it, Borrow fails the same way, TryBorrow returns nullptr and Return closes
  // the link. Lent links stay with their borrowers. Idempotent.
  void Shutdown();

  // Counts for tests; the same numbers are in the ShardCounters gauges.
  size_t idle_links() const { return idle_lru_.size(); }
  // Lent or being handed over.
  size_t busy_links() const { return static_cast<size_t>(busy_); }
  size_t opening_links() const { return static_cast<size_t>(opening_); }
  size_t waiters() const { return waiters_.size(); }

 private:
  struct Request;
  class Entry;
  enum class State { kOpening, kIdle, kHandover, kLent };

  using RequestPtr = std::unique_ptr<Request>;

  static std::string IdentityOf(const session::StoreCredentials& credentials);

  size_t max_waiters() const { return kWaitersPerLink * config_.max_links; }

  // Gets `r` a link: an idle one of its identity, else a new login (evicting
  // the least recently used idle link at the cap), else the queue. `requeue`:
  // `r` was served once already (its link died before delivery) and goes back
  // to the head of the queue.
  void Serve(RequestPtr r, bool requeue);
  // Lets queued borrowers take what is free now. Reentrant calls (a login
  // that fails synchronously) only ask the running loop for another round.
  void ServeWaiters();
  // A link that is free again: to the first waiter of its identity, else idle.
  void Park(Entry* e);

  void Open(RequestPtr r);
  void OnLoginDone(Entry* e, absl::StatusOr<session::StoreLink*> result);
  // Reserves `e` for `r` and delivers it from a Schedule(0) timer.
  void Handover(Entry* e, RequestPtr r);
  void FinishHandover(Entry* e);
  // Delivers `status` to `r` from a Schedule(0) timer that does not touch the
  // pool.
  void Fail(RequestPtr r, absl::Status status);
  void OnDeadline(Request* r);

  void Enqueue(RequestPtr r, bool front);
  RequestPtr Dequeue(Request* r);

  void MakeIdle(Entry* e);
  void RemoveIdle(Entry* e);
  Entry* FindIdle(const std::string& identity) const;
  // Logs an idle link out and forgets it.
  void CloseIdle(Entry* e);
  // An idle (or being handed over) link reported OnStoreClosed.
  void OnPoolOwnedLinkClosed(Entry* e, const absl::Status& reason);

  void SetState(Entry* e, State state);
  // Forgets `e` (its link must be closed or gone already), updating the gauges.
  void Erase(Entry* e);
  Entry* FindLent(session::PooledLink* link, const char* what);

  session::StoreConnector* const connector_;
  TimerWheel* const timers_;
  ShardCounters* const counters_;
  LinkPoolConfig config_;
  bool shutting_down_ = false;
  bool serving_ = false;
  bool serve_again_ = false;
  int64_t busy_ = 0;
  int64_t opening_ = 0;

  // Every link the pool knows (opening, idle, handed over, lent), by the
  // address of its PooledLink; its size is what the cap limits.
  absl::flat_hash_map<const session::PooledLink*, std::unique_ptr<Entry>>
      entries_;
  // Idle links, most recently returned first: all identities (eviction takes
  // the back), and per identity (borrowing takes the front). node_hash_map:
  // entries keep iterators into these lists.
  std::list<Entry*> idle_lru_;
  absl::node_hash_map<std::string, std::list<Entry*>> idle_by_identity_;
  // Queued borrowers in arrival order; per identity for a Return to find the
  // first waiter of its identity without a scan.
  std::list<RequestPtr> waiters_;
  absl::node_hash_map<std::string, std::list<Request*>> waiters_by_identity_;

  // Login callbacks outlive the pool; they check this before touching it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::store

#endif  // PIMAP_STORE_LINK_POOL_H_
