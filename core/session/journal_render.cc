// RenderJournal and FlagsUnresolved (journal_render.h): what a device is told
// of its journal's events, against its view (a selected virtual folder's
// view following its search on flag changes).
#include "core/session/journal_render.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "core/imap/syntax.h"
#include "core/session/delivery.h"
#include "core/session/store_text.h"
#include "core/session/vfolder_membership.h"

namespace pimap::session {

namespace {
// Closes a pushed FETCH's FLAGS list, then " MODSEQ (m)" for a CONDSTORE
// device when the event knows the change's MODSEQ (the store's HTTP push may
// not say it: then none, rather than a made-up one).
void EndFlagsItem(std::string* out, const StoreEvent& e,
                  const RenderRequest& request) {
  *out += ')';
  if (request.condstore && e.modseq != 0) {
    absl::StrAppend(out, " MODSEQ (", e.modseq, ")");
  }
}
}  // namespace

bool FlagsUnresolved(const DeviceSession& s, const JournalEntry& entry,
                     uint64_t resolved_seq) {
  const StoreEvent& e = entry.event;
  // A UID above the view may be new mail journaled in the same batch: the
  // view gets it only when the batch is rendered, after the fetch. Leaving it
  // out would count its change as resolved unfetched (the device kept the
  // first notification's flags for good: push-mode chaos test).
  return e.resolve && entry.seq > resolved_seq &&
         (e.uidvalidity == 0 || s.view_uidvalidity == 0 ||
          e.uidvalidity == s.view_uidvalidity) &&
         (s.view.Contains(e.uid) || e.uid > s.view.max_uid());
}

Membership MembershipChange(const DeviceSession& s, const FilterSpec* vfolder,
                            const StoreEvent& e) {
  if (vfolder == nullptr || e.kind != EventKind::kFlags || e.resolve ||
      (e.uidvalidity != 0 && s.view_uidvalidity != 0 &&
       e.uidvalidity != s.view_uidvalidity)) {
    return Membership::kSame;
  }
  const bool in = s.view.Contains(e.uid);
  switch (MatchFlags(*vfolder, e.flags)) {
    case FlagVerdict::kFails:
      return in ? Membership::kLeaves : Membership::kSame;
    case FlagVerdict::kMatches:
      // EXISTS adds at the end: only a UID above the view keeps MSNs and
      // UIDs in the same order (RFC 3501 §2.3.1.1); one below enters at the
      // next SELECT.
      return !in && e.uid > s.view.max_uid() ? Membership::kEnters
                                             : Membership::kSame;
    case FlagVerdict::kUnknown:
      break;
  }
  return Membership::kSame;
}

RenderedEvents RenderJournal(DeviceSession& s, const RenderRequest& request) {
  RenderedEvents r;
  if (s.selected_folder.empty()) return r;
  // A selected virtual folder's view follows its search on flag changes
  // (vfolder_membership.h); an XFILTER view filter's does not (filter.h).
  std::optional<FilterSpec> vfolder;
  if (!s.selected_vfolder.empty() &&
      s.vfolders.Find(s.selected_vfolder) != nullptr) {
    vfolder = s.SelectedView();
  }
  size_t taken = 0;
  for (const JournalEntry* entry :
       s.journal.UndeliveredEntries(s.selected_folder)) {
    const StoreEvent& e = entry->event;
    if (e.kind == EventKind::kExpunge && !request.allow_expunge) break;
    const Membership change =
        MembershipChange(s, vfolder.has_value() ? &*vfolder : nullptr, e);
    // Leaving the view is an EXPUNGE to the device (RFC 3501 §7.4.1 too).
    if (change == Membership::kLeaves && !request.allow_expunge) break;
    // A flag change of unknown result waits for its fetch (FlagsToResolve);
    // once fetched, the store's answer behind it says the flags.
    if (FlagsUnresolved(s, *entry, request.flags_resolved_seq)) break;
    if (taken++ == request.max_events) break;
    if (e.uidvalidity == 0 || s.view_uidvalidity == 0 ||
        e.uidvalidity == s.view_uidvalidity) {
      switch (e.kind) {
        case EventKind::kNew: {
          if (s.classified.contains(e.uid) && !s.in_view.contains(e.uid)) {
            s.classified.erase(e.uid);  // outside this device's view
            s.notify.erase(e.uid);
            break;
          }
          // A replay after a reconnect may find the UID already in the view:
          // EXISTS is idempotent, so say it again rather than risk a miss.
          // Outside a replay a known UID (the same news from two sources) is
          // not announced twice.
          const bool had = !s.view.Insert(e.uid).has_value();
          if (!had || (request.replay && s.view.Contains(e.uid))) {
            absl::StrAppend(&r.out, "* ", s.view.size(), " EXISTS\r\n");
            r.new_uids.push_back(e.uid);
            ++r.rendered;
            r.view_changed = true;
          }
          // The device has the message already (its own FETCH after a
          // RESYNC, or the same news from another source): the flags the
          // news carries may be newer than what it was told, and no later
          // event repeats them (docs/chaos-test.md, defect 2).
          if (had && e.flags_known && !Told(s, e.uid, FlagKey(e.flags))) {
            if (std::optional<uint32_t> msn = s.view.MsnOf(e.uid)) {
              absl::StrAppend(&r.out, "* ", *msn, " FETCH (UID ", e.uid,
                              " FLAGS (");
              imap::AppendFlagList(&r.out, e.flags);
              EndFlagsItem(&r.out, e, request);
              r.out += ")\r\n";
              ++r.rendered;
            }
          }
          s.classified.erase(e.uid);
          s.in_view.erase(e.uid);
          s.notify.erase(e.uid);
          break;
        }
        case EventKind::kFlags:
          if (e.resolve) break;
          if (change == Membership::kLeaves) {
            // Out of this device's view only: the store keeps the message.
            if (std::optional<uint32_t> msn = s.view.Erase(e.uid)) {
              absl::StrAppend(&r.out, "* ", *msn, " EXPUNGE\r\n");
              ++r.rendered;
              r.view_changed = true;
            }
            s.told_flags.erase(e.uid);
            // The device was told an EXPUNGE: not replayable, so a
            // disconnect before its acknowledgement rebuilds the folder
            // (Journal::OnDisconnect) instead of replaying a flag change the
            // view no longer shows.
            s.journal.RenderedAs(s.selected_folder, entry->seq,
                                 EventKind::kExpunge);
            break;
          }
          if (change == Membership::kEnters) {
            // As new mail (PIMAP_INBAND_NEW_FORMAT's FETCH follows).
            s.view.Insert(e.uid);
            absl::StrAppend(&r.out, "* ", s.view.size(), " EXISTS\r\n");
            r.new_uids.push_back(e.uid);
            ++r.rendered;
            r.view_changed = true;
            // A replay repeats it as new mail (kNew: EXISTS again for a UID
            // already in the view), where the flag change would now say
            // only a FETCH the device cannot place.
            s.journal.RenderedAs(s.selected_folder, entry->seq,
                                 EventKind::kNew);
            break;
          }
          if (std::optional<uint32_t> msn = s.view.MsnOf(e.uid)) {
            // Recorded in a replay too: what the device is told now is what
            // a later change back to the flags it had must be compared with.
            const bool told = Told(s, e.uid, FlagKey(e.flags));
            if (told && !request.replay) break;  // the device knows already
            absl::StrAppend(&r.out, "* ", *msn, " FETCH (UID ", e.uid,
                            " FLAGS (");
            // Only valid flags: an event's flags may come from the store's
            // HTTP push, and a "flag" with ")" or CRLF would end the
            // response early and forge another one.
            imap::AppendFlagList(&r.out, e.flags);
            EndFlagsItem(&r.out, e, request);
            r.out += ")\r\n";
            ++r.rendered;
          }
          break;
        case EventKind::kExpunge:
          if (std::optional<uint32_t> msn = s.view.Erase(e.uid)) {
            absl::StrAppend(&r.out, "* ", *msn, " EXPUNGE\r\n");
            ++r.rendered;
            r.view_changed = true;
          }
          break;
        default:
          break;
      }
    }
    r.last_seq = entry->seq;
  }
  if (r.last_seq != 0) s.journal.MarkDelivered(s.selected_folder, r.last_seq);
  return r;
}

}  // namespace pimap::session
