// Hibernation of an idle P-IMAP device, in the way Dovecot's imap-hibernate
// keeps an IMAP client that sits in IDLE: a device in the gateway's own IDLE,
// with no command running, waiting or buffered, is reduced to what rebuilding
// its engine needs (HibernatedIdle). The binding then frees its connection
// object, the session driver and the engine, and keeps only the socket and a
// small record that answers the session's events and the device's bytes by
// waking: rebuilding all three from this state and handing them the call.
//
// Why: an idling device costs the gateway its connection, router and engine
// objects (~1 KiB with their allocations) although all they do is wait; the
// session itself (journal, view, filters) lives in the registry either way.
#ifndef PIMAP_CORE_SESSION_HIBERNATION_H_
#define PIMAP_CORE_SESSION_HIBERNATION_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/client_address.h"

namespace pimap::session {

struct DeviceSession;

// What a P-IMAP device in the gateway's own IDLE needs to be rebuilt exactly:
// the same IDLE (its tag answers DONE), the same delivery positions (what was
// written is acknowledged by the next command, architecture.md §4) and the
// device's own switches.
struct HibernatedIdle {
  DeviceSession* session = nullptr;  // in the registry; outlives the record
  std::string idle_tag;              // the IDLE command's tag
  uint64_t delivered_seq = 0;  // the highest journal seq written to the device
  uint64_t ackable_seq = 0;    // what the device's next input acknowledges
  uint64_t next_up_tag = 0;    // the store tags stay unique per driver
  ClientAddress client;        // the device's connection (log lines)
  bool device_condstore = false;  // the device ENABLEd CONDSTORE
  bool event_frames = false;      // XZSTDEVENTS is on (event_frames.h)
  bool terse = false;             // XTERSE is on (terse.h)
};

// How long from `now_ms` until the next "* OK Still here" of the device
// `device` (--idle-keepalive `interval_ms` > 0). The phase comes from the
// device id, so one device's connections wake its radio together and
// different devices are spread over the interval. `just_sent`: a keepalive
// went out now (its timer fired, maybe a little early): the next one is the
// phase point after the coming one if that is very close (a tenth of the
// interval, at most 1 s), so that one phase point is never served twice.
int64_t KeepaliveDelayMs(absl::string_view device, int64_t interval_ms,
                         int64_t now_ms, bool just_sent = false);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_HIBERNATION_H_
