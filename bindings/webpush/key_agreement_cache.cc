// KeyAgreementCache (key_agreement_cache.h).
#include "bindings/webpush/key_agreement_cache.h"

#include <string>
#include <utility>

namespace pimap::webpush {

KeyAgreementCache::KeyAgreementCache(TimerWheel* timers, size_t max_entries)
    : timers_(timers), max_entries_(max_entries) {}

KeyAgreementCache::~KeyAgreementCache() {
  if (timer_ != 0) timers_->Cancel(timer_);
}

void KeyAgreementCache::Want(absl::string_view ua_public) {
  std::string key(ua_public);
  if (ready_.contains(key) || queued_.contains(key)) return;
  if (ready_.size() + queue_.size() >= max_entries_) {
    Evict(timers_->now_ms() - kMaxAgeMs, /*room=*/true);
    if (ready_.size() + queue_.size() >= max_entries_) return;  // all queued
  }
  queued_.insert(key);
  queue_.push_back(std::move(key));
  if (timer_ == 0) timer_ = timers_->Schedule(kTurnMs, [this] { Turn(); });
}

std::optional<KeyAgreement> KeyAgreementCache::Take(
    absl::string_view ua_public) {
  auto it = ready_.find(ua_public);
  if (it == ready_.end()) return std::nullopt;
  std::optional<KeyAgreement> out(std::move(it->second.agreement));
  ready_.erase(it);
  return out;
}

void KeyAgreementCache::Drop(absl::string_view ua_public) {
  ready_.erase(ua_public);  // its order_ entry is skipped when met
}

void KeyAgreementCache::Evict(int64_t older_than_ms, bool room) {
  while (!order_.empty()) {
    const Made& oldest = order_.front();
    auto it = ready_.find(oldest.key);
    const bool live = it != ready_.end() && it->second.serial == oldest.serial;
    if (live) {
      const bool full = ready_.size() + queue_.size() >= max_entries_;
      if (oldest.at_ms >= older_than_ms && !(room && full)) break;
      ready_.erase(it);
    }
    order_.pop_front();
  }
  // Skipped entries of taken keys: never more than the cache holds twice.
  if (order_.size() > 2 * max_entries_) {
    std::deque<Made> live;
    for (Made& m : order_) {
      auto it = ready_.find(m.key);
      if (it != ready_.end() && it->second.serial == m.serial) {
        live.push_back(std::move(m));
      }
    }
    order_ = std::move(live);
  }
}

void KeyAgreementCache::Turn() {
  timer_ = 0;
  const int64_t quiet_for = timers_->now_ms() - busy_ms_;
  if (quiet_for < kQuietMs) {
    timer_ = timers_->Schedule(kQuietMs - quiet_for, [this] { Turn(); });
    return;
  }
  for (int i = 0; i < kPerTurn && !queue_.empty(); ++i) {
    std::string key = std::move(queue_.front());
    queue_.pop_front();
    queued_.erase(key);
    absl::StatusOr<KeyAgreement> agreement = AgreeKey(key);
    // A key that is not a point gets nothing: its wake-up fails as before.
    if (!agreement.ok()) continue;
    const uint64_t serial = ++next_serial_;
    order_.push_back(Made{timers_->now_ms(), key, serial});
    ready_.emplace(std::move(key), Ready{*std::move(agreement), serial});
  }
  Evict(timers_->now_ms() - kMaxAgeMs, /*room=*/false);
  if (!queue_.empty()) {
    timer_ = timers_->Schedule(kTurnMs, [this] { Turn(); });
  }
}

}  // namespace pimap::webpush
