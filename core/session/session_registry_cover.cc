// The registry's part in covering shared and public folders (session_registry.h
// RefreshCoveredFolders): NOTIFY `personal` reports none of them, nor do the
// user's pushes (a push is the acting user's transaction), but the store
// reports one named with a `mailboxes` filter, other users' changes included.
// So the user's watch is told which of them the user's connected devices have
// selected, and a device idling in one needs no store link of its own once the
// watch has looked at it (DeviceDriver::covered_folder).
// With the store's pushes alone there is no watch for the user's own folders;
// one runs while such folders are selected, and only what it says of them is
// passed on (CoverOnlySink): one store connection for the user instead of one
// per device in such a folder.
#include <algorithm>
#include <string>
#include <vector>

#include "core/session/session_registry.h"

namespace pimap::session {

std::vector<std::string> SessionRegistry::CoveredFolders(
    const UserSessions& u) const {
  std::vector<std::string> folders;
  if (namespaces_ == nullptr) return folders;
  for (const auto& [device, s] : u.devices) {
    // A device away hears of changes at its resume (its view is rebuilt from
    // the store then): covering its folder would cost a NOTIFY name for
    // nothing.
    if (s->connection == nullptr || s->selected_folder.empty() ||
        PersonalFolder(s->selected_folder)) {
      continue;
    }
    folders.push_back(s->selected_folder);
  }
  std::sort(folders.begin(), folders.end());
  folders.erase(std::unique(folders.begin(), folders.end()), folders.end());
  // Dovecot's bound on one NOTIFY filter's names: the rest stay uncovered
  // (their devices keep their own links).
  if (folders.size() > StoreWatch::kMaxCoveredFolders) {
    folders.resize(StoreWatch::kMaxCoveredFolders);
  }
  return folders;
}

void SessionRegistry::RefreshCoveredFolders(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  UserSessions& u = it->second;
  std::vector<std::string> folders = CoveredFolders(u);
  if (folders == u.covered) return;
  u.covered = std::move(folders);
  if (!config_->watch) {
    if (u.covered.empty()) {
      if (u.watch != nullptr) ScheduleUncover(user);
      return;  // the watch keeps its names until it closes: nothing to gain
    }
    CancelUncover(user);
    if (u.watch == nullptr) {
      StartWatch(user, u);  // names them itself
      UpdateGauges();
      return;
    }
  }
  if (u.watch != nullptr) u.watch->CoverFolders(u.covered);
}

void SessionRegistry::OnFolderCovered(absl::string_view user,
                                      absl::string_view folder) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  // A device may leave (or end its session) inside the call: the connections
  // to tell are picked first, and each is looked up again before.
  std::vector<std::string> devices;
  for (const auto& [device, s] : it->second.devices) {
    if (s->connection != nullptr && s->selected_folder == folder) {
      devices.push_back(device);
    }
  }
  for (const std::string& device : devices) {
    auto user_it = users_.find(user);
    if (user_it == users_.end()) return;
    auto device_it = user_it->second.devices.find(device);
    if (device_it == user_it->second.devices.end()) continue;
    DeviceLink* connection = device_it->second->connection;
    if (connection != nullptr) connection->OnFolderCovered(folder);
  }
}

void SessionRegistry::ScheduleUncover(const std::string& user) {
  if (uncover_timers_.contains(user)) return;
  uncover_timers_[user] = timers_->Schedule(
      std::max<int64_t>(config_->parked_watch_linger_ms, 0), [this, user] {
        uncover_timers_.erase(user);
        auto it = users_.find(user);
        if (it == users_.end()) return;
        UserSessions& u = it->second;
        if (config_->watch || !u.covered.empty() || u.watch == nullptr) return;
        u.watch->Close();
        u.watch = nullptr;
        --watches_count_;
        UpdateGauges();
      });
}

void SessionRegistry::CancelUncover(const std::string& user) {
  auto it = uncover_timers_.find(user);
  if (it == uncover_timers_.end()) return;
  timers_->Cancel(it->second);
  uncover_timers_.erase(it);
}

void SessionRegistry::CoverOnlySink::OnStoreEvents(
    absl::string_view user, const std::vector<StoreEvent>& events) {
  std::vector<StoreEvent> covered;
  for (const StoreEvent& event : events) {
    if (!registry_->PersonalFolder(event.folder)) covered.push_back(event);
  }
  if (!covered.empty()) registry_->OnStoreEvents(user, covered);
}

void SessionRegistry::CoverOnlySink::OnFolderCovered(absl::string_view user,
                                                     absl::string_view folder) {
  registry_->OnFolderCovered(user, folder);
}

void SessionRegistry::CoverOnlySink::OnWatchBaseline(absl::string_view user,
                                                     absl::string_view folder,
                                                     uint32_t uidvalidity,
                                                     uint64_t modseq) {
  if (registry_->PersonalFolder(folder)) return;
  registry_->OnWatchBaseline(user, folder, uidvalidity, modseq);
}

ViewStart SessionRegistry::CoverOnlySink::OldestLiveView(
    absl::string_view user, absl::string_view folder, uint32_t uidvalidity) {
  // Of the user's own folders the watch's catch-up would be dropped anyway.
  if (registry_->PersonalFolder(folder)) return {};
  return registry_->OldestLiveView(user, folder, uidvalidity);
}

void SessionRegistry::CoverOnlySink::OnStoreLoginRejected(
    absl::string_view user, absl::string_view password) {
  registry_->OnStoreLoginRejected(user, password);
}

}  // namespace pimap::session
