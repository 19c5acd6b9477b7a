// The seam between a binding that carries a logged-in device's bytes (tcp/,
// later https/) and the engine that runs its session: a regular session relayed
// to its own store connection (relay_driver.h) or a P-IMAP device's session
// (pimap_session_driver.h). The binding frames the device's input with
// imap::Framer and hands every event here; the driver answers through the
// DeviceOutput it was built with (device_driver.h), including when to stop and
// resume reading the device (SetCommandRunning).
#ifndef PIMAP_CORE_SESSION_SESSION_DRIVER_H_
#define PIMAP_CORE_SESSION_SESSION_DRIVER_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/imap/framer.h"
#include "core/session/hibernation.h"

namespace pimap::session {

class DeviceLink;

// How a regular session's relay parks a stock client's IDLE
// (relay_driver.h); set by the binding from the command line.
struct RelayParkConfig {
  int64_t park_after_ms = 0;  // 0: never park
  // "* OK Still here" to a parked client (Dovecot's imap_idle_notify_interval
  // default), so NATs and the client's own timer see traffic.
  int64_t keepalive_ms = 2 * 60 * 1000;
};

class SessionDriver {
 public:
  // What the binding's framer does after a command line.
  enum class Next {
    kContinue,
    // The driver refused the synchronising literal the line announced (no
    // "+" was sent): imap::Framer::RejectLiteral(), the command is over.
    kRejectLiteral,
  };

  SessionDriver() = default;
  SessionDriver(const SessionDriver&) = delete;
  SessionDriver& operator=(const SessionDriver&) = delete;

  // The framed command stream, as imap::Framer::Visitor sees it. A line that
  // ends in a synchronising literal the driver accepts is answered with a
  // "+" continuation through the output (a binding without round trips may
  // present every literal as non-synchronising).
  virtual Next OnCommandLine(absl::string_view line,
                             const imap::LiteralHeader* literal) = 0;
  virtual void OnLiteralData(absl::string_view chunk) = 0;
  virtual void OnCommandEnd() = 0;
  // A framing error; a fatal one is the binding's to end (BYE) afterwards.
  virtual void OnFrameError(const imap::FrameError& error) = 0;

  // Bytes arrived from the device (a pipelined command acknowledges only what
  // was written before them).
  virtual void OnInputArrived() = 0;
  // The device's output went below its high-water mark.
  virtual void OnOutputDrained() = 0;
  // The device is gone: no call reaches the output any more, the driver lets
  // go of its store side.
  virtual void Detach() = 0;
  // Detach(), then free the driver now or once the calls on the stack unwind.
  virtual void Release() = 0;

  // XTERSE (terse.h): whether status responses go out without their text,
  // and the switch (a binding carries it from before login to the session).
  virtual bool Terse() const { return false; }
  virtual void SetTerse(bool on) {}

  // Hibernation (hibernation.h): whether the session idles in the gateway's
  // own IDLE with nothing running, waiting or buffered, so that the binding
  // may keep only a small record and rebuild the session on the next event
  // or byte.
  virtual bool Hibernatable() const { return false; }
  // Hibernatable(): the session's events go to `keeper` from now on, its
  // state is returned, and this driver is left detached (Release() it).
  virtual HibernatedIdle Hibernate(DeviceLink* keeper) { return {}; }

 protected:
  virtual ~SessionDriver() = default;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_SESSION_DRIVER_H_
