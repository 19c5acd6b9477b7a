// LoginThrottle (login_throttle.h).
#include "core/session/login_throttle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"

namespace pimap::session {

std::string LoginThrottle::UserKey(absl::string_view user) {
  // Stores commonly fold the case of user names: "Alice" must not be a fresh
  // start for "alice". Longer names are no real user's.
  return absl::AsciiStrToLower(user.substr(0, kMaxUserKeyBytes));
}

std::string LoginThrottle::IpKey(const Endpoint& ip) {
  return std::string(reinterpret_cast<const char*>(ip.ip.data()),
                     ip.family == 4 ? 4 : 16);
}

int64_t LoginThrottle::Delay(int failures) const {
  if (failures <= 0) return 0;
  const int shift = std::min(failures - 1, 30);
  return std::min(config_.base_delay_ms << shift, kMaxDelayMs);
}

LoginThrottle::Entry* LoginThrottle::Find(Table& table, const std::string& key,
                                          int64_t now_ms) {
  auto it = table.entries.find(key);
  if (it == table.entries.end()) return nullptr;
  if (Expired(it->second, now_ms)) {
    table.lru.erase(it->second.lru_pos);
    table.entries.erase(it);
    return nullptr;
  }
  return &it->second;
}

const LoginThrottle::Entry* LoginThrottle::Peek(const Table& table,
                                                const std::string& key,
                                                int64_t now_ms) const {
  auto it = table.entries.find(key);
  if (it == table.entries.end() || Expired(it->second, now_ms)) return nullptr;
  return &it->second;
}

LoginThrottle::Verdict LoginThrottle::Check(absl::string_view user,
                                            const Endpoint& ip,
                                            int64_t now_ms) {
  if (!enabled()) return {};
  Entry* entries[2] = {Find(users_, UserKey(user), now_ms),
                       ip.known() ? Find(ips_, IpKey(ip), now_ms) : nullptr};
  int failures = 0;
  int64_t go_ms = now_ms;
  for (const Entry* e : entries) {
    if (e == nullptr) continue;
    failures = std::max(failures, e->failures);
    go_ms = std::max(go_ms, e->next_ms);
  }
  if (failures == 0) return {};
  if ((config_.max_failures > 0 && failures >= config_.max_failures) ||
      go_ms - now_ms > kMaxDelayMs) {
    // Past the threshold, or so many attempts already wait that this one
    // would wait longer than the longest delay: no store login at all.
    return {Verdict::Kind::kRefuse, 0};
  }
  // This attempt takes the turn at go_ms; the next one waits a delay more.
  for (Entry* e : entries) {
    if (e != nullptr) e->next_ms = go_ms + Delay(e->failures);
  }
  if (go_ms == now_ms) return {};
  return {Verdict::Kind::kWait, go_ms - now_ms};
}

void LoginThrottle::RecordFailure(Table& table, const std::string& key,
                                  int64_t now_ms) {
  Entry* e = Find(table, key, now_ms);
  if (e == nullptr) {
    if (table.entries.size() >= config_.max_entries && !table.lru.empty()) {
      table.entries.erase(table.lru.back());
      table.lru.pop_back();
    }
    e = &table.entries[key];
    table.lru.push_front(key);
    e->lru_pos = table.lru.begin();
  } else {
    table.lru.splice(table.lru.begin(), table.lru, e->lru_pos);
  }
  ++e->failures;
  e->last_failure_ms = now_ms;
  e->next_ms = std::max(e->next_ms, now_ms + Delay(e->failures));
}

void LoginThrottle::Failed(absl::string_view user, const Endpoint& ip,
                           int64_t now_ms) {
  if (!enabled()) return;
  RecordFailure(users_, UserKey(user), now_ms);
  if (ip.known()) RecordFailure(ips_, IpKey(ip), now_ms);
}

void LoginThrottle::Erase(Table& table, const std::string& key) {
  auto it = table.entries.find(key);
  if (it == table.entries.end()) return;
  table.lru.erase(it->second.lru_pos);
  table.entries.erase(it);
}

void LoginThrottle::Succeeded(absl::string_view user, const Endpoint& ip) {
  Erase(users_, UserKey(user));
  if (ip.known()) Erase(ips_, IpKey(ip));
}

int LoginThrottle::failures(absl::string_view user, const Endpoint& ip,
                            int64_t now_ms) const {
  int n = 0;
  if (const Entry* e = Peek(users_, UserKey(user), now_ms)) n = e->failures;
  if (ip.known()) {
    if (const Entry* e = Peek(ips_, IpKey(ip), now_ms)) {
      n = std::max(n, e->failures);
    }
  }
  return n;
}

}  // namespace pimap::session
