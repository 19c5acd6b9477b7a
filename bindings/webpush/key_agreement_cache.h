// KeyAgreementCache: RFC 8291 key agreements made ahead of the wake-ups that
// will use them. The asymmetric part of a Web Push message (a fresh P-256 key
// pair and its ECDH with the subscription's key, ~170 us here with Debian's
// BoringSSL, which has no P-256 assembly) does not depend on the message, so
// it is done while a device is away and the shard has time, not when mail
// arrives: a burst of wake-ups then costs only HKDF and AES-GCM per message.
//
// Hazards and the chosen fixes:
//  * RFC 8291 wants a new key pair per message: an agreement is handed out
//    once (Take() removes it) and wiped when destroyed (KeyAgreement).
//  * Making them must not stall the shard, nor slow a burst of wake-ups: at
//    most kPerTurn per timer turn, one turn per millisecond (about a quarter
//    of a core while a queue drains), and none while wake-ups are being sent
//    (NoteBusy within kQuietMs): the refill after a wake-up waits for the
//    burst to end. A wake-up that finds none ready makes its own, as before.
//  * Memory: at most `max_entries` ready or queued. A full cache drops its
//    oldest ready agreement for a new one, and one unused for kMaxAgeMs
//    (a device that came back, a subscription replaced or gone) is dropped
//    anyway, so stale keys can neither pile up nor lock new ones out.
// One per shard (inside the shard's WebPushNotifier); the shard's thread only.
#ifndef PIMAP_BINDINGS_WEBPUSH_KEY_AGREEMENT_CACHE_H_
#define PIMAP_BINDINGS_WEBPUSH_KEY_AGREEMENT_CACHE_H_

#include <cstddef>
#include <deque>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "bindings/webpush/webpush_crypto.h"
#include "core/base/timer_wheel.h"

namespace pimap::webpush {

class KeyAgreementCache {
 public:
  static constexpr size_t kDefaultMaxEntries = 65536;
  static constexpr int kPerTurn = 2;
  static constexpr int64_t kTurnMs = 1;
  static constexpr int64_t kQuietMs = 20;
  static constexpr int64_t kMaxAgeMs = 6 * 3600 * 1000;

  KeyAgreementCache(TimerWheel* timers,
                    size_t max_entries = kDefaultMaxEntries);
  ~KeyAgreementCache();
  KeyAgreementCache(const KeyAgreementCache&) = delete;
  KeyAgreementCache& operator=(const KeyAgreementCache&) = delete;

  // A device may soon be woken through the subscription whose key (65-byte
  // uncompressed point) this is: an agreement is made ahead.
  void Want(absl::string_view ua_public);
  // The agreement made ahead for `ua_public`, no longer in the cache; none
  // when none is ready (the caller makes its own).
  std::optional<KeyAgreement> Take(absl::string_view ua_public);
  // A wake-up is being sent now: making agreements waits until none has
  // been for kQuietMs.
  void NoteBusy() { busy_ms_ = timers_->now_ms(); }
  // The subscription is gone (404/410): its agreement too.
  void Drop(absl::string_view ua_public);

  size_t ready() const { return ready_.size(); }
  size_t queued() const { return queue_.size(); }

 private:
  void Turn();
  // Drops ready agreements made before `older_than_ms`, and while `room` is
  // wanted, the oldest ones.
  void Evict(int64_t older_than_ms, bool room);
  struct Ready {
    KeyAgreement agreement;
    uint64_t serial = 0;  // of its entry in order_
  };

  TimerWheel* timers_;
  size_t max_entries_;
  absl::flat_hash_map<std::string, Ready> ready_;
  // Ready keys in the order they were made (made at, key, serial); entries
  // whose key was taken since are skipped when met.
  struct Made {
    int64_t at_ms;
    std::string key;
    uint64_t serial;
  };
  std::deque<Made> order_;
  uint64_t next_serial_ = 0;
  std::deque<std::string> queue_;
  absl::flat_hash_set<std::string> queued_;
  TimerWheel::TimerId timer_ = 0;
  int64_t busy_ms_ = -kQuietMs;
};

}  // namespace pimap::webpush

#endif  // PIMAP_BINDINGS_WEBPUSH_KEY_AGREEMENT_CACHE_H_
