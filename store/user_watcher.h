// The per-user store watch: one upstream connection per user with live P-IMAP
// sessions, shared by all the user's devices. It SELECTs INBOX with QRESYNC
// enabled, waits in IDLE, and on any sign of change leaves IDLE and asks the
// store exactly what changed since the last MODSEQ it saw (UID FETCH 1:*
// (FLAGS) (CHANGEDSINCE m VANISHED)). That one catch-up path also serves
// reconnects after a store restart, so no event is missed: a reconnect just
// catches up from the last MODSEQ (same UIDVALIDITY).
// Every other personal folder is covered on the same connection: NOTIFY reports
// their changes as "* STATUS", and the watch makes an excursion (EXAMINE each
// changed folder with QRESYNC, then SELECT INBOX with QRESYNC, so nothing on
// INBOX is lost while away) before it IDLEs again (store/folder_catchup.h).
// For `--outband-payload full` it also fetches, when asked, the Subject and
// From of a new message (user_watcher_headline.cc).
#ifndef PIMAP_STORE_USER_WATCHER_H_
#define PIMAP_STORE_USER_WATCHER_H_

#include <memory>
#include <string>
#include <vector>

#include "core/base/timer_wheel.h"
#include "core/imap/framer.h"
#include "core/imap/response.h"
#include "core/imap/sequence_set.h"
#include "core/session/event.h"
#include "core/session/store_watch.h"
#include "core/session/uid_view.h"
#include "store/folder_catchup.h"
#include "store/upstream_link.h"

