// The user's watch (user_watcher.h): what INBOX's catch-ups (UID FETCH
// CHANGEDSINCE with VANISHED, or a SELECT's QRESYNC output) say, as UID-level
// store events, delivered to the sink in session order at each Flush.
#include <algorithm>
#include <utility>
#include <vector>

#include "core/imap/sequence_set.h"
#include "store/folder_catchup.h"
#include "store/user_watcher.h"

namespace pimap::store {

void UserWatcher::OnFetch(const imap::Response& r) {
  FetchData data = ParseFetchData(r);
  if (data.uid == 0) return;
  session::StoreEvent event;
  event.folder = kFolder;
  event.uidvalidity = uidvalidity_;
  event.uid = data.uid;
  event.flags = std::move(data.flags);
  event.flags_known = data.has_flags;
  event.modseq = data.modseq;
  // Committed only when the catch-up completes: results come in UID order, so a
  // link lost half-way must not skip the lower MODSEQs not yet seen.
  if (!catchup_mark_frozen_) {
    catchup_modseq_ = std::max(catchup_modseq_, event.modseq);
  }
  // Known to the watch, but above an older view's top: the device may lack
  // it (devices that have it do not announce it twice).
  const bool view_may_lack =
      view_catchup_.modseq != 0 && event.uid > view_catchup_.top_uid;
  if (known_.Contains(event.uid) && !view_may_lack) {
    // A FETCH without FLAGS says nothing of them: not "no flags".
    if (!event.flags_known) return;
    event.kind = session::EventKind::kFlags;
  } else {
    event.kind = session::EventKind::kNew;
    known_.Insert(event.uid);
    uidnext_ = std::max(uidnext_, event.uid + 1);
  }
  pending_.push_back(std::move(event));
}

void UserWatcher::OnVanished(const imap::Response& r) {
  // "* VANISHED (EARLIER) 3:5,9": only UIDs we knew are news; the store repeats
  // earlier expunges as long as our MODSEQ predates them.
  for (const imap::Arg& arg : r.args) {
    if (arg.type != imap::Arg::Type::kAtom) continue;
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(arg.value);
    if (!set.ok()) continue;
    if (view_catchup_.modseq != 0) ExpungeFromOlderView(*set);
    for (const auto& [first, last] : known_.Resolve(*set, /*uid_mode=*/true)) {
      for (uint64_t uid = first; uid <= last; ++uid) {
        QueueExpunge(static_cast<uint32_t>(uid));
      }
    }
    for (const session::StoreEvent& e : pending_) {
      if (e.kind == session::EventKind::kExpunge) known_.Erase(e.uid);
    }
    // A message newer than anything the watch has seen, gone before the watch
    // looked: no news to the watch, but a device's view taken from the store
    // meanwhile (its SELECT, its resume) may hold it, and only this expunge
    // takes it out again. Devices that never had it ignore it. Reported once
    // (uidnext_ moves past it); bounded (messages past the bound were never
    // seen through the watch by anyone).
    constexpr size_t kMaxUnseen = 4096;
    for (uint32_t uid : TakeUnseen(arg.value, &uidnext_, kMaxUnseen)) {
      QueueExpunge(uid);
    }
  }
}

void UserWatcher::QueueExpunge(uint32_t uid) {
  session::StoreEvent event;
  event.kind = session::EventKind::kExpunge;
  event.folder = kFolder;
  event.uidvalidity = uidvalidity_;
  event.uid = uid;
  pending_.push_back(std::move(event));
}

void UserWatcher::ExpungeFromOlderView(const imap::SequenceSet& vanished) {
  // Gone before the watch's first look, so unknown to it, but an older view
  // may hold them: each is an expunge (devices without it ignore it). Past the
  // bound the views are rebuilt instead (view_catchup_overflow_).
  constexpr size_t kMaxOlderExpunges = 4096;
  size_t reported = 0;
  for (const imap::SeqRange& range : vanished.ranges()) {
    // Known ones are reported by OnVanished, those from uidnext_ on by
    // TakeUnseen; a range wider than the bound overflows rather than loops.
    const uint64_t last =
        std::min<uint64_t>(range.last, static_cast<uint64_t>(uidnext_) - 1);
    if (range.first <= last && last - range.first >= (1u << 20)) {
      view_catchup_overflow_ = true;
      return;
    }
    for (uint64_t uid = range.first; uid <= last; ++uid) {
      if (known_.Contains(static_cast<uint32_t>(uid))) continue;
      if (++reported > kMaxOlderExpunges) {
        view_catchup_overflow_ = true;
        return;
      }
      QueueExpunge(static_cast<uint32_t>(uid));
    }
  }
}

void UserWatcher::Flush() {
  if (pending_.empty()) return;
  // The catch-up lists changes in UID order; a message fetched and then
  // vanished during it (a live expunge amid the FETCHes) nets out.
  std::vector<session::StoreEvent> events = SessionOrder(std::move(pending_));
  pending_.clear();
  sink_->OnStoreEvents(user_, events);
}

}  // namespace pimap::store
