// P-IMAP sessions of one shard: a session per (user, device) that outlives its
// connections, with its journal, filters, prefs and the device's view of the
// selected folder; and per user at most one store watch, shared by all devices.
// Store events are fanned out here into every device session's journal.
#ifndef PIMAP_CORE_SESSION_SESSION_REGISTRY_H_
#define PIMAP_CORE_SESSION_SESSION_REGISTRY_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/session/filter.h"
#include "core/session/journal.h"
#include "core/session/outband_notifier.h"
#include "core/session/prefs.h"
#include "core/session/state_store.h"
#include "core/session/store_namespaces.h"
#include "core/session/store_watch.h"
#include "core/session/uid_view.h"
#include "core/session/vfolder.h"

namespace pimap::session {

class MailSubmitter;

// What the session layer needs from a device's live connection.
// The goodbye of a connection whose session a newer one took over.
inline constexpr absl::string_view kTakenOverText =
    "Session taken over by a newer connection of this device";
// The goodbye of every connection of a node that lost its cluster lease: the
// device reconnects and is served by the node that holds its user now.
inline constexpr absl::string_view kFencedText =
    "[UNAVAILABLE] This gateway node lost its cluster lease; reconnect";
// The goodbye of a user's devices when the user moves to another node.
inline constexpr absl::string_view kMovedText =
    "[UNAVAILABLE] This account moves to another gateway node; reconnect";

class DeviceLink {
 public:
  virtual ~DeviceLink() = default;
  // New events were journaled for the session; push them if the connection can.
  virtual void OnEventsPending() = 0;
  // The session is no longer this connection's: a newer connection of the
  // same device took it over, or the node lost the user (cluster fence).
  // `reason` is the goodbye's text (it may carry a response code).
  virtual void OnTakenOver(absl::string_view reason) = 0;
  // A mailbox was created, deleted or renamed: always pushed, NOTIFY-style.
  virtual void OnFolderEvent(const StoreEvent& event) = 0;
  // The device is selecting `folder` (its SELECT is on its way to the store):
  // events of it must be journaled although it is not the selected one yet.
  virtual bool Selecting(absl::string_view folder) const = 0;
  // The user's watch now covers `folder` (StoreEventSink::OnFolderCovered).
  virtual void OnFolderCovered(absl::string_view folder) {}

