// LinkBorrower: the store link of one P-IMAP device (DeviceDriver) — the link
// it logged in with, or, with a pool (DriverServices::pool), one borrowed on
// demand: lent at once when a warm one is idle, else waited for; brought to
// the state the device's next job needs (NextStep: ENABLE QRESYNC, the
// folder's SELECT or EXAMINE, a NOOP when the store has reported events the
// link may not show yet); given back (Return) or forgotten when the store
// closed it (OnLinkClosed). It records what the device changes of a lent
// link's store-side state (PooledLink), so the next borrower can skip a
// SELECT or an ENABLE that is in effect.
//
// It decides nothing about the device's commands: the driver says what a job
// needs of the link (LinkNeed), when it may go back, and answers the device.
// It talks back to the driver through Host, a narrow interface that extends
// the link's own client interface, so that the driver carries it with the one
// virtual table it has for StoreLinkClient (an idle device stays small).
//
// Hazards: a lent link is shared by every device of the user in turn. It goes
// back only at a command boundary (no tagged command in flight, no response
// half read), or closed, never mid-response: the next borrower would read the
// rest of someone else's answer (the driver checks, see
// DeviceDriver::MaybeReturnLink). A pool answers a Borrow later, from outside
// any call of the driver's: the driver may be gone by then (`alive` expired:
// the link goes straight back) or must be kept alive while it takes the link
// (Host::FromOutside). Tested on its own in
// tests/core/session/link_borrower_test.cc.
#ifndef PIMAP_CORE_SESSION_LINK_BORROWER_H_
#define PIMAP_CORE_SESSION_LINK_BORROWER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/session/command_state.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"

namespace pimap::session {

// What the device's next job needs of a lent link (DeviceDriver computes it
// from its session and command state).
struct LinkNeed {
  // ENABLE QRESYNC in effect (false only for the job that enables it itself).
  bool qresync = true;
  // The folder that must be selected on the link (empty: none).
  std::string folder;
  bool read_only = false;  // ... EXAMINEd rather than SELECTed
  // " (QRESYNC (<uidvalidity> <modseq>))" to append to its SELECT: what
  // changed since the device's view comes with it (no event source covers the
  // folder). Empty: none.
  std::string select_qresync;
  // The link must show every event the gateway has received of the user
  // (`events`, SessionRegistry::EventsReceived) before the job runs; false
  // for a job that is itself the catch-up (kEvalSync).
  bool synced = true;
  uint64_t events = 0;
};

// One store command that brings a lent link closer to a LinkNeed.
struct LinkStep {
  DeviceJob job = DeviceJob::kNone;  // kLinkEnable/kLinkSelect/kLinkSync;
                                     // kNone: the link is ready
  std::string command;               // without tag and CRLF
  std::string folder;                // kLinkSelect: the folder it selects
};

class LinkBorrower {
 public:
  // The device's side (DeviceDriver). It is the link's client too: store
  // responses go to it directly, never through the borrower.
  class Host : public StoreLinkClient {
   public:
    // What a borrow asks the pool for (the user's credentials).
    virtual StoreCredentials LinkCredentials() const = 0;
    // The store rejected the password LinkCredentials() holds: no borrow
    // (each would be one more failed login at the store, and its lockout
    // counter) until the user logs in with a password it accepts.
    virtual bool StorePasswordRejected() const = 0;
    // A borrow failed because the store refused `password`.
    virtual void OnStoreLoginRejected(const std::string& password) = 0;
    // Runs `call` as a call from outside the host's own calls (a pool's late
    // answer): the host keeps itself alive around it and tidies up after.
    virtual void FromOutside(absl::FunctionRef<void()> call) = 0;
    // A link was lent: link() is set, reading, with this host its client.
    virtual void OnLinkBorrowed() = 0;
    // No link could be had. `why` is for the device; `pool_error` the pool's
    // answer (OK when none was asked: no pool, a rejected password).
    virtual void OnNoLink(const absl::Status& pool_error,
                          absl::string_view why) = 0;
  };

  // The link the device's commands go to (null: none held).
  StoreLink* link() const { return link_; }
  // Its pool entry when it came from (or went into) the pool, else null.
  const PooledLink* lent() const { return lent_; }
  // A Borrow is pending with the pool.
  bool acquiring() const { return acquiring_; }
  // Reading the link is paused because the device reads too slowly.
  bool reading_paused() const { return reading_paused_; }

  // Takes the link the device logged in with; with a `pool` it is adopted
  // into it (shared afterwards), unless the pool refuses (shutting down): then
  // it stays the device's own. `host` becomes its client.
  void Adopt(StoreLinkPool* pool, const StoreCredentials& credentials,
             StoreLink* link, Host* host);

  // Borrows a link from `pool` (null: none, and the host hears OnNoLink). A
  // warm idle link is lent at once (OnLinkBorrowed before this returns);
  // else the pool is asked and answers later (through Host::FromOutside,
  // unless `alive` expired meanwhile: then the link goes straight back). At
  // most one borrow is pending.
  void Acquire(Host* host, StoreLinkPool* pool, int64_t timeout_ms,
               std::weak_ptr<bool> alive);

  // Whether a lent link is short of `need` (a link of the device's own is
  // always in state).
  bool Behind(const LinkNeed& need) const;
  // The next command that brings the lent link to `need`; kNone when it is
  // there (or is the device's own). A SELECT's folder is forgotten at once:
  // the link is known to be in it once the step completed (StepDone).
  LinkStep NextStep(const LinkNeed& need);
  // `step` completed (the caller handles a failure: the link is not changed).
  // kLinkSelect: selects `folder`, `read_only` as the job now needs it.
  void StepDone(DeviceJob step, const std::string& folder, bool read_only);

  // Bookkeeping of the lent link's store-side state as the device's own
  // commands change it (no-ops without a lent link).
  // A command goes out: when it completes, the link shows every event the
  // gateway had received by now (`events`).
  void OnSent(uint64_t events) { sent_events_ = events; }
  // The command sent last completed.
  void OnCompleted();
  void QresyncEnabled();
  // The link has `folder` selected now (empty: none, as a failed SELECT
  // leaves it), read-only or not.
  void Selected(std::string folder, bool read_only);
  // UNSELECT or CLOSE went out: no folder is known to be selected.
  void ForgetSelected();

  // Backpressure: stops reading the link (false: no link, or already
  // stopped), or reads it again (false: nothing to do).
  bool PauseReading();
  bool ResumeReading();

  // Gives the lent link back to `pool`: `reusable` only at a command
  // boundary; otherwise the pool closes it. No link is held afterwards.
  void Return(StoreLinkPool* pool, bool reusable);
  // The store closed the link (StoreLinkClient::OnStoreClosed): forgotten,
  // and the pool told so. Reading stays as it was (paused: until the next
  // link is lent).
  void OnLinkClosed(StoreLinkPool* pool);
  // Closes the link the device holds and forgets it: its own link is closed,
  // a lent one goes back to `pool` as not reusable (the pool closes it).
  void CloseLink(StoreLinkPool* pool);
  // The device is gone: a lent link goes back (`reusable` as for Return),
  // the device's own link closes.
  void Detach(StoreLinkPool* pool, bool reusable);

 private:
  void Lend(Host* host, PooledLink* lent);

  StoreLink* link_ = nullptr;
  PooledLink* lent_ = nullptr;  // link_'s pool entry when lent
  uint64_t sent_events_ = 0;    // the user's events when the last job went
  bool acquiring_ = false;
  bool reading_paused_ = false;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_LINK_BORROWER_H_
