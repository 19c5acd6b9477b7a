// Journal: one device session's bounded event journal (architecture.md §4,
// protocol.md §2.5). Events are journaled per folder in arrival order and
// leave only when the device acknowledged them; a disconnect replays what may
// have been lost, or marks the folder for an exact rebuild when replay could
// corrupt the device's view.
//
// Semantics (the contract the session layer relies on):
//  * Every appended event gets a sequence number, strictly increasing across
//    the whole journal (last_seq()). Order is kept per folder; there is no
//    ordering promise between folders (each folder is drained on its own, as
//    P-IMAP only replays the selected folder's events).
//  * Per folder the events form a queue: a prefix is "delivered" (written to
//    the live connection, not yet acknowledged), the rest is "undelivered".
//  * size() counts delivered and undelivered events of all folders; limit()
//    bounds it. Appending when size() == limit() overflows the event's
//    folder: all its events (delivered or not, and the new one) are dropped
//    and the folder is marked overflowed. Events of a folder that needs a
//    rebuild (overflowed or uncertain) are not journaled at all: the rebuild
//    (CONDSTORE from the last acknowledged MODSEQ, or RESYNC) covers them.
//    Call SnapshotSent() when the rebuild's snapshot command goes to the
//    store: from then on events are journaled again (the store may run the
//    snapshot before them; MarkDelivered(folder, seq at sending) then drops
//    only those it has), though the folder keeps its mark until
//    ClearRebuild(), called when the snapshot's answer has been applied.
//  * MarkDelivered(folder, s): undelivered events of the folder with seq <= s
//    become delivered (they must be rendered in order, so this only ever
//    extends the delivered prefix).
//  * AckDelivered(folder) / AckAllDelivered(): delivered events are dropped.
//    Undelivered ones stay.
//  * OnDisconnect(): a folder marked for a rebuild drops what it journaled
//    since SnapshotSent() (the snapshot never came; the next one is taken
//    anew). Otherwise, per folder, if any delivered event is not idempotent
//    (IsIdempotent, event.h: EXPUNGE, folder rename) the device may or may
//    not have applied it, so the folder is marked uncertain and all its
//    events are dropped. Otherwise the delivered events become undelivered
//    again and are replayed, in order, on resume.
//  * NeedsRebuild(folder) is true while the folder is overflowed or
//    uncertain; ClearRebuild(folder) clears both marks.
#ifndef PIMAP_CORE_SESSION_JOURNAL_H_
#define PIMAP_CORE_SESSION_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/session/event.h"

namespace pimap::session {

struct JournalEntry {
  uint64_t seq = 0;
  StoreEvent event;
};

class Journal {
 public:
  static constexpr size_t kDefaultLimit = 10000;  // --journal-limit

  explicit Journal(size_t limit = kDefaultLimit) : limit_(limit) {}

  // Appends (see the class comment for overflow). Returns the event's seq, or
  // 0 if it was not journaled (overflow, or the folder needs a rebuild).
  uint64_t Append(StoreEvent event);

  // Events of `folder` not yet delivered, in order (what to render next).
  std::vector<const StoreEvent*> Undelivered(absl::string_view folder) const;
  // The same with their seqs, for callers that deliver only a part (bounded
  // output) and must MarkDelivered exactly what they wrote.
  std::vector<const JournalEntry*> UndeliveredEntries(
      absl::string_view folder) const;
  // Folders that have at least one event (delivered or not), unordered.
  std::vector<std::string> FoldersWithEvents() const;

  void MarkDelivered(absl::string_view folder, uint64_t up_to_seq);
  void AckDelivered(absl::string_view folder);
  // Acknowledges only the delivered events up to `up_to_seq`: those written
  // before the acknowledging command was read (a pipelined command that was
  // already on its way acknowledges nothing written after it was sent).
  void AckDelivered(absl::string_view folder, uint64_t up_to_seq);
  void AckAllDelivered();
  // The undelivered event `seq` of `folder` is rendered as `kind` (a flag
  // change that takes a message into or out of a virtual folder's view is an
  // EXISTS or an EXPUNGE to the device, journal_render.cc): OnDisconnect and
  // the replay then treat it as what the device was told, not as what the
  // store did.
  void RenderedAs(absl::string_view folder, uint64_t seq, EventKind kind);
  void OnDisconnect();

  bool NeedsRebuild(absl::string_view folder) const;
  // Uncertain (not merely overflowed): the device may or may not have applied an
  // EXPUNGE, so even an exact rebuild from the store cannot know its view.
  bool Uncertain(absl::string_view folder) const;
  // The device may have applied changes of `folder` nobody can name any more
  // (a restored session whose checkpoint is dirty, session_registry.h): its
  // events go and the folder is uncertain, as after OnDisconnect.
  void MarkUncertain(absl::string_view folder);
  // Changes of `folder` were never journaled (the watch began after the
  // device's view was taken): like an overflow, its events go and the folder is
  // rebuilt from the store.
  void MarkIncomplete(absl::string_view folder);
  // The snapshot command of a rebuild of `folder` (or of a fresh SELECT) was
  // sent: events of the folder are journaled again from now on even while it
  // is still marked, since the store may take the snapshot before them.
  void SnapshotSent(absl::string_view folder);
  // Folders currently marked overflowed or uncertain, unordered.
  std::vector<std::string> FoldersNeedingRebuild() const;
  void ClearRebuild(absl::string_view folder);

  size_t size() const { return size_; }
  size_t limit() const { return limit_; }
  uint64_t last_seq() const { return last_seq_; }
  // Approximate bytes held (entries, their strings and flag lists, per-folder
  // bookkeeping).
  size_t MemoryBytes() const;

 private:
  struct FolderLog {
    // entries[head, head + delivered) delivered, the rest undelivered. A head
    // index (instead of a deque) keeps one small allocation per folder; the
    // vector is compacted when the dead prefix dominates.
    std::vector<JournalEntry> entries;
    size_t head = 0;
    size_t delivered = 0;
    bool overflowed = false;
    bool uncertain = false;
    bool snapshot_sent = false;  // marked, but its snapshot is on its way
    bool overflow_after_snapshot = false;  // overflowed while it was
    size_t live() const { return entries.size() - head; }
  };

  // Drops every event of the folder (updates size_).
  void Clear(FolderLog& log);
  void DropDelivered(FolderLog& log);
  // Removes folders with neither events nor marks, so that the map does not
  // grow with every folder ever seen.
  void MaybeErase(absl::string_view folder);

  size_t limit_;
  size_t size_ = 0;
  uint64_t last_seq_ = 0;
  absl::flat_hash_map<std::string, FolderLog> folders_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_JOURNAL_H_