  // For the operator (pimapctl who/kick; tools/pimapd/admin_*), on the shard
  // thread. The binding that carries the device ("imap", "imaps", "http",
  // "https"; "imap hibernated"), and whether it holds a store link now.
  virtual std::string Binding() const { return ""; }
  virtual bool HoldsStoreLink() const { return false; }
  // The operator closes the connection: "* BYE reason", then it closes (the
  // session lives on, detached, as after any disconnect).
  virtual void Kick(absl::string_view reason) {}
};

// A parked stock client (relay_driver_park.cc): it holds no session here,
// only listens to its user's store events while the gateway holds its IDLE.
class ParkedListener {
 public:
  virtual ~ParkedListener() = default;
  // A batch of the user's events, de-duplicated, in store order. The
  // listener may remove itself (RemoveParked) from inside the call.
  virtual void OnParkedEvents(const std::vector<StoreEvent>& events) = 0;
};

struct SessionConfig {
  size_t journal_limit = Journal::kDefaultLimit;
  int64_t session_lifetime_ms = 24 * 3600 * 1000LL;
  FilterSpec default_notification = FilterSpec::None();
  // Store master user for watches (SASL PLAIN authzid = user); empty: the watch
  // logs in with the credentials of the user's latest login (kept in memory).
  std::string master_user;
  std::string master_password;
  int64_t idle_keepalive_ms = 10 * 60 * 1000;  // "* OK" to devices in IDLE
  // Event sources (--store-events): a watch connection per user, the store's
  // pushes (store/events), or both (then events are de-duplicated).
  bool watch = true;
  bool pushes = false;
  // A user whose last parked stock client left keeps its watch this long (as
  // a pooled link its idle time): a client that IDLEs again soon parks at
  // once instead of waiting for a new watch's baseline.
  int64_t parked_watch_linger_ms = 30000;
  // Bounds on what one user or device makes the shard keep (0: no limit):
  // device sessions per user (--max-devices-per-user), folders with their own
  // filter per device (--max-filters-per-device) and the search program of one
  // filter (--max-filter-bytes).
  size_t max_devices_per_user = 32;
  size_t max_filters_per_device = 64;
  size_t max_filter_bytes = 4096;
  // XDELIVER (device_driver_xdeliver.cc): the largest message a device may
  // send (--xdeliver-max-bytes), and the domain that makes a login name
  // without '@' an address (--smtp-sender-domain).
  size_t max_xdeliver_bytes = 10 << 20;
  std::string smtp_sender_domain;
};

struct DeviceSession {
  DeviceSession(std::string u, std::string d, uint64_t id,
                const SessionConfig& c)
      : user(std::move(u)),
        device(std::move(d)),
        session_id(id),
        journal(c.journal_limit),
        filters(c.default_notification) {}
  std::string user;
  std::string device;
  uint64_t session_id;
  Journal journal;
  DeviceFilters filters;
  // The device's preferences. Most devices never set one: they share the
  // defaults, and a session holds its own copy only once one is set.
  const DevicePrefs& prefs() const {
    return custom_prefs != nullptr ? *custom_prefs : DefaultPrefs();
  }
  DevicePrefs& mutable_prefs() {
    if (custom_prefs == nullptr) custom_prefs = std::make_unique<DevicePrefs>();
    return *custom_prefs;
  }
  static const DevicePrefs& DefaultPrefs() {
    static const DevicePrefs* const kDefaults = new DevicePrefs();
    return *kDefaults;
  }
  std::unique_ptr<DevicePrefs> custom_prefs;
  // XPSEARCH's saved searches (device settings, kept like the filters).
  VirtualFolders vfolders;
  std::string selected_folder;  // empty: AUTHENTICATED
  // The virtual folder the device selected, empty for a real one. The
  // selected_folder is then its backing folder: the journal, the watch and
  // the store link all deal in that one; only the view is narrower.
  std::string selected_vfolder;
  // The view spec of `folder` seen as `vfolder` (empty: the folder itself):
  // the device's view filter, AND the vfolder's search.
  FilterSpec ViewOf(absl::string_view folder, absl::string_view vfolder) const {
    const VirtualFolder* v = vfolder.empty() ? nullptr : vfolders.Find(vfolder);
    return v == nullptr ? filters.View(folder)
                        : AndSpecs(filters.View(folder), v->spec);
  }
  // The one answer to "the view spec of what is selected".
  FilterSpec SelectedView() const {
    return ViewOf(selected_folder, selected_vfolder);
  }
  bool read_only = false;
  UidView view;  // the device's view of selected_folder
  uint32_t view_uidvalidity = 0;
  // Changes of the device's view (EXISTS, EXPUNGE, RESYNC) written to it, and
  // how many of them the device's input acknowledges (counted, compared only
  // for equality: SessionRegistry::MarkViewChanged).
  uint32_t view_writes = 0;
  // The store's MODSEQ up to which `view` is known to reflect every change: an
  // exact rebuild asks the store for what changed since (CONDSTORE).
  uint64_t view_modseq = 0;
  // Restored from durable state after a restart: the journal is gone, so the
  // resume rebuilds from the checkpoint.
  bool restored = false;
  // The durable checkpoint of selected_folder is marked dirty: the device may
  // hold a view it does not reflect (MarkViewChanged).
  bool checkpoint_dirty = false;
  uint32_t view_writes_ackable = 0;
  // New messages whose filter verdicts came from the store (UID SEARCH with the
  // filter's program): classified ones, and of those the ones in the view and
  // the ones the notification filter lets through.
  absl::flat_hash_set<uint32_t> classified;
  absl::flat_hash_set<uint32_t> in_view;
  absl::flat_hash_set<uint32_t> notify;
  // The flags the device was last told per UID (bounded), so that the echo of
  // its own STORE, or the same change from two sources, is not pushed again.
  absl::flat_hash_map<uint32_t, std::string> told_flags;
  // Mailbox created/deleted/renamed while the device was away (their "* LIST"
  // lines, oldest first, bounded): replayed at resume, dropped once a command
  // read after them acknowledges them.
  std::vector<std::string> folder_events;
  size_t folder_events_written = 0;
  static constexpr size_t kMaxFolderEvents = 256;
  DeviceLink* connection = nullptr;
  int64_t last_activity_ms = 0;
};

class SessionRegistry final : public StoreEventSink {
 public:
  // `state` keeps sessions across restarts (owned by the caller; per shard).
  // Everything pointed to belongs to the registry's shard.
  SessionRegistry(TimerWheel* timers, ShardCounters* counters,
                  const SessionConfig* config, StoreWatchFactory* watches,
                  StateStore* state);
  ~SessionRegistry() override;
  // The shard stops: the watches close (their store connections too); no new
  // watch opens.
  void Stop();

