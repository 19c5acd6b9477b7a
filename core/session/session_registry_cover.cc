// The registry's part in covering shared and public folders (session_registry.h
// RefreshCoveredFolders): NOTIFY `personal` reports none of them, but the
// store reports one named with a `mailboxes` filter, other users' changes
// included. So the user's watch is told which of them the user's connected
// devices have selected, and a device idling in one needs no store link of
// its own once the watch has looked at it (DeviceDriver::covered_folder).
// Only with the watch alone (--store-events notify): the user's pushes do not
// report other users' changes, and with both sources such a folder keeps
// its device's link as before.
#include <algorithm>
#include <string>
#include <vector>

#include "core/session/session_registry.h"

namespace pimap::session {

std::vector<std::string> SessionRegistry::CoveredFolders(
    const UserSessions& u) const {
  std::vector<std::string> folders;
  if (!config_->watch || config_->pushes || namespaces_ == nullptr) {
    return folders;
  }
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
  if (u.watch != nullptr) u.watch->CoverFolders(u.covered);
}

}  // namespace pimap::session
