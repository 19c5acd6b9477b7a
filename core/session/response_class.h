// What a store response means for a P-IMAP device, told from its first line
// and the running job (ClassifyResponse): passed through to the device as it
// streams, collected for the gateway's own use (the job's completion, the
// SEARCH results it asked for, news it journals), or dropped; and what else
// the line says that the session keeps (the folder's UIDVALIDITY, a SELECT's
// HIGHESTMODSEQ, new mail on a folder no event source covers).
//
// A pure function of the line and a snapshot of the driver's state
// (ResponseContext): the driver (device_driver_responses.cc) carries out the
// rest — the IDLE's "+" (the IDLE state machine decides), renumbering a FETCH
// from the device's view, the bytes. Tested on its own
// (tests/core/session/response_class_test.cc).
//
// Hazard: the device's view is by UID and its MSNs are the gateway's, so no
// numbered response of the store (EXISTS, EXPUNGE, FETCH) may reach the
// device as the store sent it: they are collected, renumbered, or dropped
// (the journal, fed by the user's watch, tells the device of such news).
#ifndef PIMAP_CORE_SESSION_RESPONSE_CLASS_H_
#define PIMAP_CORE_SESSION_RESPONSE_CLASS_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "core/session/command_state.h"

namespace pimap::session {

// The running job's responses are the gateway's own: none is passed through
// as it comes (a login's ENABLE and SELECT, view searches, verdicts, a
// borrowed link's preparation, a filtered STATUS's steps).
bool IsInternalJob(DeviceJob job);

// What the driver knows when a response starts.
struct ResponseContext {
  DeviceJob job = DeviceJob::kNone;
  absl::string_view job_up_tag;  // the tag of the running store command
  bool has_session = false;      // false: the session ended (LOGOUT, takeover)
  // The session's selected folder is not one the user's watch journals
  // (DeviceDriver::watched_folder): the device's own link is where its news
  // come from.
  bool unwatched = false;
  bool folder_selected = false;   // the session has a folder selected
  bool job_may_expunge = false;   // the device's command itself expunges
  bool device_condstore = false;  // the device ENABLEd CONDSTORE itself
};

struct ResponseClass {
  // What becomes of the response's bytes (kForward: passed through).
  RespAction action = RespAction::kDrop;
  // What the driver does besides.
  enum class Extra : uint8_t {
    kNone,
    // "+" of the store's IDLE: the IDLE state machine says whether it is the
    // device's (kForward) or ours (kDrop); the keepalive restarts.
    kIdleContinuation,
    // "* n EXISTS" on a folder no event source covers: look for new UIDs.
    kOwnNew,
    // "* n FETCH" of the device's own command: renumbered from the device's
    // view and passed through if the UID is in it, else dropped.
    kRenumberFetch,
  };
  Extra extra = Extra::kNone;
  // A [UIDVALIDITY n] that is the device's view's (not that of a folder the
  // gateway selects for itself).
  std::optional<uint32_t> uidvalidity;
  // The [HIGHESTMODSEQ n] of the SELECT (or resume's SELECT) that runs.
  std::optional<uint64_t> select_modseq;
};

// `line`: the response's first line without its CRLF.
ResponseClass ClassifyResponse(const ResponseContext& context,
                               absl::string_view line);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_RESPONSE_CLASS_H_