  // A P-IMAP login succeeded: the session of (user, device), resumed or new.
  // A previous live connection of the device is told it was taken over.
  // Null when the device is new and its user already has
  // max_devices_per_user sessions (in memory or in durable state): nothing is
  // created, in memory or on disk.
  DeviceSession* Attach(const std::string& user, const std::string& device,
                        const StoreCredentials& credentials, DeviceLink* link,
                        bool* resumed);
  // A stock client of `user` parks: it gets the user's events until
  // RemoveParked, and the user's watch (--store-events notify) runs while it
  // does. `credentials` log the watch in when no master user is configured.
  void AddParked(const std::string& user, const StoreCredentials& credentials,
                 ParkedListener* listener);
  void RemoveParked(const std::string& user, ParkedListener* listener);
  size_t parked() const { return parked_count_; }

  // The node lost the right to serve its users (cluster fence, issue 16): every
  // connected device is told `reason` and let go, every session and watch is
  // dropped from memory, and nothing is written to durable state (another
  // node may own these users now; their state is its to change).
  // Returns how many sessions were dropped.
  size_t DropAll(absl::string_view reason);
  // As DropAll for one user, which moves to another cluster node (a node
  // joined and the hashing prefers it): its devices are told `reason`, its
  // sessions and watch dropped here. (Its stock clients' relayed sessions
  // stay: they hold no session state.)
  size_t DropUser(const std::string& user, absl::string_view reason);
  // Another cluster node served `user` since this one last did: what durable
  // state holds of the user's devices is older than what they have seen, and
  // is deleted (their next logins start new sessions) rather than resumed
  // from. Only when the user has no session in memory here (a fresh claim).
  // Returns how many devices were forgotten.
  size_t ForgetStaleUser(const std::string& user);
  // The connection went away; the session lives on and keeps journaling.
  void Detach(DeviceSession* session, DeviceLink* link);
  // LOGOUT: the session ends; the next login is a first login.
  void End(DeviceSession* session);
  // Writes the session's registration, filters, prefs and the checkpoint of its
  // selected folder (dirty as the session's is) to durable state.
  void Save(const DeviceSession& session);
  // Crash consistency (the reasoning is with the definition): the device's view
  // of its selected folder changes by what is written to it next (an EXISTS,
  // an EXPUNGE, a RESYNC; or the view was changed to be written later). Before
  // the bytes leave, the folder's durable checkpoint is marked dirty, once per
  // dirty period, so that a restore after a crash does not trust it.
  void MarkViewChanged(DeviceSession& session);
  // A command of the device acknowledges what was written before it: if that
  // is every view change written (view_writes_ackable == view_writes), `view`
  // is the device's view again, and a clean checkpoint of it ends the dirty
  // period.
  void CheckpointAcknowledged(DeviceSession& session);
  // The device read the folder events written to it (a command came after
  // them): they leave its list, in memory and in durable state at once, so a
  // crash does not replay them.
  void AckFolderEvents(DeviceSession& session);
  // The user's watch position in `folder` (0 when unknown). With the store's
  // pushes alone, a watch tells only of the folders it covers: 0 for the
  // user's own, whose events the pushes bring (a cover watch may be ahead of
  // them, and a checkpoint at its MODSEQ would claim what the view lacks).
  uint64_t WatchModseq(const std::string& user, absl::string_view folder) const;
  // The folder's UIDVALIDITY as the user's live watch knows it (0 when
  // unknown).
  uint32_t WatchUidvalidity(const std::string& user,
                            absl::string_view folder) const;
  const SessionConfig& config() const { return *config_; }
  // A reload replaced config() in place (on this shard's thread): the
  // watches get the credentials it now says (a rotated master password) for
  // their next login, and one the store rejected tries again with them.
  void OnConfigReloaded();
  // The shard's knowledge of the store's namespaces (store_namespaces.h); not
  // set: every folder counts as the user's own.
  void set_store_namespaces(const StoreNamespaces* namespaces) {
    namespaces_ = namespaces;
  }
  // Whether `folder` is the user's own, i.e. one the watch and the store's
  // pushes can cover (a shared or public folder is not).
  bool PersonalFolder(absl::string_view folder) const {
    return namespaces_ == nullptr || namespaces_->IsPersonal(folder);
  }
  // Tells `user`'s watch which shared and public folders the user's
  // connected devices have selected, when that changed: the watch then covers
  // them too (session_registry_cover.cc). With the store's pushes alone, a
  // watch runs only while there are such folders (a cover watch: one store
  // connection for the user, not one per device there). Called after a
  // device's command or login completes, and when a device leaves.
  void RefreshCoveredFolders(const std::string& user);
  // The credentials pooled store links of `user` are borrowed with: the master
  // user acting for `user` when one is configured, else the user's latest
  // accepted credentials (kept in memory while the user has sessions).
  StoreCredentials LinkCredentials(const std::string& user) const;
  // The store rejected the password LinkCredentials holds for `user` (no
  // master user): links are not tried with it, and the auth cache does not
  // admit it, until a login the store accepts brings one (Attach).
  bool StorePasswordRejected(const std::string& user) const;
  void OnStoreLoginRejected(absl::string_view user,
                            absl::string_view password) override;
  // How many batches of store events `user` has received: a link synchronised
  // at a smaller number may not show what the journal announced yet.
  uint64_t EventsReceived(absl::string_view user) const;
  // The store's capabilities as its links reported them at login (the same for
  // every link of a store), for devices that hold no link.
  void RememberCapabilities(const std::vector<std::string>& capabilities);
  const std::vector<std::string>& store_capabilities() const {
    return store_capabilities_;
  }

