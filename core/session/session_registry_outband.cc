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
                                  const std::vector<StoreEvent>& batch,
                                  std::vector<HeadlineWait>* waits) {
  const DevicePrefs& prefs = session.prefs();
  if (prefs.outband_channel == "NONE" || prefs.outband_address.empty()) return;
  WakeUp wake_up;
  bool admitted = false;
  // The newest admitted new message: its headline is the one shown.
  const StoreEvent* newest = nullptr;
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
      if (newest == nullptr || event.folder != newest->folder ||
          event.uid > newest->uid) {
        newest = &event;
      }
      if (event.headline != nullptr && event.uid >= wake_up.headline_uid) {
        wake_up.headline = event.headline;
        wake_up.headline_uid = event.uid;
      }
    }
  }
  if (!admitted) return;
  wake_up.user = session.user;
  wake_up.device = session.device;
  wake_up.channel = prefs.outband_channel;
  wake_up.address = prefs.outband_address;
  wake_up.first_event_ms = timers_->now_ms();
  // Only the Web Push body shows a headline (EMN and UDP carry no content);
  // with `--outband-payload minimal` none is ever attached.
  if (!outband_->config().full_payload || wake_up.channel != "WEBPUSH" ||
      !outband_->Serves("WEBPUSH")) {
    wake_up.headline = nullptr;
    wake_up.headline_uid = 0;
  } else if (newest != nullptr && newest->headline == nullptr) {
    // The source did not carry it (the watch learns only UIDs and flags):
    // the wake-up waits, within a bound, for the watch to ask the store.
    waits->push_back({session.session_id, std::move(wake_up), newest->folder,
                      newest->uidvalidity, newest->uid});
    return;
  }
  outband_->OnAdmitted(session.session_id, std::move(wake_up));
}

void SessionRegistry::LookUpHeadlines(const std::string& user,
                                      std::vector<HeadlineWait> waits) {
  auto u = users_.find(user);
  StoreWatch* watch = u == users_.end() ? nullptr : u->second.watch;
  // Why the watch asks, and only now: it knows the store's UIDs already, it
  // is the user's one connection that has the folder selected (INBOX, or
  // the folder an excursion just looked at: no link to borrow, no SELECT),
  // and only a device away with a full payload needs the two
  // fields, so that a FETCH of every new message for every user would be
  // store cost for nothing. One FETCH per message, however many devices wait
  // for it; devices whose newest admitted messages differ (their filters)
  // ask for each, at most kMaxLookups per batch.
  constexpr size_t kMaxLookups = 4;
  size_t lookups = 0;
  while (!waits.empty()) {
    const std::string folder = waits.front().folder;
    const uint32_t uidvalidity = waits.front().uidvalidity;
    const uint32_t uid = waits.front().uid;
    std::vector<HeadlineWait> same;
    std::vector<HeadlineWait> rest;
    for (HeadlineWait& w : waits) {
      (w.folder == folder && w.uidvalidity == uidvalidity && w.uid == uid
           ? same
           : rest)
          .push_back(std::move(w));
    }
    waits = std::move(rest);
    if (watch == nullptr || ++lookups > kMaxLookups) {
      // Nobody to ask: they go as they are (an older message's headline, if
      // the events carried one).
      for (HeadlineWait& w : same) {
        outband_->OnAdmitted(w.session_id, std::move(w.wake_up));
      }
      continue;
    }
    watch->LookUpHeadline(
        folder, uidvalidity, uid, outband_->config().headline_wait_ms,
        [this, user, uid, same = std::move(same)](
            std::shared_ptr<const MessageHeadline> headline) mutable {
          auto u = users_.find(user);
          if (u == users_.end() || outband_ == nullptr) return;
          for (HeadlineWait& w : same) {
            // Back in band meanwhile (or another session): no wake-up.
            auto d = u->second.devices.find(w.wake_up.device);
            if (d == u->second.devices.end() ||
                d->second->session_id != w.session_id ||
                d->second->connection != nullptr) {
              continue;
            }
            if (headline != nullptr) {
              w.wake_up.headline = headline;
              w.wake_up.headline_uid = uid;
            }
            outband_->OnAdmitted(w.session_id, std::move(w.wake_up));
          }
        });
  }
}

}  // namespace pimap::session
