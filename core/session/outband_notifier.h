// Out-of-band wake-ups (issue 13): the interface the session engine calls
// when an event the device's filters admit arrives for a device with no live
// in-band connection that chose an out-of-band channel
// (PIMAP_OUTBAND_CHANNEL/ADDRESS), and the per-shard dispatcher that decides
// when: coalesced per device, queued with a bound. Channels (one folder each
// under bindings/, e.g. bindings/webpush) implement OutbandNotifier; the
// engine never calls a channel directly.
#ifndef PIMAP_CORE_SESSION_OUTBAND_NOTIFIER_H_
#define PIMAP_CORE_SESSION_OUTBAND_NOTIFIER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/session/event.h"

namespace pimap::session {

// One wake-up of one device.
struct WakeUp {
  std::string user;
  std::string device;
  std::string channel;         // WEBPUSH, SMS, WAP_PUSH or UDP
  std::string address;         // PIMAP_OUTBAND_ADDRESS when it was decided
  std::string folder;          // of the latest admitted event
  uint32_t new_messages = 0;   // admitted new mail since the last wake-up
  uint32_t uidnext = 0;        // highest admitted new UID + 1; 0: none
  int64_t first_event_ms = 0;  // MonotonicNowMs() of its first event (latency)
  // `--outband-payload full`, WEBPUSH only: the Subject and From of the
  // newest admitted new message whose headline is known, and its UID; null
  // (and 0) otherwise. Only the Web Push body shows it (EMN and UDP carry no
  // content); never logged.
  std::shared_ptr<const MessageHeadline> headline;
  uint32_t headline_uid = 0;
};

// A channel. Called on the shard's thread only; must not block it.
class OutbandNotifier {
 public:
  virtual ~OutbandNotifier() = default;
  // Takes a wake-up to deliver (retries, back-off and giving up are the
  // channel's). False: it holds as many as it may now; the dispatcher keeps
  // the wake-up queued and offers it again later.
  virtual bool Send(WakeUp wake_up) = 0;
  // A device whose channel this is went away: it may soon be woken at
  // `address`. Work that does not depend on the message may be done ahead,
  // off the wake-up's path (Web Push: the key agreement). Must not block.
  virtual void Prepare(absl::string_view address) {}
};

struct OutbandConfig {
  int64_t min_interval_ms = 60000;  // --outband-min-interval
  size_t max_queue = 4096;          // wake-ups waiting for their channel
  int64_t retry_offer_ms = 100;     // a full channel is offered again after
  // --outband-payload full: Web Push wake-ups carry the newest new message's
  // Subject and From (WakeUp::headline).
  bool full_payload = false;
  // How long a wake-up may wait for the store to tell a headline (the watch's
  // FETCH, notify mode); then it goes without one.
  int64_t headline_wait_ms = 200;
};

// Per shard. Keyed by the session's id (DeviceSession::session_id).
class OutbandDispatcher {
 public:
  // Counts into `counters` (outband_*).
  OutbandDispatcher(TimerWheel* timers, ShardCounters* counters,
                    const OutbandConfig* config);
  ~OutbandDispatcher();
  OutbandDispatcher(const OutbandDispatcher&) = delete;
  OutbandDispatcher& operator=(const OutbandDispatcher&) = delete;

  // The channel for PIMAP_OUTBAND_CHANNEL `channel` (not owned; outlives
  // this). Without one, wake-ups for that channel are only counted.
  void Register(absl::string_view channel, OutbandNotifier* notifier);
  bool Serves(absl::string_view channel) const;
  // A device with this channel and address went away (OutbandNotifier::
  // Prepare of its channel).
  void DeviceAway(absl::string_view channel, absl::string_view address);
  const OutbandConfig& config() const { return *config_; }
  // The channels registered, in PIMAP_OUTBAND_CHANNEL's order (XPROVISION).
  std::vector<std::string> Channels() const;
  // Key material XPROVISION hands to devices: the VAPID public key
  // (base64url, RFC 8292 §3.2) with the WEBPUSH channel, else empty.
  void set_vapid_public_key(std::string key) {
    vapid_public_key_ = std::move(key);
  }
  const std::string& vapid_public_key() const { return vapid_public_key_; }

  // Admitted events for an away device: `wake_up` describes them (its
  // new_messages and uidnext those of this batch). Sends at once unless a
  // wake-up went to the device less than min_interval ago; then one more
  // goes when the interval is over, for everything that came meanwhile.
  void OnAdmitted(uint64_t session_id, WakeUp wake_up);
  // The device is back in band (or its session ended): nothing pending or
  // later for it, until it is away again.
  void OnDeviceBack(uint64_t session_id);

  // A channel learnt that `wake_up.address` is no longer valid (a push
  // service's 404/410): the callback (the registry) forgets it, if the
  // device still has that address.
  using GoneCallback = absl::AnyInvocable<void(const WakeUp&)>;
  void set_on_address_gone(GoneCallback callback) {
    on_address_gone_ = std::move(callback);
  }
  void AddressGone(const WakeUp& wake_up) {
    if (on_address_gone_) on_address_gone_(wake_up);
  }

  size_t queued() const { return queue_.size(); }
  size_t tracked() const { return devices_.size(); }
  // The node lost its users (cluster fence): nothing queued or pending goes
  // out any more. (What a channel already took, it delivers.)
  void DropAll();

 private:
  struct DeviceState {
    int64_t last_sent_ms = 0;
    bool pending = false;  // events since the last wake-up, not yet sent
    WakeUp next;           // what the pending wake-up will say
    TimerWheel::TimerId timer = 0;
  };
  void Enqueue(WakeUp wake_up);
  void ScheduleDrain(int64_t delay_ms);
  void Drain();
  // The interval after a device's last wake-up is over.
  void OnIntervalOver(uint64_t session_id);

  TimerWheel* timers_;
  ShardCounters* counters_;
  const OutbandConfig* config_;
  absl::flat_hash_map<std::string, OutbandNotifier*> channels_;
  // Only devices woken less than min_interval ago: an entry goes when its
  // interval is over with nothing pending, so this is bounded by the
  // wake-ups of one interval.
  absl::flat_hash_map<uint64_t, DeviceState> devices_;
  std::deque<WakeUp> queue_;  // at most config_->max_queue
  TimerWheel::TimerId drain_timer_ = 0;
  GoneCallback on_address_gone_;
  std::string vapid_public_key_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_OUTBAND_NOTIFIER_H_
