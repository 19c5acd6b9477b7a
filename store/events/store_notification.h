// The store's notification (docs/store-events.md: the JSON the Dovecot
// push_notification Lua script in tools/dovecot/push.lua posts) turned into typed,
// UID-level session::StoreEvents for one user.
//
// Mapping (one POST = one mail transaction of one user):
//  * MessageNew, MessageAppend -> kNew with the message's flags (flags + keywords).
//  * MessageExpunge -> kExpunge.
//  * FlagsSet, FlagsClear -> kFlags carrying the FULL flag list after the change,
//    when the POST lets us know it: a FlagsClear carries flags_old/keywords_old (the
//    whole list before), and a kNew of the same message carries its whole list; the
//    set/clear deltas of one message in one POST are applied in order and merged into
//    one kFlags (at the position of the message's first flag event). A flag change
//    whose full list cannot be derived (a FlagsSet on its own: Dovecot sends only
//    the flags added) becomes a FlagDelta instead (added/removed), for the session
//    layer to resolve from the store (or from what it knows about the message).
//    Flag events whose flags and keywords are both empty are noise and ignored
//    (they still provide the base list). \Recent is dropped everywhere (it is
//    per-session and means nothing to another client).
//  * MailboxCreate / MailboxDelete / MailboxRename -> kFolderCreated /
//    kFolderDeleted / kFolderRenamed (folder = old name, new_folder = new name).
//  * MessageRead, MessageTrash (duplicates of FlagsSet), MailboxSubscribe,
//    MailboxUnsubscribe and unknown event names are ignored (counted).
//  * modseq: the mailbox's status.highestmodseq from the same POST, if present,
//    for every message event of that mailbox (an upper bound of the change's own
//    MODSEQ: the payload has no per-message MODSEQ); else 0 (unknown).
//  * internal_date stays 0: the payload's `date` is the Date: header, not the
//    INTERNALDATE.
#ifndef PIMAP_STORE_EVENTS_STORE_NOTIFICATION_H_
#define PIMAP_STORE_EVENTS_STORE_NOTIFICATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/session/event.h"

namespace pimap::store {

// A flag change of one message whose resulting full flag list is not known.
struct FlagDelta {
  std::string folder;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::vector<std::string> added;    // set by the change
  std::vector<std::string> removed;  // cleared by the change
  uint64_t modseq = 0;               // as for StoreEvent::modseq
};

struct StoreNotification {
  std::string user;
  std::string service;  // "lmtp", "imap", ... (diagnostics)
  std::vector<session::StoreEvent> events;  // in store order
  std::vector<FlagDelta> flag_deltas;
  int ignored = 0;  // events skipped on purpose (noise, unused kinds)
};

// InvalidArgumentError when the body is not JSON, or lacks "user" (non-empty
// string) or "events" (array), or an event lacks "event"/"mailbox" strings, or a
// message event lacks a uid / uidvalidity in 1..2^32-1, or a rename lacks
// "mailbox_old". Unknown fields are ignored.
absl::StatusOr<StoreNotification> ParseStoreNotification(absl::string_view json);

}  // namespace pimap::store

#endif  // PIMAP_STORE_EVENTS_STORE_NOTIFICATION_H_
