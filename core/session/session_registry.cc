// Session registry, store-watch lifetime and event fan-out for one shard.
#include "core/session/session_registry.h"

#include <algorithm>
#include <iterator>
#include <random>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/base/log.h"
#include "core/imap/writer.h"

namespace pimap::session {

namespace {
constexpr int64_t kSweepMs = 60 * 1000;

// The device's settings text (DeviceRecord::filters): its filters, then its
// virtual folders and (for a live session) the one selected, as "v" lines
// DeviceFilters::Parse hands back.
std::string SettingsText(const DeviceSession& s, bool with_selection) {
  std::string out = s.filters.Serialize();
  out += s.vfolders.Serialize();
  if (with_selection && !s.selected_vfolder.empty() &&
      !s.selected_folder.empty()) {
    out.append("v SELECTED-VFOLDER ");
    internal::AppendMailbox(&out, s.selected_vfolder);
    out.append("\r\n");
  }
  return out;
}

// Restores what SettingsText wrote; a part that does not parse is left at its
// default (as the filters always were).
void ApplySettings(absl::string_view text, const SessionConfig& config,
                   DeviceSession* s) {
  std::vector<imap::Command> others;
  if (auto f = DeviceFilters::Parse(text, config.default_notification, &others);
      f.ok()) {
    s->filters = std::move(*f);
  }
  if (auto v = VirtualFolders::Parse(others); v.ok()) {
    s->vfolders = std::move(*v);
  }
  for (const imap::Command& c : others) {
    if (c.name == "SELECTED-VFOLDER" && c.args.size() == 1 &&
        s->vfolders.Find(c.args[0].value) != nullptr) {
      s->selected_vfolder = c.args[0].value;
    }
  }
}
}  // namespace

SessionRegistry::SessionRegistry(TimerWheel* timers, ShardCounters* counters,
                                 const SessionConfig* config,
                                 StoreWatchFactory* watches, StateStore* state)
    : timers_(timers),
      counters_(counters),
      config_(config),
      watches_(watches),
      state_(state) {
  // Session ids need not be secret (the login authenticates), only distinct.
  std::random_device rd;
  next_session_id_ = (uint64_t{rd()} << 20) ^ rd();
  sweep_timer_ = timers_->Schedule(kSweepMs, [this] { Sweep(); });
}

void SessionRegistry::Stop() {
  // At shutdown the watches go (their store connections too); the sessions'
  // durable state has been written at each change and at each disconnect.
  stopping_ = true;
  for (auto& [user, sessions] : users_) {
    if (sessions.watch != nullptr) {
      sessions.watch->Close();
      sessions.watch = nullptr;
      --watches_count_;
    }
  }
  UpdateGauges();
}

size_t SessionRegistry::DropAll(absl::string_view reason) {
  // Out of the table first: a goodbye may call back into the registry (a
  // hibernated connection wakes to say it), and must find no user there. The
  // sessions live until every link was told (a link drops its pointer to its
  // session when told), and go when this returns.
  auto doomed = std::move(users_);
  users_.clear();
  for (const auto& [user, timer] : drop_timers_) timers_->Cancel(timer);
  for (const auto& [user, timer] : uncover_timers_) timers_->Cancel(timer);
  drop_timers_.clear();
  uncover_timers_.clear();
  // The parked clients' connections are closed by their server.
  parked_count_ = 0;
  size_t dropped = 0;
  std::vector<DeviceLink*> links;
  for (auto& [user, u] : doomed) dropped += Unhook(u, &links);
  for (DeviceLink* link : links) link->OnTakenOver(reason);
  if (outband_ != nullptr) outband_->DropAll();
  UpdateGauges();
  return dropped;
}

size_t SessionRegistry::DropUser(const std::string& user,
                                 absl::string_view reason) {
  auto node = users_.extract(user);  // out of the table first, as in DropAll
  if (node.empty()) return 0;
  for (auto* timers : {&drop_timers_, &uncover_timers_}) {
    if (auto it = timers->find(user); it != timers->end()) {
      timers_->Cancel(it->second);
      timers->erase(it);
    }
  }
  parked_count_ -= node.mapped().parked.size();
  std::vector<DeviceLink*> links;
  const size_t dropped = Unhook(node.mapped(), &links);
  for (DeviceLink* link : links) link->OnTakenOver(reason);
  UpdateGauges();
  return dropped;
}

size_t SessionRegistry::Unhook(UserSessions& u,
                               std::vector<DeviceLink*>* links) {
  size_t sessions = 0;
  for (auto& [device, session] : u.devices) {
    ++sessions;
    if (session->connection != nullptr) {
      // Unhooked first: the link's goodbye must not reach Detach (which
      // would write the session's state).
      links->push_back(session->connection);
      session->connection = nullptr;
    }
  }
  if (u.watch != nullptr) {
    u.watch->Close();
    u.watch = nullptr;
    --watches_count_;
  }
  return sessions;
}

size_t SessionRegistry::ForgetStaleUser(const std::string& user) {
  if (state_ == nullptr || users_.contains(user)) return 0;
  absl::StatusOr<std::vector<DeviceRecord>> devices = state_->ListDevices(user);
  if (!devices.ok()) return 0;
  size_t forgotten = 0;
  for (const DeviceRecord& record : *devices) {
    if (state_->DeleteDevice(user, record.device).ok()) ++forgotten;
  }
  return forgotten;
}

SessionRegistry::~SessionRegistry() {
  if (sweep_timer_ != 0) timers_->Cancel(sweep_timer_);
  for (const auto& [user, timer] : drop_timers_) timers_->Cancel(timer);
  for (const auto& [user, timer] : uncover_timers_) timers_->Cancel(timer);
  for (auto& [user, sessions] : users_) {
    if (sessions.watch != nullptr) sessions.watch->Close();
  }
}

size_t SessionRegistry::sessions() const {
  size_t n = 0;
  for (const auto& [user, s] : users_) n += s.devices.size();
  return n;
}

DeviceSession* SessionRegistry::Attach(const std::string& user,
                                       const std::string& device,
                                       const StoreCredentials& credentials,
                                       DeviceLink* link, bool* resumed) {
  UserSessions& u = users_[user];
  if (!u.devices.contains(device) && !RoomForDevice(user, device, u)) {
    DropUserIfIdle(user);  // it may have been made just now
    return nullptr;
  }
  // The store has just accepted these credentials (a store login, or the
  // auth cache, which does not admit a rejected password): the ones kept for
  // links and the watch follow a password change at once.
  if (config_->master_user.empty()) {
    u.credentials = credentials;
    u.password_rejected = false;
  } else {
    u.credentials.origin = credentials.origin;  // for LinkCredentials
  }
  if (u.watch != nullptr) u.watch->UpdateCredentials(WatchCredentials(user, u));
  auto it = u.devices.find(device);
  *resumed = it != u.devices.end();
  DeviceSession* session;
  if (*resumed) {
    session = it->second.get();
    if (session->connection != nullptr && session->connection != link) {
      DeviceLink* old = session->connection;
      session->connection = nullptr;
      old->OnTakenOver(kTakenOverText);
      // What was written to the old connection may never have arrived: the same
      // as a disconnect (replay idempotent events, RESYNC after an EXPUNGE).
      session->journal.OnDisconnect();
    }
  } else {
    bool resumable = false;
    std::unique_ptr<DeviceSession> created = Restore(user, device, &resumable);
    *resumed = created != nullptr && resumable;
    if (created == nullptr) {
      created = std::make_unique<DeviceSession>(user, device,
                                                ++next_session_id_, *config_);
      auto saved = settings_.find(absl::StrCat(user, "\n", device));
      if (saved != settings_.end()) {
        ApplySettings(saved->second.first, *config_, created.get());
        if (auto p = DevicePrefs::Parse(saved->second.second); p.ok()) {
          if (*p != DevicePrefs()) created->mutable_prefs() = std::move(*p);
        }
        settings_.erase(saved);
      }
    }
    session = created.get();
    u.devices.emplace(device, std::move(created));
    Save(*session);
  }
  session->connection = link;
  session->last_activity_ms = MonotonicNowMs();
  if (outband_ != nullptr) outband_->OnDeviceBack(session->session_id);
  StartWatch(user, u);
  UpdateGauges();
  return session;
}

bool SessionRegistry::RoomForDevice(const std::string& user,
                                    const std::string& device,
                                    const UserSessions& u) {
  const size_t max = config_->max_devices_per_user;
  if (max == 0) return true;
  if (u.devices.size() >= max) return false;
  if (state_ == nullptr) return true;
  // After a restart most sessions are on disk only (they come back at their
  // device's next login): count those with a live session too. Settings left
  // by a LOGOUT do not count, as the device has no session any more.
  absl::StatusOr<std::vector<DeviceRecord>> records = state_->ListDevices(user);
  if (!records.ok()) {
    PIMAP_LOG(WARNING) << "durable state: " << records.status().message();
    return true;  // the in-memory count above still bounds the shard
  }
  const int64_t cutoff =
      absl::ToUnixSeconds(absl::Now()) - config_->session_lifetime_ms / 1000;
  size_t live = u.devices.size();
  for (const DeviceRecord& r : *records) {
    if (r.session_id.empty() || r.last_activity_unix < cutoff ||
        u.devices.contains(r.device)) {
      continue;
    }
    if (r.device == device) return true;  // its own session, restored
    ++live;
  }
  return live < max;
}

void SessionRegistry::OnStoreLoginRejected(absl::string_view user,
                                           absl::string_view password) {
  if (!config_->master_user.empty()) return;  // the master's: not the user's
  auto it = users_.find(user);
  // Only if still the kept one: a login may have replaced it meanwhile.
  if (it == users_.end() || password.empty() ||
      it->second.credentials.password != password) {
    return;
  }
  std::string& kept = it->second.credentials.password;
  std::fill(kept.begin(), kept.end(), '\0');
  kept.clear();
  it->second.password_rejected = true;
  PIMAP_LOG(INFO).User(user).Event("store.password_rejected")
      << "the store rejected the kept password: not used again until the "
         "user logs in";
}

bool SessionRegistry::StorePasswordRejected(const std::string& user) const {
  auto it = users_.find(user);
  return it != users_.end() && it->second.password_rejected;
}

void SessionRegistry::AddParked(const std::string& user,
                                const StoreCredentials& credentials,
                                ParkedListener* listener) {
  UserSessions& u = users_[user];
  // Not over a rejected password: a parked client's are from its own,
  // possibly older, login.
  if (config_->master_user.empty() && u.credentials.password.empty() &&
      !u.password_rejected) {
    u.credentials = credentials;
  }
  if (absl::c_linear_search(u.parked, listener)) return;
  u.parked.push_back(listener);
  ++parked_count_;
  StartWatch(user, u);
  counters_->watch_connections.store(static_cast<int64_t>(watches_count_),
                                     std::memory_order_relaxed);
}

void SessionRegistry::RemoveParked(const std::string& user,
                                   ParkedListener* listener) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  std::vector<ParkedListener*>& parked = it->second.parked;
  auto at = absl::c_find(parked, listener);
  if (at == parked.end()) return;
  parked.erase(at);
  --parked_count_;
  if (!parked.empty() || !it->second.devices.empty()) return;
  // Not now: this may run inside the user's watch's own callback (an event
  // that ends a parked session), and dropping the user closes that watch.
  // After the linger time, so that the next IDLE parks at once.
  if (drop_timers_.contains(user)) return;
  drop_timers_[user] = timers_->Schedule(
      std::max<int64_t>(config_->parked_watch_linger_ms, 0), [this, user] {
        drop_timers_.erase(user);
        DropUserIfIdle(user);
        counters_->watch_connections.store(static_cast<int64_t>(watches_count_),
                                           std::memory_order_relaxed);
      });
}

