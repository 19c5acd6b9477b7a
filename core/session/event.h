// The typed, UID-level store event: what the watcher (or the store's push
// intake) turns every store change into, and what device journals hold. MSNs
// never appear here: they are rendered per device from its UidView at
// delivery time (protocol.md §2.5, [Modern] implementation note).
#ifndef PIMAP_CORE_SESSION_EVENT_H_
#define PIMAP_CORE_SESSION_EVENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/session/headline.h"

namespace pimap::session {

enum class EventKind {
  kNew,
  kFlags,
  kExpunge,
  kFolderCreated,
  kFolderDeleted,
  kFolderRenamed,
};

struct StoreEvent {
  EventKind kind = EventKind::kNew;
  // kNew: `flags` is the message's whole flag list as the source saw it (the
  // watch's and the catch-up's FETCH FLAGS, the store's MessageNew push);
  // false where the source knows only that the UID exists (news seen on a
  // device's own link). A device that already has the message is told these
  // flags if they differ from what it was told (device_driver_push.cc).
  bool flags_known = false;
  std::string folder;      // mailbox name (for renames: the old name)
  std::string new_folder;  // renames only
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;                // message events
  std::vector<std::string> flags;  // kNew/kFlags: full flag list after change
  // kFlags only: the change's full flag list is not known (the store's push
  // named only what was set/cleared; docs/store-events.md), so `flags` is
  // empty and the device driver asks the store for the message's flags (UID
  // FETCH FLAGS) before anything after this event is rendered. A device is
  // never told a flag list that is not the store's.
  bool resolve = false;
  uint64_t modseq = 0;             // CONDSTORE MODSEQ of the change, 0: unknown
  int64_t internal_date = 0;       // kNew: seconds since epoch if known, else 0
  // kNew, only with `--outband-payload full`: the message's headline when the
  // source carried it (the store's MessageNew push); else null. Shared, so
  // that the journals' copies of the event cost a pointer.
  std::shared_ptr<const MessageHeadline> headline;
  // Folder events: the store's own untagged LIST line (NOTIFY, RFC 5465), which
  // devices get as it is.
  std::string raw;
};

// Whether delivering the event twice leaves the device in the same state as
// delivering it once (architecture.md §4), i.e. whether an event that may or
// may not have reached the device before a disconnect can simply be replayed.
//  * kNew (rendered as an EXISTS count), kFlags (the full flag list): yes.
//  * kFolderCreated / kFolderDeleted: yes; they state a resulting mailbox
//    state (exists / does not exist) that the client can re-check.
//  * kExpunge: no; "* n EXPUNGE" renumbers, so a second copy would remove a
//    different message.
//  * kFolderRenamed: no; a replayed rename names a folder that no longer
//    exists under the old name.
constexpr bool IsIdempotent(EventKind kind) {
  switch (kind) {
    case EventKind::kNew:
    case EventKind::kFlags:
    case EventKind::kFolderCreated:
    case EventKind::kFolderDeleted:
      return true;
    case EventKind::kExpunge:
    case EventKind::kFolderRenamed:
      return false;
  }
  return false;
}

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_EVENT_H_
