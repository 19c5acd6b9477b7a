// One XDELIVER's steps (protocol.md §3.6, docs/xdeliver.md), shared by both
// session engines: a P-IMAP device's (device_driver_xdeliver.cc) and a
// regular relayed session's (relay_driver_xdeliver.cc). The run decides what
// comes next and builds each store command; the engine only carries it out
// (on its store link, or the MailSubmitter for kSubmit) and reports back:
//   kFetch   UID FETCH <uid> (BODY.PEEK[]) in folder() (R/F only);
//   kSubmit  the composed message to the MTA (TakeMail());
//   kAppend  the SAVETO copy, after the MTA's 250 only;
//   kFlag    \Answered or $Forwarded on the original (R/F);
//   kDone    answer() is the tagged status's rest ("OK [APPENDUID ...] ...").
// Nothing of the store changes before the MTA accepted the message, so a
// refused message leaves no copy and no flag.
#ifndef PIMAP_CORE_SESSION_XDELIVER_RUN_H_
#define PIMAP_CORE_SESSION_XDELIVER_RUN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/mail/compose.h"
#include "core/mail/xdeliver_request.h"

namespace pimap::session {

// What the engine knows when the XDELIVER starts.
struct XdeliverContext {
  std::string sender;           // the address the user sends as
  std::string selected_folder;  // empty: none selected
  // The engine can read and flag an original outside the selected folder.
  bool other_folders = false;
  // The selected folder is read-only (EXAMINE): with other_folders, the
  // original's flag is set elsewhere, where the STORE can succeed.
  bool selected_read_only = false;
  bool literal_plus = false;  // the store takes LITERAL+ (the SAVETO copy)
  // The original's flag is set with +FLAGS.SILENT (the engine tells the
  // device itself); else the store's FETCH about it reaches the client.
  bool silent_flag = true;
  std::string boundary_seed;  // a fresh one per message
  // The store folder a mailbox name stands for (a virtual folder's backing
  // folder, docs/xpsearch.md), applied to the original's mailbox and SAVETO=;
  // unset: names are the store's own.
  std::function<std::string(absl::string_view)> store_folder;
};

// The address `user` sends as: the login name if it is an address, else
// user@`domain` (--smtp-sender-domain); empty: none can be made.
std::string XdeliverSender(absl::string_view user, absl::string_view domain);

class XdeliverRun {
 public:
  enum class Step : uint8_t { kFetch, kSubmit, kAppend, kFlag, kDone };

  // Parses and checks `command`. InvalidArgument: the device's BAD; any
  // other error: NO [CANNOT] with the status's message.
  static absl::StatusOr<std::unique_ptr<XdeliverRun>> Start(
      const imap::Command& command, XdeliverContext context);

  Step step() const { return step_; }
  // R/F: the original's folder ("INBOX" spelled so), else empty.
  const std::string& folder() const { return folder_; }
  // R/F: the original is outside the selected folder (so the engine runs
  // kFetch and kFlag elsewhere than on the device's own link).
  bool elsewhere() const {
    return !folder_.empty() && folder_ != context_.selected_folder;
  }
  // The current step's store command runs elsewhere than on the engine's own
  // link: kFetch when elsewhere(), kFlag also when the selected folder is
  // read-only (and other_folders).
  bool StepElsewhere() const;
  // The MTA took the message (its 250): whatever fails after, the answer is
  // OK, or the device would send it again.
  bool submitted() const { return submitted_; }
  // kFetch, kAppend, kFlag: the store command, untagged.
  std::string StoreCommand();
  // kFetch: a whole FETCH response the store sent meanwhile; true when it
  // was the original's (the engine keeps it from the device).
  bool TakeOriginal(absl::string_view response);
  // The store command of the step ended (`rest`: its tagged status's rest).
  void OnStoreDone(bool ok, absl::string_view rest);
  // The step's store command could not run, or its link was lost before
  // its end: at kFetch the answer is NO [UNAVAILABLE] `why`.
  void OnStoreUnavailable(absl::string_view why);
  // kFetch: the engine dropped a response too large to hold (its bound is
  // above --max-xdeliver-bytes): if the original is not found, the answer
  // is NO [LIMIT], not NO [NONEXISTENT].
  void OnResponseDropped();
  // kSubmit: the message for the MTA (once), then OnSubmitted() with the
  // MTA's verdict.
  mail::OutgoingMail TakeMail();
  void OnSubmitted(const absl::Status& status);
  // kDone: the tagged answer's rest: "OK ..." or "NO ...", control
  // characters of the MTA's reply blanked.
  const std::string& answer() const { return answer_; }

 private:
  XdeliverRun() = default;
  void Compose();
  void AfterSubmit();
  void AfterAppend();
  void Finish(absl::string_view rest);

  XdeliverContext context_;
  mail::XdeliverRequest request_;
  Step step_ = Step::kDone;
  std::string folder_;
  std::string original_;  // R/F: the original, whole (empty: not found)
  mail::OutgoingMail mail_;
  std::string sent_;       // the message as submitted (the SAVETO copy)
  std::string appenduid_;  // "APPENDUID <uidvalidity> <uid>" of the copy
  bool submitted_ = false;
  bool dropped_ = false;  // OnResponseDropped() at kFetch
  std::string answer_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_XDELIVER_RUN_H_
