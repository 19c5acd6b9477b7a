// The seam for sharing authenticated store connections: a per-shard pool that
// lends a StoreLink to a device connection only while one of its commands runs,
// so that the store sees one connection per busy device instead of one per
// connected device. Declared in core (next to StoreLink) so that bindings/ can
// borrow without including store/, which implements it (store/link_pool.h).
#ifndef PIMAP_CORE_SESSION_STORE_LINK_POOL_H_
#define PIMAP_CORE_SESSION_STORE_LINK_POOL_H_

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/session/store_link.h"

namespace pimap::session {

// A link lent by the pool, with the store-side state the next borrower must
// know. The pool keeps this object (and the state fields) across loans: a
// borrower updates the fields as it changes the link's state, so that the next
// borrower can skip a SELECT or an ENABLE that is already in effect.
struct PooledLink {
  StoreLink* link = nullptr;
  std::string selected_folder;   // empty: no folder selected on the store side
  bool read_only = false;        // EXAMINEd
  bool qresync_enabled = false;  // ENABLE QRESYNC done on this link
  // What the borrower last saw in selected_folder (0 unknown).
  uint64_t highest_modseq = 0;
  // How many store events of its user the gateway had received when the link
  // was last synchronised (SessionRegistry::events_received): a borrower that
  // sees a larger number makes the store catch up (NOOP) before it trusts the
  // link to show what the journal announced.
  uint64_t synced_events = 0;
  // The profile's ENABLE was done (StoreCredentials::profile; a new login has
  // nothing enabled).
  bool profile_applied = false;
};

// One per shard, used only on its thread.
class StoreLinkPool {
 public:
  using BorrowCallback = absl::AnyInvocable<void(absl::StatusOr<PooledLink*>)>;
  virtual ~StoreLinkPool() = default;

  // An idle, open link authenticated as `credentials` (same user and authzid;
  // the password is not compared), lent at once; nullptr when there is none.
  virtual PooledLink* TryBorrow(const StoreCredentials& credentials) = 0;

  // Lends a link: an idle one, else a new login, else waits (FIFO) for one to
  // come back or for a slot. `done` runs exactly once on this shard's thread
  // and NEVER inside Borrow(); it gets UnavailableError after `timeout_ms`
  // without a link, UnauthenticatedError when the store refused the
  // credentials, or the store's error.
  virtual void Borrow(const StoreCredentials& credentials, int64_t timeout_ms,
                      BorrowCallback done) = 0;

  // Takes a link its caller has just logged in with `credentials` (a device's
  // login, which must check the password with the store) and lends it to the
  // caller at once, so it can be shared afterwards. At the cap the least
  // recently used idle link is evicted. nullptr while shutting down (the
  // caller keeps the link).
  virtual PooledLink* Adopt(const StoreCredentials& credentials, StoreLink* link) = 0;

  // Gives a lent link back. The borrower has finished its commands (no tagged
  // command of its own outstanding). `reusable` false: state unknown, the
  // pool closes it.
  virtual void Return(PooledLink* link, bool reusable) = 0;

  // The lent link reported OnStoreClosed to its borrower: forget it (the link
  // object is already gone; do not touch link->link).
  virtual void Lost(PooledLink* link) = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_STORE_LINK_POOL_H_
