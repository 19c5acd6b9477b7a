// The out-of-band dispatcher (outband_notifier.h): per-device coalescing on
// the shard's timers and the bounded queue in front of the channels.
#include "core/session/outband_notifier.h"

#include <utility>

#include "core/base/log.h"

namespace pimap::session {

OutbandDispatcher::OutbandDispatcher(TimerWheel* timers,
                                     ShardCounters* counters,
                                     const OutbandConfig* config)
    : timers_(timers), counters_(counters), config_(config) {}

OutbandDispatcher::~OutbandDispatcher() {
  for (auto& [id, state] : devices_) {
    if (state.timer != 0) timers_->Cancel(state.timer);
  }
  if (drain_timer_ != 0) timers_->Cancel(drain_timer_);
}

void OutbandDispatcher::DropAll() {
  for (auto& [id, state] : devices_) {
    if (state.timer != 0) timers_->Cancel(state.timer);
  }
  devices_.clear();
  queue_.clear();
  if (drain_timer_ != 0) {
    timers_->Cancel(drain_timer_);
    drain_timer_ = 0;
  }
}

void OutbandDispatcher::Register(absl::string_view channel,
                                 OutbandNotifier* notifier) {
  channels_[channel] = notifier;
}

void OutbandDispatcher::DeviceAway(absl::string_view channel,
                                   absl::string_view address) {
  auto it = channels_.find(channel);
  if (it != channels_.end() && it->second != nullptr && !address.empty()) {
    it->second->Prepare(address);
  }
}

bool OutbandDispatcher::Serves(absl::string_view channel) const {
  return channels_.contains(channel);
}

std::vector<std::string> OutbandDispatcher::Channels() const {
  std::vector<std::string> out;
  for (const char* channel : {"WEBPUSH", "SMS", "WAP_PUSH", "UDP"}) {
    if (Serves(channel)) out.push_back(channel);
  }
  return out;
}

void OutbandDispatcher::OnAdmitted(uint64_t session_id, WakeUp wake_up) {
  if (!Serves(wake_up.channel)) {
    CounterAdd(counters_->outband_no_channel);
    return;
  }
  const int64_t now = timers_->now_ms();
  if (wake_up.first_event_ms == 0) wake_up.first_event_ms = now;
  auto [it, fresh] = devices_.try_emplace(session_id);
  DeviceState& state = it->second;
  if (!fresh) {
    // Woken less than min_interval ago: fold this into the one wake-up that
    // goes when the interval is over.
    CounterAdd(counters_->outband_coalesced);
    if (state.pending) {
      wake_up.new_messages += state.next.new_messages;
      wake_up.first_event_ms = state.next.first_event_ms;
      if (wake_up.uidnext == 0) wake_up.uidnext = state.next.uidnext;
      // The newest known headline (a wake-up that waited for its own may
      // come after a later one).
      if (state.next.headline_uid > wake_up.headline_uid) {
        wake_up.headline = std::move(state.next.headline);
        wake_up.headline_uid = state.next.headline_uid;
      }
    }
    state.next = std::move(wake_up);
    state.pending = true;
    return;
  }
  state.last_sent_ms = now;
  state.timer = timers_->Schedule(config_->min_interval_ms, [this, session_id] {
    OnIntervalOver(session_id);
  });
  Enqueue(std::move(wake_up));
}

void OutbandDispatcher::OnIntervalOver(uint64_t session_id) {
  auto it = devices_.find(session_id);
  if (it == devices_.end()) return;
  DeviceState& state = it->second;
  state.timer = 0;
  if (!state.pending) {
    devices_.erase(it);
    return;
  }
  // One more, for the events after the last wake-up; the next interval
  // starts with it.
  state.pending = false;
  state.last_sent_ms = timers_->now_ms();
  WakeUp next = std::move(state.next);
  state.next = WakeUp();
  state.timer = timers_->Schedule(config_->min_interval_ms, [this, session_id] {
    OnIntervalOver(session_id);
  });
  Enqueue(std::move(next));
}

void OutbandDispatcher::OnDeviceBack(uint64_t session_id) {
  auto it = devices_.find(session_id);
  if (it == devices_.end()) return;
  if (it->second.timer != 0) timers_->Cancel(it->second.timer);
  devices_.erase(it);
  // A wake-up already queued for it still goes: it was decided while the
  // device was away, and a stale wake-up only costs the device a look.
}

void OutbandDispatcher::Enqueue(WakeUp wake_up) {
  if (queue_.size() >= config_->max_queue) {
    CounterAdd(counters_->outband_overflow);
    PIMAP_LOG(WARNING) << "out-of-band queue full (" << config_->max_queue
                       << "): wake-up for a device of " << wake_up.user
                       << " dropped";
    return;
  }
  queue_.push_back(std::move(wake_up));
  ScheduleDrain(0);
}

void OutbandDispatcher::ScheduleDrain(int64_t delay_ms) {
  if (drain_timer_ != 0) return;
  // Sent from a timer, not from inside the store-event fan-out: a channel's
  // work never runs in the middle of the registry's loop.
  drain_timer_ = timers_->Schedule(delay_ms, [this] {
    drain_timer_ = 0;
    Drain();
  });
}

void OutbandDispatcher::Drain() {
  while (!queue_.empty()) {
    WakeUp& front = queue_.front();
    auto channel = channels_.find(front.channel);
    if (channel == channels_.end()) {
      CounterAdd(counters_->outband_no_channel);
      queue_.pop_front();
      continue;
    }
    if (!channel->second->Send(front)) {
      ScheduleDrain(config_->retry_offer_ms);
      return;
    }
    CounterAdd(counters_->outband_wakeups);
    queue_.pop_front();
  }
}

}  // namespace pimap::session
