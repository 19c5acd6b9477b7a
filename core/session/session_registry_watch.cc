// The registry's side of each user's store watch (session_registry.h): starting
// it, where its events begin (the baseline race with a device's first view),
// what it knows of a folder, and the de-duplication of what the watch and the
// store's pushes both report.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/log.h"
#include "core/session/session_registry.h"

namespace pimap::session {

StoreCredentials SessionRegistry::WatchCredentials(
    const std::string& user, const UserSessions& u) const {
  StoreCredentials watch_credentials = u.credentials;
  if (!config_->master_user.empty()) {
    watch_credentials = {config_->master_user, config_->master_password, user};
  }
  // The watch is the gateway's own connection, not a device's.
  watch_credentials.origin = {};
  return watch_credentials;
}

void SessionRegistry::OnConfigReloaded() {
  // Without a master user a watch logs in as the user, with the password of
  // the user's last login: nothing a reload changes.
  if (config_->master_user.empty()) return;
  for (auto& [user, u] : users_) {
    if (u.watch != nullptr)
      u.watch->UpdateCredentials(WatchCredentials(user, u));
  }
}

void SessionRegistry::StartWatch(const std::string& user, UserSessions& u) {
  if (u.watch != nullptr || stopping_) return;
  // With pushes alone, only to cover shared and public folders.
  if (!config_->watch && u.covered.empty()) return;
  u.baseline_uidvalidity = 0;  // the new watch reports its own
  u.baseline_modseq = 0;
  StoreEventSink* sink = this;
  WatchScope scope = WatchScope::kAll;
  if (!config_->watch) {
    sink = &cover_sink_;
    scope = WatchScope::kCoveredOnly;
  }
  u.watch = watches_->Watch(user, WatchCredentials(user, u), sink, scope);
  ++watches_count_;
  if (!u.covered.empty()) u.watch->CoverFolders(u.covered);
}

// A view taken before the user's watch began (a device's first SELECT racing
// the watch's first look, and every resume right after a restart of pimapd)
// would otherwise miss for good what changed between the two: neither the view
// nor the journal has it. A live device then gets a RESYNC at its next command
// (as after an overflow), an absent one an exact rebuild at its resume.
void SessionRegistry::OnWatchBaseline(absl::string_view user,
                                      absl::string_view folder,
                                      uint32_t uidvalidity, uint64_t modseq) {
  auto it = users_.find(user);
  if (it == users_.end() || !absl::EqualsIgnoreCase(folder, "INBOX")) return;
  it->second.baseline_uidvalidity = uidvalidity;
  it->second.baseline_modseq = modseq;
  for (auto& [device, session] : it->second.devices) {
    CheckWatchCoverage(*session);
  }
}

// The common case of the race above, mended without a RESYNC: a user's first
// device SELECTs INBOX, its IDLE is answered by the gateway, mail comes, and
// only then does the new watch look. Connected devices, and those that went
// away moments ago with an out-of-band channel: mail in that window must wake
// them (it is news to nobody else). Other absent ones are rebuilt at their
// resume anyway, and their views may be far older.
ViewStart SessionRegistry::OldestLiveView(absl::string_view user,
                                          absl::string_view folder,
                                          uint32_t uidvalidity) {
  ViewStart oldest;
  auto it = users_.find(user);
  if (it == users_.end()) return oldest;
  const int64_t now_ms = MonotonicNowMs();
  for (const auto& [device, s] : it->second.devices) {
    const bool woken_away = s->connection == nullptr &&
                            s->prefs().outband_channel != "NONE" &&
                            !s->prefs().outband_address.empty() &&
                            now_ms - s->last_activity_ms <= kAwayCatchUpMs;
    if ((s->connection == nullptr && !woken_away) || s->restored ||
        s->view_modseq == 0 || s->view_uidvalidity == 0 ||
        (uidvalidity != 0 && s->view_uidvalidity != uidvalidity) ||
        !absl::EqualsIgnoreCase(s->selected_folder, folder)) {
      continue;
    }
    if (uidvalidity == 0) uidvalidity = s->view_uidvalidity;  // the first's
    oldest.uidvalidity = uidvalidity;
    // The lowest MODSEQ and the lowest top: what any of them may lack.
    const uint32_t top = s->view.max_uid();
    const bool first = oldest.modseq == 0;
    oldest.modseq =
        first ? s->view_modseq : std::min(oldest.modseq, s->view_modseq);
    oldest.top_uid = first ? top : std::min(oldest.top_uid, top);
  }
  return oldest;
}

void SessionRegistry::CheckWatchCoverage(DeviceSession& s) {
  if (!absl::EqualsIgnoreCase(s.selected_folder, "INBOX") ||
      s.view_modseq == 0) {
    return;
  }
  auto it = users_.find(s.user);
  if (it == users_.end()) return;
  const UserSessions& u = it->second;
  if (u.baseline_modseq == 0 || u.baseline_uidvalidity != s.view_uidvalidity ||
      s.view_modseq >= u.baseline_modseq) {
    return;
  }
  PIMAP_LOG(DEBUG) << "view of INBOX at MODSEQ " << s.view_modseq
                   << " predates the watch (" << u.baseline_modseq
                   << "): rebuilt";
  s.journal.MarkIncomplete(s.selected_folder);
}

uint64_t SessionRegistry::WatchModseq(const std::string& user,
                                      absl::string_view folder) const {
  auto it = users_.find(user);
  if (it == users_.end() || it->second.watch == nullptr) return 0;
  if (!config_->watch && PersonalFolder(folder)) return 0;  // a cover watch
  return it->second.watch->highest_modseq(folder);
}

uint32_t SessionRegistry::WatchUidvalidity(const std::string& user,
                                           absl::string_view folder) const {
  auto it = users_.find(user);
  if (it == users_.end() || it->second.watch == nullptr) return 0;
  if (!config_->watch && PersonalFolder(folder)) return 0;  // a cover watch
  return it->second.watch->uidvalidity(folder);
}

// The same change reported by the watch and by the store's push: keyed by what
// identifies it (there is no per-message MODSEQ in a push), kept for the last
// few thousand events of the user.
bool SessionRegistry::SeenRecently(UserSessions& u, const StoreEvent& e) {
  // The same change reported by the watch and by the store's push (there is no
  // per-message MODSEQ in a push, so the key is what identifies the change). A
  // key matches once, and only within a few seconds: the second source lags by
  // about a second, and a later real repeat (read, unread, read) must pass.
  constexpr size_t kRemembered = 4096;
  const int64_t now = MonotonicNowMs();
  std::vector<std::string> flags = e.flags;
  std::sort(flags.begin(), flags.end());
  std::string key = absl::StrCat(static_cast<int>(e.kind), "\n", e.folder, "\n",
                                 e.new_folder, "\n", e.uidvalidity, "\n", e.uid,
                                 "\n", absl::StrJoin(flags, " "));
  auto it = u.recent.find(key);
  if (it != u.recent.end()) {
    const bool duplicate = now - it->second <= kRecentWindowMs;
    u.recent.erase(it);
    if (duplicate) {
      (*counters_).events_deduplicated.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  u.recent[key] = now;
  if (!u.recent_order.has_value()) u.recent_order.emplace();
  auto& order = *u.recent_order;
  order.emplace_back(std::move(key), now);
  // Forget what is out of the window, and anything past the bound: the map
  // never holds more than the order list.
  while (!order.empty() && (order.size() > kRemembered ||
                            now - order.front().second > kRecentWindowMs)) {
    auto old = u.recent.find(order.front().first);
    if (old != u.recent.end() && old->second == order.front().second) {
      u.recent.erase(old);
    }
    order.pop_front();
  }
  return false;
}

void SessionRegistry::ForgetOldRecent(UserSessions& u, int64_t now) {
  if (!u.recent_order.has_value()) return;
  // The window is short: once the newest key has left it, all have.
  if (!u.recent_order->empty() &&
      now - u.recent_order->back().second <= kRecentWindowMs) {
    return;
  }
  u.recent.clear();
  u.recent_order.reset();
}

}  // namespace pimap::session
