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
  if (ready_.size() + queue_.size() >= max_entries_) return;
  queued_.insert(key);
  queue_.push_back(std::move(key));
  if (timer_ == 0) timer_ = timers_->Schedule(kTurnMs, [this] { Turn(); });
}

std::optional<KeyAgreement> KeyAgreementCache::Take(
    absl::string_view ua_public) {
  auto it = ready_.find(ua_public);
  if (it == ready_.end()) return std::nullopt;
  std::optional<KeyAgreement> out(std::move(it->second));
  ready_.erase(it);
  return out;
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
    if (agreement.ok()) ready_.emplace(std::move(key), *std::move(agreement));
  }
  if (!queue_.empty()) {
    timer_ = timers_->Schedule(kTurnMs, [this] { Turn(); });
  }
}

}  // namespace pimap::webpush
