// XSYNC, a pimapd command group (docs/xsync.md): a folder's state-comparison
// sync (protocol.md §4.5, [Modern] reading with CONDSTORE/QRESYNC) in one
// round trip:
//
//   C: y XSYNC INBOX 1700000000 1234 140 (HEADERS (From Subject Date))
//   S: <what SELECT, the changed-flags FETCH, the UID SEARCH and the new-mail
//       FETCH answer, untagged, in that order>
//   S: y OK [XSYNC 4] XSYNC completed
//
// This file owns the command's syntax and its plan: the ordinary IMAP
// commands it stands for, each with the tag it runs under, and the one answer
// that replaces their tagged completions (a step's failure stops the group
// and is reported with the step and the store's own words). Running the plan
// is the router's (command_router_xsync.cc).
#ifndef PIMAP_CORE_SESSION_XSYNC_H_
#define PIMAP_CORE_SESSION_XSYNC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"

namespace pimap::session {

// What the client knows of the folder: "XSYNC mailbox uidvalidity modseq
// last-uid [(HEADERS (field ...))]". uidvalidity 0: nothing known (a first
// sync: every message is new).
struct XsyncRequest {
  std::string mailbox;
  uint32_t uidvalidity = 0;
  uint64_t modseq = 0;    // the HIGHESTMODSEQ the client last saw
  uint32_t last_uid = 0;  // the highest UID the client has
  // The header fields fetched for new mail (default: From To Cc Subject Date
  // Message-ID); at most kMaxHeaderFields.
  std::vector<std::string> headers;
};

inline constexpr size_t kMaxXsyncHeaderFields = 32;

// The request from the command's arguments; InvalidArgument (for BAD) with a
// message that says what is wrong.
absl::StatusOr<XsyncRequest> ParseXsync(const std::vector<imap::Arg>& args);

// One step of the plan: an ordinary command line (no CRLF) run under `tag`.
struct XsyncStep {
  std::string name;  // for the answer: "SELECT", "FETCH CHANGED", ...
  std::string tag;   // "<group tag>.<n>": never shown to the device
  std::string line;  // "<tag> SELECT ..."
};

// The steps for `request` under the group's `tag`. `qresync`: the session
// offers QRESYNC (a regular session on a store that has it): SELECT reports
// expunged UIDs itself (VANISHED (EARLIER)) and changed flags, so the plan is
// SELECT + new mail. Otherwise (a P-IMAP session renumbers MSNs and offers
// CONDSTORE only): SELECT (CONDSTORE), the known UIDs changed since `modseq`,
// the known UIDs still there (UID SEARCH: the client drops the others), and
// new mail. A first sync (uidvalidity 0) is SELECT + new mail from UID 1.
std::vector<XsyncStep> PlanXsync(const XsyncRequest& request,
                                 absl::string_view tag, bool qresync);

// A group that runs: the plan and how far it got (the router's).
struct XsyncRun {
  std::string tag;
  XsyncRequest request;
  std::vector<XsyncStep> plan;
  size_t next = 0;          // the step running
  bool held_input = false;  // a step stopped reading the device
};

// The UIDVALIDITY a SELECT's untagged "* OK [UIDVALIDITY n]" reports in
// `responses` (a SELECT's: no literals), or 0.
uint32_t UidValidityIn(absl::string_view responses);

// The group's answer: every step completed OK.
std::string XsyncOk(absl::string_view tag, size_t steps);
// Step `index` (0-based) of `plan` answered `status` ("NO"/"BAD") with
// `rest` (its resp-text, code included): the group stops there.
std::string XsyncFailed(absl::string_view tag, size_t index,
                        const XsyncStep& step, absl::string_view status,
                        absl::string_view rest);
// The folder's UIDVALIDITY is not the client's: the data already sent (the
// SELECT's) stands, the rest of the plan does not run; the client starts a
// full sync.
std::string XsyncUidValidityChanged(absl::string_view tag,
                                    uint32_t uidvalidity);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_XSYNC_H_