  void OnStoreEvents(absl::string_view user,
                     const std::vector<StoreEvent>& events) override;
  // Told to the user's connected devices that have `folder` selected.
  void OnFolderCovered(absl::string_view user,
                       absl::string_view folder) override;
  void OnWatchBaseline(absl::string_view user, absl::string_view folder,
                       uint32_t uidvalidity, uint64_t modseq) override;
  // The session's view of INBOX was taken (SELECT, RESYNC, rebuild) at
  // view_modseq: if that is older than where the user's watch began, what
  // changed in between was never journaled, and the folder is marked for a
  // rebuild (Journal::MarkIncomplete).
  void CheckWatchCoverage(DeviceSession& session);
  // An away device with an out-of-band channel counts for OldestLiveView
  // this long after it left (a watch starts within a store round trip of
  // the first login; older views would make long catch-ups for nothing).
  static constexpr int64_t kAwayCatchUpMs = 60000;
  ViewStart OldestLiveView(absl::string_view user, absl::string_view folder,
                           uint32_t uidvalidity) override;

  // Out-of-band wake-ups for devices away (not owned; null: none).
  // Its channels' news of addresses gone come back here
  // (ForgetOutbandAddress).
  void set_outband(OutbandDispatcher* outband);
  // Where XDELIVER's messages go (--smtp); null: XDELIVER is not offered.
  void set_submitter(MailSubmitter* submitter) { submitter_ = submitter; }
  MailSubmitter* submitter() const { return submitter_; }
  const OutbandDispatcher* outband() const { return outband_; }
  // The device's PIMAP_OUTBAND_ADDRESS is `address` no more (a push service
  // said the subscription is gone): cleared, durably, if it still is that.
  void ForgetOutbandAddress(const std::string& user, const std::string& device,
                            const std::string& address);

