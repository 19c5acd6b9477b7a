// Hibernation of the engine (hibernation.h): when a device idling in the
// gateway's own IDLE may give up its DeviceDriver, what is kept of it, and
// the driver rebuilt from that state.
#include <algorithm>
#include <functional>
#include <string_view>

#include "core/base/timer_wheel.h"
#include "core/session/device_driver.h"
#include "core/session/hibernation.h"

namespace pimap::session {

int64_t KeepaliveDelayMs(absl::string_view device, int64_t interval_ms,
                         int64_t now_ms, bool just_sent) {
  const int64_t phase =
      static_cast<int64_t>(std::hash<std::string_view>()(
                               std::string_view(device.data(), device.size())) %
                           interval_ms);
  const int64_t delay = interval_ms - (now_ms + phase) % interval_ms;
  // Hazard: the timer wheel fires a little early; re-armed at once, the same
  // phase point would be ~2 ms away and a second keepalive would follow. So
  // right after one, a point closer than a tenth of the interval (at most 1 s)
  // is the one just served: gaps stay within 1.1 intervals.
  const int64_t slack = std::min<int64_t>(interval_ms / 10, 1000);
  return just_sent && delay < slack ? delay + interval_ms : delay;
}

bool DeviceDriver::Hibernatable() const {
  // The gateway's own IDLE at rest (kLocalIdling: no store work in the middle,
  // no DONE taken; job_ is kIdle there) and nothing else pending: the store
  // has nothing of this device's (no link, no borrow), nothing is held or
  // queued for an answer. Undelivered events the filters hold back may stay:
  // they wait for the next command in the journal, which the session keeps.
  return idle_.state() == IdleMachine::State::kLocalIdling &&
         // Nothing else pending.
         session_ != nullptr && output_ != nullptr && logged_in_ &&
         cmd_ == nullptr && link() == nullptr && links_.lent() == nullptr &&
         !links_.acquiring() && relayed_tags_.empty() &&
         !idle_.DoneAnswerPending() && busy_ == 0 && !release_pending_ &&
         !live_resync_ && !xfilter_resync_ && !own_new_ &&
         !links_.reading_paused() && logout_tag_.empty();
}

HibernatedIdle DeviceDriver::Hibernate(DeviceLink* keeper) {
  HibernatedIdle state;
  state.session = session_;
  state.idle_tag = std::move(job_device_tag_);
  state.delivered_seq = delivered_seq_;
  state.ackable_seq = ackable_seq_;
  state.next_up_tag = next_up_tag_;
  state.device_condstore = device_condstore_;
  state.client = client_;
  // The session's events go to the keeper from now on; the session stays
  // attached (hibernating is no disconnect: nothing is replayed, nothing
  // saved).
  if (session_->connection == this) session_->connection = keeper;
  session_ = nullptr;
  job_ = Job::kNone;
  idle_.Reset();
  // Detach() now finds no session, no link and no timer of the IDLE's.
  Detach();
  return state;
}

DeviceDriver::DeviceDriver(DriverServices services, DeviceOutput* output,
                           std::string user, const HibernatedIdle& state,
                           DeviceLink* keeper)
    : DeviceDriver(services, output, std::move(user), state.session->device) {
  session_ = state.session;
  // A takeover while hibernated cleared the session's connection: the
  // newer connection has it, and this driver only says goodbye.
  if (session_->connection == keeper) session_->connection = this;
  logged_in_ = true;
  delivered_seq_ = state.delivered_seq;
  ackable_seq_ = state.ackable_seq;
  next_up_tag_ = state.next_up_tag;
  device_condstore_ = state.device_condstore;
  client_ = state.client;
  job_ = Job::kIdle;
  job_device_tag_ = state.idle_tag;
  idle_.StartLocal();
  ArmKeepalive();
}

}  // namespace pimap::session
