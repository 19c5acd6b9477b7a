// The per-user watch's coverage of the folders other than INBOX
// (store/user_watcher.h): a bounded table of every personal folder's
// {UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT}, baselined from LIST-STATUS (RFC 5819),
// a queue of folders the store said changed (NOTIFY STATUS, RFC 5465), and the
// meaning of one folder's catch-up, EXAMINE folder (QRESYNC (uidvalidity
// modseq)) (RFC 7162), as UID-level store events. Pure logic on parsed
// responses: the watcher owns the connection and routes responses here.
#ifndef PIMAP_STORE_FOLDER_CATCHUP_H_
#define PIMAP_STORE_FOLDER_CATCHUP_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "core/imap/response.h"
#include "core/session/event.h"
#include "core/session/store_namespaces.h"
#include "core/session/store_watch.h"

namespace pimap::store {

// "UIDVALIDITY 3" → 3, for the resp-text-code name given.
bool CodeNumber(absl::string_view code, absl::string_view name, uint64_t* out);

// What a "* n FETCH (UID u FLAGS (...) MODSEQ (m))" says.
struct FetchData {
  uint32_t uid = 0;  // 0: no UID in the response
  std::vector<std::string> flags;
  bool has_flags = false;  // the response had FLAGS (else `flags` says nothing)
  uint64_t modseq = 0;
};
FetchData ParseFetchData(const imap::Response& r);

// One catch-up's events as sessions get them: expunges first (MSNs stay simple
// for devices), and the arrival and flag changes of a message whose expunge is
// among them dropped (it came and went between two looks; with expunges first
// its arrival would come after and keep it, and a UID is never used again).
// The expunge stays: a device whose view was taken from the store meanwhile
// may hold the message.
std::vector<session::StoreEvent> SessionOrder(
    std::vector<session::StoreEvent> events);

// The UIDs of a VANISHED set at or past `*unseen_from` (no look of the watch
// saw them: they came and went between two), at most `max`, ascending;
// *unseen_from moves past them, so that each is taken once.
std::vector<uint32_t> TakeUnseen(absl::string_view vanished_set,
                                 uint32_t* unseen_from, size_t max);

class FolderCatchUp {
 public:
  static constexpr size_t kDefaultMaxFolders = 1000;

  struct Folder {
    uint32_t uidvalidity = 0;  // 0: listed but not examined yet (not covered)
    uint64_t modseq = 0;       // every change up to here has been reported
    uint32_t uidnext = 0;      // no UID from here on has been reported
  };

  // Past `max_folders` a personal folder is simply not tracked (not covered);
  // covered ones are bounded by kMaxCovered on their own.
  explicit FolderCatchUp(size_t max_folders = kDefaultMaxFolders)
      : max_folders_(max_folders) {}
  // Folders outside the user's own namespaces (shared, public) are not
  // tracked: NOTIFY `personal` does not report them, unless covered
  // (SetCovered). Null: all are the user's.
  void set_namespaces(const session::StoreNamespaces* namespaces) {
    namespaces_ = namespaces;
  }

  // Dovecot's bound on the names of one NOTIFY filter
  // (IMAP_NOTIFY_MAX_NAMES_PER_NS): past it a folder is not covered.
  static constexpr size_t kMaxCovered = 100;
  // The shared and public folders the user's devices have selected, which the
  // watch's NOTIFY names with a `mailboxes` filter: these are tracked despite
  // the namespace rule. A folder newly covered is queued, and its first look
  // takes its baseline (as OnCreated's); one no longer covered is dropped (the
  // store stops reporting it). Personal, unquotable and INBOX names are left
  // out, and past kMaxCovered the rest; true if the covered set changed.
  bool SetCovered(const std::vector<std::string>& folders);
  // The covered folders, sorted (what the NOTIFY names).
  const std::vector<std::string>& covered() const { return covered_; }
  // Where a connected device's view of a covered folder was taken
  // (StoreEventSink::OldestLiveView, any UIDVALIDITY): a covered folder's
  // first look starts from there instead of taking the store's state as its
  // baseline, so that what changed between the device's SELECT and the look
  // is reported too (the device's IDLE is answered by the gateway from then).
  using ViewSource = std::function<session::ViewStart(absl::string_view)>;
  void set_view_source(ViewSource source) { view_source_ = std::move(source); }

  // What a baseline after the first found changed that no mailbox event said
  // (the watch was away, or the store coalesced its events away): a folder
  // created, deleted, or renamed (gone, and its UIDVALIDITY under a new name).
  struct FolderChange {
    session::EventKind kind = session::EventKind::kFolderCreated;
    std::string name;      // the folder, or a rename's old name
    std::string new_name;  // a rename's new name
  };

