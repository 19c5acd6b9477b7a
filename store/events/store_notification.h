// The store's notification (docs/store-events.md: the JSON the Dovecot
// push_notification Lua script in tools/dovecot/push.lua posts) turned into
// typed, UID-level session::StoreEvents for one user.
//
// Mapping (one POST = one mail transaction of one user):
//  * MessageNew, MessageAppend -> kNew with the message's flags (flags +
//    keywords).
//  * MessageExpunge -> kExpunge.
//  * FlagsSet, FlagsClear -> one kFlags per message (at the position of the
//    message's first flag event). It carries the FULL flag list after the
//    change only when a MessageNew/MessageAppend of the same message in the
//    same POST gave the whole list before (the set/clear deltas are then
//    applied in order, each list de-duplicated case-insensitively in linear
//    time). Otherwise it is marked `resolve` with no flags: the device driver
//    fetches the message's flags from the store before rendering it
//    (device_driver_push.cc, FlagsToResolve), and the change is also listed
//    as a FlagDelta (added/removed; counted). A FlagsClear's
//    flags_old/keywords_old are NOT the whole list: Dovecot fills flags_old
//    only when system flags change and keywords_old only when keywords do,
//    the other is [] (chaos defect 3). Flag events whose flags and keywords
//    are both empty are noise and ignored. \Recent is dropped everywhere (it
//    is per-session and means nothing to another client).
//  * MailboxCreate / MailboxDelete / MailboxRename -> kFolderCreated /
//    kFolderDeleted / kFolderRenamed (folder = old name, new_folder = new
//    name).
//  * MessageRead, MessageTrash (duplicates of FlagsSet), MailboxSubscribe,
//    MailboxUnsubscribe and unknown event names are ignored (counted).
//  * modseq: the mailbox's status.highestmodseq from the same POST, if present,
//    for every message event of that mailbox (an upper bound of the change's
//    own MODSEQ: the payload has no per-message MODSEQ); else 0 (unknown).
//  * internal_date stays 0: the payload's `date` is the Date: header, not the
//    INTERNALDATE.
//  * headline (kNew, only with StoreNotificationLimits::keep_headlines): from
//    "subject" and "from".
#ifndef PIMAP_STORE_EVENTS_STORE_NOTIFICATION_H_
#define PIMAP_STORE_EVENTS_STORE_NOTIFICATION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/intake_reject.h"
#include "core/session/event.h"

namespace pimap::store {

// A flag change of one message whose resulting full flag list is not known
// (its kFlags event is marked `resolve`): what it set and cleared.
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
  std::string service;                      // "lmtp", "imap", ... (diagnostics)
  std::vector<session::StoreEvent> events;  // in store order
  std::vector<FlagDelta> flag_deltas;       // the `resolve` kFlags of `events`
  int ignored = 0;  // events skipped on purpose (noise, unused kinds)
  // A cluster (EventIntakeConfig::divert): the request's body, kept so that a
  // node that does not serve the user can pass the notification on as the
  // store sent it; and whether another node already did (then it is
  // delivered here whatever this node serves).
  std::string raw_body;
  bool forwarded = false;
};

// Bounds on one notification; past any of them it is refused as a whole. The
// defaults admit any transaction Dovecot sends within the intake's 1 MiB body,
// unless a message has more than 256 flags and keywords.
struct StoreNotificationLimits {
  size_t max_events = 16384;           // entries of "events"
  size_t max_status_mailboxes = 1024;  // entries of "status"
  size_t max_flags = 256;       // flags + keywords of one event (or its *_old)
  size_t max_flag_bytes = 256;  // one flag or keyword
  size_t max_user_bytes = 256;
  size_t max_mailbox_bytes = 1024;
  size_t max_service_bytes = 64;
  // --outband-payload full: a MessageNew/MessageAppend's "subject" (which
  // Dovecot decoded) and "from" (the raw header; "from_address" without it)
  // become its event's headline (core/session/headline.h: decoded, CR/LF
  // stripped, each cut to 256 bytes). Otherwise they are never held.
  bool keep_headlines = false;
};

// Every field used is validated; unknown fields (and the unused "snippet",
// "date", "session", "ts" ..., and "subject" and "from" unless
// keep_headlines) are ignored. A "subject" or "from" that is not a string is
// ignored too (a message without a headline, not a bad notification). Refused
// with InvalidArgumentError, and *reason (if given) set, when:
//  * the body is not JSON / not an object (kBadJson);
//  * "user" is missing, empty, longer than max_user_bytes, not UTF-8 or has a
//    control character (kBadUser, kUserTooLong);
//  * "events" is not an array or has more than max_events entries; an event
//    is not an object or lacks "event"/"mailbox" strings; "service" is not a
//    short printable string; a status entry's highestmodseq is not a
//    non-negative integer (kBadField, kTooManyEvents);
//  * a mailbox name ("mailbox", "mailbox_old", a "status" key) is empty,
//    longer than max_mailbox_bytes, not UTF-8 or has a control character
//    (kBadMailbox, kMailboxTooLong); "status" has more than
//    max_status_mailboxes entries (kTooManyMailboxes);
//  * a message event lacks a uid / uidvalidity in 1..2^32-1 (kBadUid);
//  * a flag or keyword of a message or flag event is not an RFC 3501 flag
//    (imap::IsFlag: a known system flag or an atom) or is longer than
//    max_flag_bytes, or an event's flags + keywords (or a message's list
//    after the merge) count more than max_flags (kBadFlag, kFlagTooLong,
//    kTooManyFlags);
//  * a rename lacks "mailbox_old" (kBadField).
// Error messages name the field and the event's index, never a value (they go
// to the log and the 400 answer). Linear in the size of the body.
absl::StatusOr<StoreNotification> ParseStoreNotification(
    absl::string_view json, const StoreNotificationLimits& limits = {},
    IntakeReject* reason = nullptr);

}  // namespace pimap::store

#endif  // PIMAP_STORE_EVENTS_STORE_NOTIFICATION_H_
