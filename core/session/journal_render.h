// Rendering a device's undelivered journal events (journal.h) against its view
// (UidView): the untagged EXISTS / FETCH FLAGS / EXPUNGE responses the device
// is told, the view and the session's verdict sets updated on the way, the
// journal marked delivered. Pure session state in, IMAP text out: no store, no
// output, no registry; the driver (device_driver_push.cc) writes the text,
// marks the checkpoint and counts.
#ifndef PIMAP_CORE_SESSION_JOURNAL_RENDER_H_
#define PIMAP_CORE_SESSION_JOURNAL_RENDER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/session/journal.h"
#include "core/session/session_registry.h"

namespace pimap::session {

// A flag change of unknown result (StoreEvent::resolve) of a message in the
// device's view (or above it: new mail of the same batch), journaled after
// `resolved_seq` (up to which such changes have been fetched from the store):
// it holds back rendering until the store has said the flags.
bool FlagsUnresolved(const DeviceSession& s, const JournalEntry& entry,
                     uint64_t resolved_seq);

struct RenderRequest {
  // False while a FETCH, STORE or SEARCH by MSN runs (RFC 3501 §7.4.1): an
  // EXPUNGE stops the rendering.
  bool allow_expunge = true;
  size_t max_events = SIZE_MAX;  // undelivered events taken at most
  // A resume, where events written before a disconnect come again (a known
  // UID's EXISTS is said again, a known flag list is told again).
  bool replay = false;
  uint64_t flags_resolved_seq = 0;  // see FlagsUnresolved
  // The device enabled CONDSTORE: a flag change it is told of carries its
  // MODSEQ (RFC 7162 §3.2: in every unsolicited FETCH), where the event knows
  // it.
  bool condstore = false;
};

struct RenderedEvents {
  std::string out;                 // the untagged responses, CRLF-terminated
  size_t rendered = 0;             // how many responses
  uint64_t last_seq = 0;           // the last journal seq taken (0: none)
  bool view_changed = false;       // an EXISTS or EXPUNGE is in `out`
  std::vector<uint32_t> new_uids;  // the UIDs announced by EXISTS
};

// What a flag change does to a selected virtual folder's view: a message
// whose new flags fail its search leaves (an EXPUNGE to this device only); a
// message outside the view above its highest UID whose flags now match a
// search of flag keys only enters (an EXISTS, as new mail). `vfolder`: the
// selected virtual folder's view spec (null: none selected, kSame).
enum class Membership { kSame, kLeaves, kEnters };
Membership MembershipChange(const DeviceSession& s, const FilterSpec* vfolder,
                            const StoreEvent& e);

// Renders the undelivered events of `s`'s selected folder, in journal order,
// until one that must wait (see RenderRequest, FlagsUnresolved), and marks
// those taken delivered. Nothing without a selected folder.
RenderedEvents RenderJournal(DeviceSession& s, const RenderRequest& request);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_JOURNAL_RENDER_H_