  size_t sessions() const;
  size_t watches() const { return watches_count_; }

  // ---- Read-only views for the operator (pimapctl; tools/pimapd/admin_*),
  // on the shard thread. Every in-memory session of `user` (empty: of every
  // user), in no particular order.
  template <typename F>
  void ForEachSession(absl::string_view user, F&& visit) const {
    auto one = [&](const UserSessions& u) {
      for (const auto& [device, session] : u.devices) visit(*session);
    };
    if (!user.empty()) {
      if (auto it = users_.find(user); it != users_.end()) one(it->second);
      return;
    }
    for (const auto& [name, u] : users_) one(u);
  }
  // The in-memory session of (user, device), or null.
  DeviceSession* FindSession(absl::string_view user, absl::string_view device) {
    auto it = users_.find(user);
    if (it == users_.end()) return nullptr;
    auto d = it->second.devices.find(device);
    return d == it->second.devices.end() ? nullptr : d->second.get();
  }
  // Users with sessions or parked stock clients here, and the latter's count.
  template <typename F>
  void ForEachUser(F&& visit) const {
    for (const auto& [name, u] : users_)
      visit(name, u.parked.size(), u.watch != nullptr);
  }

 private:
  struct UserSessions {
    absl::flat_hash_map<std::string, std::unique_ptr<DeviceSession>> devices;
    StoreWatch* watch = nullptr;
    StoreCredentials credentials;
    // The store rejected credentials.password (wiped then): see
    // StorePasswordRejected.
    bool password_rejected = false;
    // Parked stock clients (few per user; a vector, not a set).
    std::vector<ParkedListener*> parked;
    uint64_t events_received = 0;
    // What the watch was last told to cover (RefreshCoveredFolders).
    std::vector<std::string> covered;
    // Where the watch's events of INBOX begin (OnWatchBaseline; 0: not yet).
    uint32_t baseline_uidvalidity = 0;
    uint64_t baseline_modseq = 0;
    // With two event sources, the keys of recent events (bounded FIFO).
    absl::flat_hash_map<std::string, int64_t> recent;  // key -> when seen (ms)
    // Made on first use and dropped when empty: libstdc++'s deque allocates a
    // 512-byte block up front, and most users never see two sources.
    std::optional<std::deque<std::pair<std::string, int64_t>>> recent_order;
  };
  bool SeenRecently(UserSessions& u, const StoreEvent& event);
  // DropAll/DropUser: the user's connected links (to tell, after) and its
  // watch closed; how many sessions it had.
  size_t Unhook(UserSessions& u, std::vector<DeviceLink*>* links);
  // Drops the dedup memory once it is all out of the window (from Sweep).
  void ForgetOldRecent(UserSessions& u, int64_t now);
  static constexpr int64_t kRecentWindowMs = 5000;
  void Sweep();
  // A session from durable state, or only the device's settings (filters,
  // prefs) when its last session ended with LOGOUT (*resumable = false).
  std::unique_ptr<DeviceSession> Restore(const std::string& user,
                                         const std::string& device,
                                         bool* resumable);
  void DropUserIfIdle(const std::string& user);
  // Whether `user` (whose in-memory sessions are `u`) may open a session for
  // `device`, which has none in memory.
  bool RoomForDevice(const std::string& user, const std::string& device,
                     const UserSessions& u);
  void StartWatch(const std::string& user, UserSessions& u);
  // The folders outside the user's namespaces that `u`'s connected devices
  // have selected: sorted, at most StoreWatch::kMaxCoveredFolders.
  std::vector<std::string> CoveredFolders(const UserSessions& u) const;
  // With pushes alone: `user`'s cover watch closes after the linger time once
  // it covers nothing (from a timer: never inside the watch's own callback,
  // and a device that selects such a folder again soon finds it running).
  void ScheduleUncover(const std::string& user);
  void CancelUncover(const std::string& user);
  // What a cover watch (pushes alone) says is passed on only for the folders
  // it covers: the user's own folders are the pushes' (they would arrive
  // twice, and the watch's INBOX baseline would send views to a rebuild).
  class CoverOnlySink final : public StoreEventSink {
   public:
    explicit CoverOnlySink(SessionRegistry* registry) : registry_(registry) {}
    void OnStoreEvents(absl::string_view user,
                       const std::vector<StoreEvent>& events) override;
    void OnFolderCovered(absl::string_view user,
                         absl::string_view folder) override;
    void OnWatchBaseline(absl::string_view user, absl::string_view folder,
                         uint32_t uidvalidity, uint64_t modseq) override;
    ViewStart OldestLiveView(absl::string_view user, absl::string_view folder,
                             uint32_t uidvalidity) override;
    void OnStoreLoginRejected(absl::string_view user,
                              absl::string_view password) override;

