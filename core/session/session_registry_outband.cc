// SessionRegistry's side of out-of-band wake-ups (outband_notifier.h): which
// events of a device that is away wake it, and forgetting an address a push
// service said is gone.
#include <algorithm>
#include <string>
#include <vector>

#include "core/session/delivery.h"
#include "core/session/session_registry.h"

namespace pimap::session {

void SessionRegistry::set_outband(OutbandDispatcher* outband) {
  if (outband_ != nullptr) outband_->set_on_address_gone(nullptr);
  outband_ = outband;
  if (outband_ != nullptr) {
    outband_->set_on_address_gone([this](const WakeUp& w) {
      ForgetOutbandAddress(w.user, w.device, w.address);
    });
  }
}

void SessionRegistry::ForgetOutbandAddress(const std::string& user,
                                           const std::string& device,
                                           const std::string& address) {
  auto u = users_.find(user);
  if (u == users_.end()) return;
  auto d = u->second.devices.find(device);
  if (d == u->second.devices.end()) return;
  DeviceSession& session = *d->second;
  if (session.prefs().outband_address != address) return;  // changed since
  session.mutable_prefs().outband_address.clear();
  Save(session);
}

void SessionRegistry::MaybeWakeUp(const DeviceSession& session,
                                  const std::vector<StoreEvent>& batch) {
  const DevicePrefs& prefs = session.prefs();
  if (prefs.outband_channel == "NONE" || prefs.outband_address.empty()) return;
  WakeUp wake_up;
  bool admitted = false;
  for (const StoreEvent& event : batch) {
    switch (event.kind) {
      case EventKind::kNew:
      case EventKind::kFlags:
      case EventKind::kExpunge:
        break;
      default:
        continue;  // folder changes wait for the device's return
    }
    // The same verdict as in band (delivery.h), of the event's folder: an
    // away device is woken for what it would have been pushed. A search-key
    // notification filter needs the store's verdict, which an away device
    // has nobody to ask for: such a filter wakes it for nothing.
    if (!Admits(session, session.filters.Notification(event.folder), event)) {
      continue;
    }
    admitted = true;
    wake_up.folder = event.folder;
    if (event.kind == EventKind::kNew) {
      ++wake_up.new_messages;
      wake_up.uidnext = std::max(wake_up.uidnext, event.uid + 1);
    }
  }
  if (!admitted) return;
  wake_up.user = session.user;
  wake_up.device = session.device;
  wake_up.channel = prefs.outband_channel;
  wake_up.address = prefs.outband_address;
  wake_up.first_event_ms = timers_->now_ms();
  outband_->OnAdmitted(session.session_id, std::move(wake_up));
}

}  // namespace pimap::session