void SessionRegistry::Detach(DeviceSession* session, DeviceLink* link) {
  if (session->connection != link) return;  // already taken over
  session->connection = nullptr;
  session->last_activity_ms = MonotonicNowMs();
  session->journal.OnDisconnect();
  session->folder_events_written = 0;  // not acknowledged: replayed
  Save(*session);
  const DevicePrefs& prefs = session->prefs();
  if (outband_ != nullptr && prefs.outband_channel != "NONE") {
    outband_->DeviceAway(prefs.outband_channel, prefs.outband_address);
  }
  RefreshCoveredFolders(session->user);
}

void SessionRegistry::End(DeviceSession* session) {
  const std::string user = session->user;
  auto it = users_.find(user);
  if (it == users_.end()) return;
  // The session ends (journal, view, checkpoints go); the device's filters and
  // prefs stay for its next session.
  if (state_ != nullptr) {
    DeviceRecord record;
    record.user = session->user;
    record.device = session->device;
    record.filters = SettingsText(*session, /*with_selection=*/false);
    record.prefs = session->prefs().Serialize();
    record.last_activity_unix = absl::ToUnixSeconds(absl::Now());
    // One transaction: a crash between the two would lose the settings.
    absl::Status s = state_->BeginBatch();
    if (s.ok()) {
      s = state_->DeleteDevice(session->user, session->device);
      if (s.ok()) s = state_->PutDevice(record);  // session_id "": not live
      absl::Status committed = state_->CommitBatch();
      if (s.ok()) s = committed;
    }
    if (!s.ok()) PIMAP_LOG(WARNING) << "durable state: " << s.message();
  } else {
    // Bounded: without durable state, settings of logged-out devices are a
    // cache.
    if (settings_.size() >= 100000) settings_.clear();
    settings_[absl::StrCat(session->user, "\n", session->device)] = {
        SettingsText(*session, /*with_selection=*/false),
        session->prefs().Serialize()};
  }
  if (outband_ != nullptr) outband_->OnDeviceBack(session->session_id);
  it->second.devices.erase(session->device);
  RefreshCoveredFolders(user);
  DropUserIfIdle(user);
  UpdateGauges();
}