  // LIST "" "*" RETURN (STATUS (UIDVALIDITY UIDNEXT HIGHESTMODSEQ)) runs: its
  // "* STATUS" responses (those with UIDVALIDITY) set or check the baselines.
  void BeginBaseline();
  // The listing completed. ok: tracked folders it did not list are gone, and
  // the changes since the previous baseline are returned (none after the
  // first, whose listing is the starting point), in name order. !ok (no
  // LIST-STATUS): nothing is tracked until the next baseline.
  std::vector<FolderChange> EndBaseline(bool ok);
  bool in_baseline() const { return baseline_; }
  // A baseline succeeded and folders are tracked.
  bool tracking() const { return enabled_; }
  // No NOTIFY for other folders on this connection: nothing can be covered.
  void Disable();
  // A watch of the covered folders alone (session::WatchScope::kCoveredOnly),
  // whose NOTIFY names them and nothing else: no listing, no personal folder
  // ever tracked; every covered folder is queued for a look (its first takes
  // the baseline, later ones catch up what a lost link missed). Called each
  // time the NOTIFY is in force on a new link.
  void EnableCoveredOnly();

  // Any "* STATUS" response: a baseline entry, or the store saying a folder
  // changed (queued for a catch-up unless its HIGHESTMODSEQ is known already).
  void OnStatus(const imap::Response& r);
  // Mailbox events (NOTIFY MailboxName).
  void OnCreated(absl::string_view name);
  void OnDeleted(absl::string_view name);
  void OnRenamed(absl::string_view from, absl::string_view to);
  // Something else showed that the folder changed (its message data while it
  // was not being caught up). Untracked folders are ignored.
  void Queue(absl::string_view name);
  bool queued() const { return !queued_.empty(); }
  size_t queue_size() const { return queued_.size(); }

  // Starts the catch-up of the next queued folder: the command to send
  // (without tag), or "" when nothing waits.
  std::string StartNext();
  // The folder being caught up ("" when none).
  const std::string& current() const { return current_; }
  // The running EXAMINE is the folder's first look (it had no baseline of
  // its own; a covered folder's may start from a device's view).
  bool current_first_look() const { return current_first_look_; }
  // Responses of the running EXAMINE: resp-text codes, FETCH, VANISHED.
  void OnCode(absl::string_view code);
  void OnFetch(const imap::Response& r);
  void OnVanished(const imap::Response& r);
  // The EXAMINE completed. ok: the events to journal (expunges first) and the
  // folder's baseline moves on; a new UIDVALIDITY re-baselines without events
  // (like INBOX). !ok (deleted meanwhile): the folder is no longer tracked.
  std::vector<session::StoreEvent> Finish(bool ok);
  // The link went away mid-way: nothing of the catch-up counts, it waits again.
  void Abort();

  // The tracked folder, or null. INBOX is never tracked here.
  const Folder* Find(absl::string_view name) const;
  size_t size() const { return folders_.size(); }

 private:
  // Tracking while a baseline runs or after one succeeded.
  bool active() const { return enabled_ || baseline_; }
  bool Personal(absl::string_view name) const {
    return namespaces_ == nullptr || namespaces_->IsPersonal(name);
  }
  // Tracks and queues the covered folders not tracked yet.
  void TrackCovered();
  Folder* Track(absl::string_view name);
  void Drop(absl::string_view name);

  size_t max_folders_;
  const session::StoreNamespaces* namespaces_ = nullptr;
  std::vector<std::string> covered_;  // sorted
  ViewSource view_source_;
  bool enabled_ = false;
  bool covered_only_ = false;  // EnableCoveredOnly
  bool baseline_ = false;
  absl::flat_hash_map<std::string, Folder> folders_;
  absl::flat_hash_set<std::string> listed_;  // seen by the running baseline
  // Listed by the running baseline, not tracked before it.
  absl::flat_hash_set<std::string> fresh_;
  bool rebaseline_ = false;  // the running baseline has a previous one
  // Folders waiting for a catch-up: a set (duplicates merge) and its order.
  // The order may hold names no longer queued (dropped); they are skipped.
  absl::flat_hash_set<std::string> queued_;
  std::deque<std::string> order_;

  // The catch-up in progress.
  std::string current_;
  bool current_first_look_ = false;
  uint32_t base_uidnext_ = 0;  // UIDs from here on are new mail
  uint32_t got_uidvalidity_ = 0;
  uint64_t got_modseq_ = 0;
  uint32_t got_uidnext_ = 0;
  uint64_t max_modseq_ = 0;  // of the FETCH responses
  std::vector<session::StoreEvent> pending_;
};

// The watch's NOTIFY SET (without tag): INBOX selected, every personal
// folder's message and mailbox events, and the message events of `covered`
// (FolderCatchUp::covered(): quotable names) by a `mailboxes` filter, which
// makes the store report other users' changes there too (RFC 5465 §6).
std::string WatchNotifyCommand(const std::vector<std::string>& covered);
// A covered-only watch's NOTIFY: the message events of `covered` alone
// (NOTIFY NONE when there are none), nothing selected.
std::string CoveredOnlyNotifyCommand(const std::vector<std::string>& covered);

// The changes an EndBaseline found, as the store's own mailbox events read
// (RFC 5465 §5.4: "* LIST () <delim> <name>", "(\\NonExistent)" for a
// deletion, ("OLDNAME" (<old>)) for a rename); `delimiter` is the hierarchy
// delimiter the listing showed (a quoted string or NIL).
std::vector<session::StoreEvent> FolderChangeEvents(
    const std::vector<FolderCatchUp::FolderChange>& changes,
    const imap::Arg& delimiter);

}  // namespace pimap::store

#endif  // PIMAP_STORE_FOLDER_CATCHUP_H_