namespace pimap::store {

class UserWatcher final : public session::StoreWatch,
                          private session::StoreLinkClient,
                          private imap::Framer::Visitor {
 public:
  // `live_config` (optional; outlives the watch): where each (re)connect
  // reads the store's address and TLS settings, so that a reload reaches a
  // running watch at its next connect; else `config` for good.
  // `scope` kCoveredOnly: no INBOX, no `personal` (user_watcher_cover.cc).
  UserWatcher(engine::Shard* shard, const UpstreamConfig& config,
              std::string user, session::StoreCredentials credentials,
              session::StoreEventSink* sink,
              const UpstreamConfig* live_config = nullptr,
              session::WatchScope scope = session::WatchScope::kAll);

  void Close() override;
  // INBOX, and every other folder the watch has a baseline of (0: not covered).
  uint64_t highest_modseq(absl::string_view folder) const override;
  uint32_t uidvalidity(absl::string_view folder) const override;
  void UpdateCredentials(session::StoreCredentials credentials) override;
  // Names them in the NOTIFY (FolderCatchUp::SetCovered): re-issued at the
  // next settle when the set changed (IDLE is left for it).
  void CoverFolders(std::vector<std::string> folders) override;
  // INBOX, or the folder an excursion has just looked at (its events are
  // being delivered); answered null at once for another folder or
  // UIDVALIDITY, without a link, or past kMaxHeadlineAsks waiting
  // (user_watcher_headline.cc).
  void LookUpHeadline(absl::string_view folder, uint32_t uidvalidity,
                      uint32_t uid, int64_t wait_ms,
                      HeadlineDone done) override;

 private:
  static constexpr char kFolder[] = "INBOX";
  // kConnecting → kEnable → kNotify → kList (LIST-STATUS baseline; a refused
  // NOTIFY goes to kNotifyInboxOnly instead) → kSelect → kSearch | kCatchUp →
  // kIdle → kLeavingIdle → kCatchUp, or an excursion: kExamine (one per changed
  // folder) → kReturn (SELECT INBOX with QRESYNC) → kIdle. Headlines asked
  // for: kHeadline (their FETCH, from Settle, INBOX selected). Link loss →
  // kBackoff → kConnecting. A login the store rejects → kRejected, until
  // UpdateCredentials. The covered folders changed: kRenotify (NOTIFY SET
  // again, from Settle, INBOX selected) → Settle.
  // WatchScope::kCoveredOnly (user_watcher_cover.cc): kConnecting → kEnable →
  // kNotify (the covered folders' `mailboxes` filter alone) → Settle: an
  // excursion when folders wait (kExamine each) → kUnselect → kIdle with
  // nothing selected (the store reports the covered folders as "* STATUS").
  enum class State {
    kConnecting,
    kEnable,
    kNotify,
    kNotifyInboxOnly,
    kList,
    kSelect,
    kSearch,
    kCatchUp,
    kIdle,
    kLeavingIdle,
    kExamine,
    kReturn,
    kHeadline,
    kRenotify,
    kUnselect,
    kBackoff,
    kRejected,
    kClosed
  };

  ~UserWatcher() override;
  void Connect();
  void OnLinked(absl::StatusOr<session::StoreLink*> link, uint64_t generation);
  void Send(absl::string_view command);
  // Sends a SELECT/EXAMINE of `target`: until the store says [CLOSED], message
  // data is still the previous mailbox's.
  void SendSelect(absl::string_view command, absl::string_view target);
  void OnSelectDone(bool ok);
  void SelectInbox();
  void OnInboxSelected();
  void RebaselineInbox();
  void StartCatchUp();
  // INBOX is caught up: an excursion if folders wait, else IDLE.
  void Settle();
  void NextFolder();
  void ReturnToInbox();
  // user_watcher_cover.cc: a watch of the covered folders alone.
  bool covered_only() const {
    return scope_ == session::WatchScope::kCoveredOnly;
  }
  // The NOTIFY SET in force for the scope and the covered folders.
  std::string NotifyCommand() const;
  // Its NOTIFY answered: the folders are looked at, then the watch idles.
  void StartCoveredOnly(bool notify_ok);
  // The end of an excursion: nothing stays selected (a selected folder's
  // changes would come as message data, not as the STATUS it waits for).
  void LeaveFolder();
  void LeaveIdle();
  void EnterIdle();
  void OnCode(absl::string_view code);
  void OnMessageData(const imap::Response& response);
  void LinkLost(absl::string_view why);
  void OnResponse(const imap::Response& response);
  void OnFetch(const imap::Response& response);
  void OnVanished(const imap::Response& response);
  void OnList(const imap::Response& response);
  // An expunge of INBOX's `uid`, for the next Flush.
  void QueueExpunge(uint32_t uid);
  void ExpungeFromOlderView(const imap::SequenceSet& vanished);
  void ReportFolderChanges(
      const std::vector<FolderCatchUp::FolderChange>& changes);
  // user_watcher_folders.cc: the EXAMINE of a folder's look completed.
  void OnFolderLooked(bool ok, absl::string_view text);
  void Flush();
  // user_watcher_headline.cc: the FETCH of the headlines asked for in the
  // selected mailbox (INBOX at a settle, another at the end of its look on
  // an excursion), if any (then true: AfterHeadlines goes on when it is done).
  bool FetchHeadlines();
  // The FETCH is done: the excursion goes on, or the watch settles.
  void AfterHeadlines();
  // What the debug log shows of a response: never a headline (Subject and
  // From are private), so nothing of one while kHeadline.
  std::string LoggedArgs(const imap::Response& response) const;
  // A FETCH amid kHeadline: true if it answered an ask.
  bool OnHeadlineFetch(const imap::Response& response);

  // session::StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override {}
  void OnStoreDrained() override {}
  void OnStoreClosed(absl::Status reason) override;
  // imap::Framer::Visitor
  bool OnLine(absl::string_view line,
              const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view chunk) override;
  bool OnEnd() override;
  bool OnError(const imap::FrameError& error) override;

  engine::Shard* shard_;
  UpstreamConfig config_;
  const UpstreamConfig* live_config_;
  std::string user_;
  session::StoreCredentials credentials_;
  // Bumped by UpdateCredentials: a rejection of older credentials is stale.
  uint64_t credentials_generation_ = 0;
  session::StoreEventSink* sink_;
  session::WatchScope scope_;
  session::StoreLink* link_ = nullptr;
  State state_ = State::kConnecting;
  imap::Framer framer_;
  imap::ResponseAssembler assembler_;
  bool frame_error_ = false;

  uint32_t uidvalidity_ = 0;
  uint64_t highest_modseq_ = 0;
  // What the sink has been told about: every change up to this MODSEQ has been
  // delivered as an event (highest_modseq_ runs ahead during a catch-up).
  uint64_t journaled_modseq_ = 0;
  uint64_t catchup_modseq_ =
      0;  // the running maximum of a catch-up in progress
  // An EXISTS came amid the catch-up: later MODSEQs no longer raise its mark.
  bool catchup_mark_frozen_ = false;
  // No UID from here on has been seen by the watch, known or expunged: one
  // that vanishes unknown from here on came and went between two looks, and
  // its expunge is still reported (OnVanished).
  uint32_t uidnext_ = 0;
  uint64_t select_modseq_ = 0;
  uint32_t select_uidvalidity_ = 0;
  uint32_t select_uidnext_ = 0;
  session::UidView known_;  // every UID the watch knows in INBOX
  // At the first look, a connected device's older view of INBOX
  // (StoreEventSink::OldestLiveView): the catch-up owed to it, from its MODSEQ.
  session::ViewStart view_catchup_;
  bool view_catchup_overflow_ = false;  // too many expunges to name
  // INBOX message data arrived that no running catch-up covers: look again.
  bool inbox_dirty_ = false;
  // What the connection has selected, and whose message data arrives now (the
  // previous mailbox's until [CLOSED] when another is being selected).
  std::string selected_;
  std::string open_;
  std::string opening_;
  FolderCatchUp folders_;
  // The store took the full NOTIFY (not only MailboxName): covered folders
  // can be named in it.
  bool notify_full_ = false;
  // The covered set changed since the NOTIFY in force was sent.
  bool renotify_due_ = false;
  // What CoverFolders was last given (a repeat changes nothing, and a set
  // the store refused is not asked for again).
  std::vector<std::string> requested_;
  // A mailbox event came: the folders are listed again at the next settle.
  bool relist_due_ = false;
  bool relisting_ = false;  // kList is such a listing (INBOX stays selected)
  // The hierarchy delimiter the listing showed (NIL until one did).
  imap::Arg delimiter_;  // NIL at first (the constructor)
  size_t budget_ = 0;  // folders the running excursion may still examine
  std::vector<session::StoreEvent> pending_;
  // Headline look-ups waiting (few: kMaxHeadlineAsks), each answered by its
  // FETCH or by its timer, whichever comes first.
  struct HeadlineAsk {
    uint64_t id = 0;
    uint32_t uid = 0;
    std::string folder;
    bool sent = false;  // in the running FETCH
    TimerWheel::TimerId timer = 0;
    HeadlineDone done;
  };
  static constexpr size_t kMaxHeadlineAsks = 8;
  std::vector<HeadlineAsk> headline_asks_;
  uint64_t headline_ask_ids_ = 0;
  bool headline_excursion_ = false;  // the running FETCH is in another folder
  // Takes the asks `which` selects out of headline_asks_ (timers cancelled)
  // and answers them: the callbacks run on a list no longer ours.
  template <typename Pred>
  void AnswerAsks(Pred which,
                  const std::shared_ptr<const session::MessageHeadline>& h);
  int failures_ = 0;
  TimerWheel::TimerId retry_timer_ = 0;
  std::shared_ptr<bool> alive_;
};

class UserWatcherFactory final : public session::StoreWatchFactory {
 public:
  UserWatcherFactory(engine::Shard* shard, UpstreamConfig config)
      : shard_(shard), config_(std::move(config)) {}
  session::StoreWatch* Watch(const std::string& user,
                             session::StoreCredentials credentials,
                             session::StoreEventSink* sink,
                             session::WatchScope scope) override {
    return new UserWatcher(shard_, config_, user, std::move(credentials), sink,
                           &config_, scope);
  }
  // A reload: watches connect with `config` from now on (running ones at
  // their next reconnect).
  void set_config(UpstreamConfig config) { config_ = std::move(config); }

 private:
  engine::Shard* shard_;
  UpstreamConfig config_;
};

}  // namespace pimap::store

#endif  // PIMAP_STORE_USER_WATCHER_H_
