// LoginThrottle: a shard's memory of failed logins, per user and per client
// IP, that slows password guessing down before it reaches the store. After
// the n-th failure of a user (or from an IP) the next attempt waits
// base * 2^(n-1) (at most kMaxDelayMs) on a timer; at `max_failures` the
// attempts are refused outright until `window_ms` has passed since the last
// failure. A success clears the user's and the IP's count. Neither a waiting
// nor a refused attempt costs a store connection.
//
// Hazards:
//  * Per shard, without locks: a user's logins all run on the shard that owns
//    the user, so a user's count is exact; an IP's logins spread over the
//    shards of the users it tries, so an IP's count is per shard.
//  * Bounded: each table (users, IPs) keeps at most `max_entries`, the least
//    recently failed dropped first; user keys are case-folded and cut to
//    kMaxUserKeyBytes, so a flood of made-up names costs bounded memory.
//  * Concurrent attempts of one user (or IP) are spaced: each attempt that
//    goes ahead or waits moves the next allowed time on by the delay, so a
//    burst of connections cannot fire together when a delay ends.
#ifndef PIMAP_CORE_SESSION_LOGIN_THROTTLE_H_
#define PIMAP_CORE_SESSION_LOGIN_THROTTLE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/base/client_address.h"

namespace pimap::session {

struct LoginThrottleConfig {
  // Wait after the first failure, doubled per further failure; 0 turns the
  // throttle off (--login-fail-delay).
  int64_t base_delay_ms = 1000;
  // Failures after which attempts are refused (--login-fail-max); 0: never.
  int max_failures = 10;
  // A count is forgotten this long after its last failure
  // (--login-fail-window).
  int64_t window_ms = 15 * 60 * 1000;
  // Entries per table (users, IPs).
  size_t max_entries = 8192;
};

class LoginThrottle {
 public:
  static constexpr int64_t kMaxDelayMs = 30000;
  static constexpr size_t kMaxUserKeyBytes = 256;

  struct Verdict {
    enum class Kind { kGo, kWait, kRefuse };
    Kind kind = Kind::kGo;
    int64_t wait_ms = 0;  // kWait: go to the store after this long
  };

  explicit LoginThrottle(LoginThrottleConfig config) : config_(config) {}
  // A reload: later verdicts use `config` (failures counted so far stay).
  void Reconfigure(LoginThrottleConfig config) { config_ = config; }
  LoginThrottle(const LoginThrottle&) = delete;
  LoginThrottle& operator=(const LoginThrottle&) = delete;

  bool enabled() const { return config_.base_delay_ms > 0; }
  // An attempt of `user` from `ip` (unknown: the user alone counts). A kGo or
  // kWait reserves its turn.
  Verdict Check(absl::string_view user, const Endpoint& ip, int64_t now_ms);
  // The store refused the password.
  void Failed(absl::string_view user, const Endpoint& ip, int64_t now_ms);
  // The login succeeded: both counts start over.
  void Succeeded(absl::string_view user, const Endpoint& ip);

  // For tests and metrics.
  size_t users() const { return users_.size(); }
  size_t ips() const { return ips_.size(); }
  int failures(absl::string_view user, const Endpoint& ip,
               int64_t now_ms) const;

 private:
  struct Entry {
    int failures = 0;
    int64_t last_failure_ms = 0;
    int64_t next_ms = 0;  // earliest time the next attempt goes ahead
    std::list<std::string>::iterator lru_pos;
  };
  // One table: a key's entry, with the keys in order of their last failure
  // (most recent first) for eviction.
  struct Table {
    absl::flat_hash_map<std::string, Entry> entries;
    std::list<std::string> lru;
    size_t size() const { return entries.size(); }
  };

  static std::string UserKey(absl::string_view user);
  static std::string IpKey(const Endpoint& ip);
  int64_t Delay(int failures) const;
  bool Expired(const Entry& e, int64_t now_ms) const {
    return now_ms - e.last_failure_ms >= config_.window_ms;
  }
  // The live entry of `key`, or null (an expired one is dropped).
  Entry* Find(Table& table, const std::string& key, int64_t now_ms);
  const Entry* Peek(const Table& table, const std::string& key,
                    int64_t now_ms) const;
  void RecordFailure(Table& table, const std::string& key, int64_t now_ms);
  void Erase(Table& table, const std::string& key);

  LoginThrottleConfig config_;
  Table users_;
  Table ips_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_LOGIN_THROTTLE_H_