void SessionRegistry::DropUserIfIdle(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end() || !it->second.devices.empty() ||
      !it->second.parked.empty()) {
    return;
  }
  if (it->second.watch != nullptr) {
    it->second.watch->Close();
    --watches_count_;
  }
  users_.erase(it);
}

StoreCredentials SessionRegistry::LinkCredentials(
    const std::string& user) const {
  auto it = users_.find(user);
  if (!config_->master_user.empty()) {
    StoreCredentials master{config_->master_user, config_->master_password,
                            user};
    if (it != users_.end()) master.origin = it->second.credentials.origin;
    return master;
  }
  return it == users_.end() ? StoreCredentials{user, "", ""}
                            : it->second.credentials;
}

uint64_t SessionRegistry::EventsReceived(absl::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? 0 : it->second.events_received;
}

void SessionRegistry::RememberCapabilities(
    const std::vector<std::string>& capabilities) {
  if (!capabilities.empty() && capabilities != store_capabilities_) {
    store_capabilities_ = capabilities;
  }
}

namespace {
// IMAP mailbox names are case-sensitive, except INBOX.
bool SameFolder(absl::string_view a, absl::string_view b) {
  return a == b || (absl::EqualsIgnoreCase(a, "INBOX") &&
                    absl::EqualsIgnoreCase(b, "INBOX"));
}
}  // namespace

