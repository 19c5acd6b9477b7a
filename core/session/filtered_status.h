// FilteredStatus: STATUS of a folder under a view filter, or of a virtual
// folder (vfolder.h: its backing folder's, counted, the line renamed). The
// device sees a subset of the folder, so MESSAGES and UNSEEN must count that
// subset, not the store's whole folder; the other items (UIDNEXT, UIDVALIDITY,
// HIGHESTMODSEQ, RECENT) are the store's. The selected folder's view is at
// hand; another folder's is counted with the filter's search program after an
// EXAMINE of it on a pooled link (whose state the next borrower restores, so
// the device's own selection is not disturbed). Without a pool the store's
// numbers stand for a folder that is not selected.
//
// It owns the sequence of store commands (Step) and the numbers collected on
// the way, and performs no I/O: the driver (device_driver_status.cc) sends
// each step's Command(), feeds the responses in, and writes the answer. It
// lives in the driver's per-command state: an idle device holds none.
#ifndef PIMAP_CORE_SESSION_FILTERED_STATUS_H_
#define PIMAP_CORE_SESSION_FILTERED_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/session/session_registry.h"

namespace pimap::session {

class FilteredStatus {
 public:
  // The store commands, in order; some are skipped.
  enum class Step : uint8_t {
    kStatus,       // the store's STATUS, items as the device asked
    kExamine,      // EXAMINE of a folder not selected (on a pooled link)
    kCount,        // UID SEARCH RETURN (COUNT) <the view's program>
    kCountUnseen,  // ... UNSEEN, within the view
  };
  // What the driver does once a step has completed.
  enum class Outcome : uint8_t {
    kNext,           // send Command() for step()
    kAnswer,         // write TakeLine() (if not empty), then the tagged OK
    kAnswerAsStore,  // the store's STATUS failed or said nothing: its tagged
                     // answer is the device's, no line is rewritten
  };

  // For the device's STATUS `command` in `session`: null when the store's
  // numbers stand (a malformed command, a view of the whole folder, or a
  // folder not selected without a pool (`pooled`) to count it on).
  static std::optional<FilteredStatus> For(const imap::Command& command,
                                           const DeviceSession& session,
                                           bool pooled);

  Step step() const { return step_; }
  // The store's folder: a virtual folder's backing folder (vfolder.h).
  const std::string& folder() const { return folder_; }
  // The virtual folder asked for, empty for a real one.
  const std::string& vfolder() const { return vfolder_; }
  // Of the selected folder (counted from the view at hand, no EXAMINE).
  bool selected() const { return selected_; }

  // The store command of step() (kStatus: the device's own, which the driver
  // renders), with the view's search program at `now`.
  std::string Command(const DeviceSession& session) const;

  // The store's "* STATUS" line (without CRLF) of kStatus.
  void OnStatusLine(absl::string_view body) { line_ = std::string(body); }
  // An ESEARCH COUNT of kCount / kCountUnseen.
  void OnCount(uint32_t count) { count_ = count; }

  // step() completed (`ok`: tagged OK). `view_empty`: the device's view of the
  // selected folder is empty (nothing to count UNSEEN in).
  Outcome StepDone(bool ok, bool view_empty);

  // The store's STATUS line with the view's counts (the store's numbers when
  // the EXAMINE failed); empty when the store sent none.
  std::string TakeLine();

 private:
  FilteredStatus(std::string folder, std::string vfolder, FilterSpec spec,
                 bool selected, bool unseen_asked, uint32_t view_messages);

  std::string folder_;
  std::string vfolder_;
  FilterSpec spec_;   // the view's
  std::string line_;  // the store's "* STATUS" line
  uint32_t messages_ = 0;
  uint32_t unseen_count_ = 0;
  uint32_t count_ = 0;  // the last ESEARCH COUNT
  Step step_ = Step::kStatus;
  bool selected_ = false;
  bool unseen_asked_ = false;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_FILTERED_STATUS_H_