   private:
    SessionRegistry* registry_;
  };
  // A wake-up waiting for the headline of its newest new message
  // (`--outband-payload full`, the events did not carry it).
  struct HeadlineWait {
    uint64_t session_id = 0;
    WakeUp wake_up;
    std::string folder;
    uint32_t uidvalidity = 0;
    uint32_t uid = 0;
  };
  // Events of `batch` for `session`, whose device is away: a wake-up for
  // those its filters admit, if it chose a channel; into `waits` instead if
  // it is to wait for a headline.
  void MaybeWakeUp(const DeviceSession& session,
                   const std::vector<StoreEvent>& batch,
                   std::vector<HeadlineWait>* waits);
  // Asks `user`'s watch once per message for the headline `waits` lack; each
  // wake-up goes when it comes or in vain (bounded by
  // OutbandConfig::headline_wait_ms), to a device still away.
  void LookUpHeadlines(const std::string& user,
                       std::vector<HeadlineWait> waits);
  StoreCredentials WatchCredentials(const std::string& user,
                                    const UserSessions& u) const;
  void UpdateGauges();

  TimerWheel* timers_;
  ShardCounters* counters_;
  bool stopping_ = false;
  const SessionConfig* config_;
  StoreWatchFactory* watches_;
  StateStore* state_;
  OutbandDispatcher* outband_ = nullptr;
  MailSubmitter* submitter_ = nullptr;
  const StoreNamespaces* namespaces_ = nullptr;
  // Node-based: a UserSessions is large (~200 bytes), and a flat table keeps
  // that much in every empty slot too (a table is at most 7/8 full, often
  // half), i.e. ~100 bytes per idle device at scale.
  absl::node_hash_map<std::string, UserSessions> users_;
  // Without durable state: the settings of devices whose session ended with
  // LOGOUT (filters and prefs belong to the device, not to one session).
  absl::flat_hash_map<std::string, std::pair<std::string, std::string>>
      settings_;
  size_t watches_count_ = 0;
  size_t parked_count_ = 0;
  std::vector<std::string> store_capabilities_;
  uint64_t next_session_id_;
  TimerWheel::TimerId sweep_timer_ = 0;
  // Users whose last parked client left, dropped from a timer (RemoveParked):
  // never inside the watch's own callback, and after the linger time.
  absl::flat_hash_map<std::string, TimerWheel::TimerId> drop_timers_;
  // Cover watches that cover nothing, closed from a timer (ScheduleUncover).
  absl::flat_hash_map<std::string, TimerWheel::TimerId> uncover_timers_;
  CoverOnlySink cover_sink_{this};
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_SESSION_REGISTRY_H_