void SessionRegistry::OnStoreEvents(absl::string_view user,
                                    const std::vector<StoreEvent>& events) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  ++it->second.events_received;
  std::vector<StoreEvent> fresh;
  const std::vector<StoreEvent>* batch = &events;
  // Two sources report the same change: the watch and the store's push. With
  // both configured, for every folder; with a cover watch (pushes alone), only
  // for the shared or public folders it covers (CoverOnlySink): a key kept
  // for any other would wait in vain for its second copy and swallow a real
  // repeat (set, clear, set) in the window.
  const bool both = config_->watch && config_->pushes;
  if (both || (config_->pushes && it->second.watch != nullptr)) {
    const std::vector<std::string>& covered = it->second.covered;
    for (const StoreEvent& event : events) {
      const bool two_sources =
          both || absl::c_binary_search(covered, event.folder);
      if (!two_sources || !SeenRecently(it->second, event)) {
        fresh.push_back(event);
      }
    }
    batch = &fresh;
  }
  if (!it->second.parked.empty() && !batch->empty()) {
    // A listener may leave (unpark, BYE) inside the call: iterate a copy,
    // and skip those gone meanwhile.
    const std::vector<ParkedListener*> parked = it->second.parked;
    for (ParkedListener* listener : parked) {
      auto again = users_.find(user);
      if (again == users_.end() ||
          !absl::c_linear_search(again->second.parked, listener)) {
        continue;
      }
      listener->OnParkedEvents(*batch);
    }
    it = users_.find(user);
    if (it == users_.end()) return;
  }
  // The folder events this batch keeps for absent devices: one commit.
  bool batch_open = false;
  // Connections told of their new events only once that batch is committed:
  // pushing renders them, which may write a dirty mark (MarkViewChanged) that
  // must be durable before the bytes leave, i.e. outside the batch.
  std::vector<std::string> pending;
  std::vector<HeadlineWait> headline_waits;
  for (auto& [device, session] : it->second.devices) {
    bool journaled = false;
    for (const StoreEvent& event : *batch) {
      switch (event.kind) {
        case EventKind::kFolderCreated:
        case EventKind::kFolderDeleted:
        case EventKind::kFolderRenamed:
          // Pushed NOTIFY-style to a connected device; kept for an absent one
          // and replayed when it resumes.
          if (session->connection != nullptr) {
            session->connection->OnFolderEvent(event);
          } else if (!event.raw.empty()) {
            std::vector<std::string>& kept = session->folder_events;
            if (kept.size() >= DeviceSession::kMaxFolderEvents) {
              // Past the bound the oldest go: the device still sees the final
              // folder list when it lists it.
              kept.erase(kept.begin());
            }
            kept.push_back(event.raw);
            // Durable too, so that a restart of pimapd does not lose it.
            if (state_ != nullptr) {
              if (!batch_open) batch_open = state_->BeginBatch().ok();
              absl::Status s = state_->AppendFolderEvent(
                  session->user, session->device, event.raw,
                  DeviceSession::kMaxFolderEvents);
              if (!s.ok())
                PIMAP_LOG(WARNING) << "durable state: " << s.message();
            }
          }
          break;
        default:
          // Only the selected folder's events are ever rendered to a device
          // (a SELECT takes a snapshot of the new one): journaling the others
          // would only fill the journal, and a busy folder could overflow the
          // selected one's.
          if (!SameFolder(event.folder, session->selected_folder) &&
              (session->connection == nullptr ||
               !session->connection->Selecting(event.folder))) {
            break;
          }
          session->journal.Append(event);
          journaled = true;
      }
    }
    if (journaled && session->connection != nullptr) {
      pending.push_back(device);
    } else if (session->connection == nullptr && outband_ != nullptr) {
      MaybeWakeUp(*session, *batch, &headline_waits);
    }
  }
  if (!headline_waits.empty()) {
    LookUpHeadlines(std::string(user), std::move(headline_waits));
  }
  if (batch_open) {
    if (absl::Status s = state_->CommitBatch(); !s.ok()) {
      PIMAP_LOG(WARNING) << "durable state: " << s.message();
    }
  }
  for (const std::string& device : pending) {
    // A push may end sessions (a write error closing a connection): look each
    // one up again.
    auto user_it = users_.find(user);
    if (user_it == users_.end()) return;
    auto device_it = user_it->second.devices.find(device);
    if (device_it == user_it->second.devices.end()) continue;
    DeviceLink* connection = device_it->second->connection;
    if (connection != nullptr) connection->OnEventsPending();
  }
}

