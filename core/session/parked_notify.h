// ParkedNotify: what a parked stock client that used NOTIFY (RFC 5465) is
// told about mailboxes other than its selected one (the selected one is
// ParkedMailbox's). Dovecot 2.3 (observed) tells such a client, during IDLE:
//   new mail or an expunge   * STATUS box (MESSAGES n UIDNEXT u UNSEEN s)
//                            (+ UIDVALIDITY for a mailbox new to it, and
//                            HIGHESTMODSEQ for a CONDSTORE client)
//   \Seen set or cleared     * STATUS box (UNSEEN s)
//   created / deleted        * LIST () "." box / * LIST (\NonExistent) "." box
//   renamed                  * LIST () "." new ("OLDNAME" (old))
// The numbers are the store's: the events only say which mailbox changed, so
// the driver asks the store (STATUS on a pooled link, one per burst and
// mailbox) and this class renders the answer. LIST lines need no store.
// Transport-free: the caller owns the link and the client's socket.
#ifndef PIMAP_CORE_SESSION_PARKED_NOTIFY_H_
#define PIMAP_CORE_SESSION_PARKED_NOTIFY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "core/imap/response.h"
#include "core/session/event.h"
#include "core/session/notify_spec.h"

namespace pimap::session {

class ParkedNotify {
 public:
  // Mailboxes waiting for a STATUS at once; past it the unpark sets NOTIFY
  // again with STATUS, which reports every covered mailbox (nothing lost).
  static constexpr size_t kMaxPending = 1024;

  // `selected`: the client's selected mailbox (its events are not ours).
  // `delimiter`: the store's hierarchy delimiter, 0 if unknown (LIST lines
  // are then only the store's own, StoreEvent::raw).
  ParkedNotify(NotifySpec spec, std::string selected, char delimiter,
               bool condstore);

  const NotifySpec& spec() const { return spec_; }
  // The lines to send the client now for `event` (LIST lines); a message or
  // flag event of a covered mailbox queues a STATUS instead.
  std::string Apply(const StoreEvent& event);
  bool has_pending() const { return !pending_.empty(); }
  bool overflowed() const { return overflowed_; }
  // The STATUS commands (no tags) for the queued mailboxes, which are then
  // in flight until their answers come (OnResponse).
  std::vector<std::string> TakeStatusCommands();
  // A response while those run: the line for the client for a "* STATUS"
  // of a mailbox in flight (empty if there is nothing new to tell), nothing
  // for anything else.
  std::string OnResponse(const imap::Response& response);
  // The STATUS commands have all completed: anything not answered (a NO for
  // a mailbox deleted meanwhile) is forgotten.
  void EndStatusRound() { in_flight_.clear(); }
  size_t MemoryBytes() const;

 private:
  struct Want {
    bool messages = false;     // MESSAGES UIDNEXT UNSEEN
    bool unseen = false;       // UNSEEN alone, if it changed
    bool uidvalidity = false;  // the mailbox is new to the client
  };

  std::string ListLine(const StoreEvent& event) const;
  void Queue(const std::string& folder, const Want& want);

  NotifySpec spec_;
  std::string selected_;
  char delimiter_ = 0;
  bool condstore_ = false;
  bool overflowed_ = false;
  absl::flat_hash_map<std::string, Want> pending_;
  absl::flat_hash_map<std::string, Want> in_flight_;
  // The UNSEEN last told per mailbox (a \Seen-neutral flag change tells
  // nothing), and mailboxes created while parked (their first STATUS
  // carries UIDVALIDITY); both bounded by kMaxPending.
  absl::flat_hash_map<std::string, uint32_t> unseen_told_;
  absl::flat_hash_set<std::string> created_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_PARKED_NOTIFY_H_
