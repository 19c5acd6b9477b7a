// The seam between the session layer and whatever watches the store for changes
// (store/: an upstream IDLE/NOTIFY connection per user; later the store pushing
// events over HTTP). Declared in core so bindings/ and store/ stay apart.
#ifndef PIMAP_CORE_SESSION_STORE_WATCH_H_
#define PIMAP_CORE_SESSION_STORE_WATCH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "core/session/event.h"
#include "core/session/store_link.h"

namespace pimap::session {

// Where a live device's view of a folder was taken: its MODSEQ and the
// highest UID in it (the view may be filtered, so UIDs above the top are the
// ones it may lack).
struct ViewStart {
  uint64_t modseq = 0;  // 0: no such view
  uint32_t top_uid = 0;
  uint32_t uidvalidity = 0;  // the view's
};

class StoreEventSink {
 public:
  virtual ~StoreEventSink() = default;
  // UID-level changes of `user`'s mailboxes, in store order, on the owner shard.
  virtual void OnStoreEvents(absl::string_view user,
                             const std::vector<StoreEvent>& events) = 0;
  // The watch's events of `folder` begin at `modseq` (its first look, or a
  // new UIDVALIDITY): a change at or before it was never an event. A view of
  // the folder taken at an older MODSEQ may lack what changed in between.
  virtual void OnWatchBaseline(absl::string_view user, absl::string_view folder,
                               uint32_t uidvalidity, uint64_t modseq) {}
  // Asked by a watch about to take its first look at `folder` (at
  // `uidvalidity`; 0: of the first view found, which the answer names): the
  // oldest view of it that a connected device holds. The watch then reports
  // what changed since, so that such a device (its IDLE answered by the
  // gateway) hears of mail that came before the watch looked.
  virtual ViewStart OldestLiveView(absl::string_view user,
                                   absl::string_view folder,
                                   uint32_t uidvalidity) {
    return {};
  }
  // The watch has taken its first look at `folder`, a shared or public
  // folder it was asked to cover (StoreWatch::CoverFolders): it reports the
  // folder's changes from now on, so a device idling there on its own link
  // may leave it to the gateway.
  virtual void OnFolderCovered(absl::string_view user,
                               absl::string_view folder) {}
  // The store refused `password` for `user` (a watch's or a pooled link's
  // login): it is not tried again until the user logs in anew.
  virtual void OnStoreLoginRejected(absl::string_view user,
                                    absl::string_view password) {}
};

// One user's watch. Closing it frees it.
class StoreWatch {
 public:
  virtual ~StoreWatch() = default;
  virtual void Close() = 0;
  // Where the watch stands in `folder` (for checkpoints): 0 until known.
  virtual uint64_t highest_modseq(absl::string_view folder) const = 0;
  virtual uint32_t uidvalidity(absl::string_view folder) const = 0;
  // The user logged in again and the store accepted `credentials`: a watch
  // whose login the store rejected tries again with them at once (and never
  // before: retrying a rejected password can lock the account); a running
  // watch keeps them for its next reconnect.
  virtual void UpdateCredentials(StoreCredentials credentials) = 0;
  // The shared and public folders the user's connected devices have selected
  // (at most kMaxCoveredFolders, sorted): the watch asks the store to report
  // their changes too, and covers each once it has looked at it (uidvalidity()
  // non-zero from then on); one left out is covered no more. A watch that
  // cannot ignores it.
  static constexpr size_t kMaxCoveredFolders = 100;
  virtual void CoverFolders(std::vector<std::string> folders) {}
  // The headline (Subject, From) of message `uid` of `folder` at
  // `uidvalidity`, for the wake-up of a device away with `--outband-payload
  // full`, when the events did not carry it. `done` runs exactly once, on the
  // shard and never inside this call, with the headline or with null (not
  // known, or not within `wait_ms`: a wake-up is never held longer for it);
  // unless the watch is closed first, which drops it uncalled (the user's
  // sessions are gone then). A watch that cannot ask answers null.
  using HeadlineDone =
      absl::AnyInvocable<void(std::shared_ptr<const MessageHeadline>)>;
  virtual void LookUpHeadline(absl::string_view folder, uint32_t uidvalidity,
                              uint32_t uid, int64_t wait_ms,
                              HeadlineDone done) = 0;
};

// What a watch looks at.
enum class WatchScope {
  // INBOX selected and idling, the user's other folders by NOTIFY `personal`,
  // and the covered folders (StoreWatch::CoverFolders).
  kAll,
  // The covered folders alone (the store's pushes report the user's own): a
  // NOTIFY with their `mailboxes` filter and nothing selected while idle, so
  // the store does no work for the user's own folders on this connection,
  // and FolderCatchUp's bound counts covered folders only.
  kCoveredOnly,
};

class StoreWatchFactory {
 public:
  virtual ~StoreWatchFactory() = default;
  // Starts watching `user` with `credentials` (the user's own, or a master
  // user's with authzid = user). Events go to `sink` until Close().
  virtual StoreWatch* Watch(const std::string& user,
                            StoreCredentials credentials, StoreEventSink* sink,
                            WatchScope scope = WatchScope::kAll) = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_STORE_WATCH_H_