std::unique_ptr<DeviceSession> SessionRegistry::Restore(
    const std::string& user, const std::string& device, bool* resumable) {
  *resumable = false;
  if (state_ == nullptr) return nullptr;
  absl::StatusOr<std::optional<DeviceRecord>> record =
      state_->GetDevice(user, device);
  if (!record.ok()) {
    PIMAP_LOG(WARNING) << "durable state: " << record.status().message();
    return nullptr;
  }
  if (!record->has_value()) return nullptr;
  const DeviceRecord& r = **record;
  const int64_t now_unix = absl::ToUnixSeconds(absl::Now());
  if (now_unix - r.last_activity_unix > config_->session_lifetime_ms / 1000) {
    state_->DeleteDevice(user, device).IgnoreError();
    return nullptr;  // expired while we were down
  }
  uint64_t id = 0;
  if (r.session_id.empty() || !absl::SimpleAtoi(r.session_id, &id))
    id = ++next_session_id_;
  auto session = std::make_unique<DeviceSession>(user, device, id, *config_);
  ApplySettings(r.filters, *config_, session.get());
  if (auto prefs = DevicePrefs::Parse(r.prefs); prefs.ok()) {
    if (*prefs != DevicePrefs()) session->mutable_prefs() = std::move(*prefs);
  }
  if (r.session_id.empty()) return session;  // settings only: a first login
  *resumable = true;
  session->restored = true;
  // Folder events the device has not acknowledged: replayed at this resume.
  if (auto events = state_->ListFolderEvents(user, device); events.ok()) {
    const size_t skip = events->size() > DeviceSession::kMaxFolderEvents
                            ? events->size() - DeviceSession::kMaxFolderEvents
                            : 0;
    session->folder_events.assign(
        std::make_move_iterator(events->begin() + static_cast<ptrdiff_t>(skip)),
        std::make_move_iterator(events->end()));
  } else {
    PIMAP_LOG(WARNING) << "durable state: " << events.status().message();
  }
  if (!r.selected_folder.empty()) {
    auto checkpoint = state_->GetCheckpoint(user, device, r.selected_folder);
    if (checkpoint.ok() && checkpoint->has_value()) {
      auto view = UidView::Parse((*checkpoint)->view);
      if (view.ok()) {
        session->selected_folder = r.selected_folder;
        session->read_only = r.read_only;
        session->view = std::move(*view);
        session->view_uidvalidity = (*checkpoint)->uidvalidity;
        session->view_modseq = (*checkpoint)->acked_modseq;
        if ((*checkpoint)->dirty) {
          // The device may hold changes this view does not show
          // (MarkViewChanged): the resume gives it a RESYNC, as after an
          // unacknowledged EXPUNGE, not a rebuild from this view.
          session->checkpoint_dirty = true;
          session->journal.MarkUncertain(r.selected_folder);
        }
      }
    }
  }
  PIMAP_LOG(INFO).User(user).Device(device).Event("session.restore")
      << "session restored from durable state";
  return session;
}

