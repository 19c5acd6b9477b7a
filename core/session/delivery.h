// Delivery policy shared by the session engine's parts: what the device was
// already told, and what the filters let it be pushed now (architecture.md §4).
#ifndef PIMAP_CORE_SESSION_DELIVERY_H_
#define PIMAP_CORE_SESSION_DELIVERY_H_

#include <cstdint>
#include <string>

#include "core/session/event.h"
#include "core/session/filter.h"
#include "core/session/session_registry.h"

namespace pimap::session {

// Records that the device now knows `flags` for `uid`; true if it knew them.
inline bool Told(DeviceSession& s, uint32_t uid, const std::string& flags) {
  constexpr size_t kRemembered = 4096;
  auto it = s.told_flags.find(uid);
  if (it != s.told_flags.end() && it->second == flags) return true;
  if (s.told_flags.size() >= kRemembered) s.told_flags.clear();
  s.told_flags[uid] = flags;
  return false;
}

// The spec shows every message of its folder (not NONE, which shows none).
inline bool WholeFolder(const FilterSpec& spec) {
  return !spec.none && spec.all && spec.search_keys.empty() &&
         !spec.days_before_today;
}

inline bool Trivial(const FilterSpec& spec) {
  return spec.none || (spec.all && spec.search_keys.empty() && !spec.days_before_today);
}

// Push now only what the event filter and the notification filter both let
// through; the rest waits for the device's next command.
inline bool Admits(const DeviceSession& s, const FilterSpec& notify,
            const StoreEvent& event) {
  const std::string& event_filter = s.prefs().event_filter;
  if (event_filter == "NONE") return false;
  if (event_filter == "NEW" && event.kind != EventKind::kNew) return false;
  if (notify.none) return false;
  if (Trivial(notify)) return true;
  // A search-key filter: new mail by the store's verdict; other events wait.
  return event.kind == EventKind::kNew && s.notify.contains(event.uid);
}

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_DELIVERY_H_