void SessionRegistry::AckFolderEvents(DeviceSession& s) {
  if (s.folder_events_written == 0) return;
  s.folder_events.erase(s.folder_events.begin(),
                        s.folder_events.begin() +
                            static_cast<ptrdiff_t>(s.folder_events_written));
  s.folder_events_written = 0;
  if (state_ == nullptr) return;
  absl::Status status =
      state_->AckFolderEvents(s.user, s.device, s.folder_events.size());
  if (!status.ok()) PIMAP_LOG(WARNING) << "durable state: " << status.message();
}

void SessionRegistry::Save(const DeviceSession& s) {
  if (state_ == nullptr) return;
  DeviceRecord record;
  record.user = s.user;
  record.device = s.device;
  record.session_id = absl::StrCat(s.session_id);
  record.filters = SettingsText(s, /*with_selection=*/true);
  record.prefs = s.prefs().Serialize();
  record.selected_folder = s.selected_folder;
  record.read_only = s.read_only;
  record.last_activity_unix = absl::ToUnixSeconds(absl::Now());
  absl::Status status = state_->BeginBatch();
  if (status.ok()) status = state_->PutDevice(record);
  if (status.ok() && !s.selected_folder.empty()) {
    FolderCheckpoint checkpoint;
    checkpoint.folder = s.selected_folder;
    checkpoint.uidvalidity = s.view_uidvalidity;
    checkpoint.acked_modseq = s.view_modseq;
    checkpoint.view = s.view.Serialize();
    checkpoint.dirty = s.checkpoint_dirty;
    status = state_->PutCheckpoint(s.user, s.device, checkpoint);
  }
  // Folder events leave the in-memory list (oldest first) only when the
  // device acknowledges them; what is left is the durable list's tail.
  if (status.ok()) {
    status = state_->AckFolderEvents(s.user, s.device, s.folder_events.size());
  }
  absl::Status commit = state_->CommitBatch();
  if (status.ok()) status = commit;
  if (!status.ok()) PIMAP_LOG(WARNING) << "durable state: " << status.message();
}

// Crash consistency. A checkpoint (view, MODSEQ m) lets a restored session be
// rebuilt exactly: the store says what changed since m (VANISHED, FLAGS, UIDs
// above the view's top) and the gateway renders it against the view, which
// must therefore be exactly what the device holds. After a crash (SIGKILL) the
// journal is gone, and with it what was written to the device since the
// checkpoint. What may the device have applied that the checkpoint lacks?
//  - FETCH FLAGS: no MSN moves, and the rebuild sends every flag changed since
//    m again: idempotent, no mark.
//  - EXPUNGE: shifts MSNs; whether the device applied it is unknown, and the
//    rebuild renders it again against the checkpoint's view ("* 2 EXPUNGE"
//    twice: the device then lacks another message than the store does).
//  - EXISTS: idempotent only while its UID lives. A UID announced after the
//    checkpoint and expunged before the resume is not in the checkpoint's
//    view, so the rebuild never expunges it, and the device keeps a message
//    the store lost under an MSN the store gives to the next one.
//  - a rebuild's or RESYNC's output replaces or edits the view likewise.
// So every write that changes the device's MSN-to-UID map marks the folder's
// checkpoint dirty first, and a restored dirty folder is uncertain: its resume
// is a RESYNC (Restore). The mark is one small write of its own (outside any
// batch: a batch would commit after the bytes left, so OnStoreEvents commits
// its own before it notifies connections), committed to the WAL when it
// returns: enough for a pimapd crash, not for a power loss of the host
// (sqlite_state_store.h). It is written once per dirty period, not per event:
// the period ends when the device's input has acknowledged every view change
// written to it (the journal's acknowledgement rule, architecture.md §4;
// view_writes counts them, OnInputArrived takes the count the next command
// acknowledges) and a clean checkpoint of the view, now the device's again,
// replaces the dirty one (CheckpointAcknowledged).
void SessionRegistry::MarkViewChanged(DeviceSession& s) {
  ++s.view_writes;
  if (s.checkpoint_dirty || state_ == nullptr || s.selected_folder.empty()) {
    return;
  }
  absl::Status status =
      state_->MarkCheckpointDirty(s.user, s.device, s.selected_folder);
  if (!status.ok()) {
    // The bytes go anyway (holding the device's news back for a disk is no
    // better); the next change tries again.
    PIMAP_LOG(WARNING) << "durable state: " << status.message();
    return;
  }
  s.checkpoint_dirty = true;
}

void SessionRegistry::CheckpointAcknowledged(DeviceSession& s) {
  if (!s.checkpoint_dirty || s.view_writes_ackable != s.view_writes) return;
  s.checkpoint_dirty = false;
  if (state_ == nullptr || s.selected_folder.empty()) return;
  FolderCheckpoint checkpoint;
  checkpoint.folder = s.selected_folder;
  checkpoint.uidvalidity = s.view_uidvalidity;
  checkpoint.acked_modseq = s.view_modseq;
  checkpoint.view = s.view.Serialize();
  absl::Status status = state_->PutCheckpoint(s.user, s.device, checkpoint);
  if (!status.ok()) {
    s.checkpoint_dirty = true;  // still dirty on disk: tried again next time
    PIMAP_LOG(WARNING) << "durable state: " << status.message();
  }
}

void SessionRegistry::Sweep() {
  sweep_timer_ = timers_->Schedule(kSweepMs, [this] { Sweep(); });
  const int64_t now = MonotonicNowMs();
  std::vector<std::string> touched;
  for (auto& [user, sessions] : users_) {
    ForgetOldRecent(sessions, now);
    for (auto dit = sessions.devices.begin(); dit != sessions.devices.end();) {
      DeviceSession& s = *dit->second;
      if (s.connection == nullptr &&
          now - s.last_activity_ms > config_->session_lifetime_ms) {
        PIMAP_LOG(INFO).User(s.user).Device(s.device).Event("session.expire")
            << "session expired";
        if (outband_ != nullptr) outband_->OnDeviceBack(s.session_id);
        sessions.devices.erase(dit++);
      } else {
        ++dit;
      }
    }
    if (sessions.devices.empty()) touched.push_back(user);
  }
  for (const std::string& user : touched) DropUserIfIdle(user);
  if (state_ != nullptr) {
    auto expired = state_->ExpireBefore(absl::ToUnixSeconds(absl::Now()) -
                                        config_->session_lifetime_ms / 1000);
    if (!expired.ok())
      PIMAP_LOG(WARNING) << "durable state: " << expired.status().message();
  }
  UpdateGauges();
}

void SessionRegistry::UpdateGauges() {
  ShardCounters& c = *counters_;
  c.pimap_sessions.store(static_cast<int64_t>(sessions()),
                         std::memory_order_relaxed);
  c.watch_connections.store(static_cast<int64_t>(watches_count_),
                            std::memory_order_relaxed);
}

}  // namespace pimap::session
