// The session engine's side of its store links on demand (device_driver.h):
// with a pool, a device holds a store link only while one of its commands
// runs. A job that finds no link waits (kAcquire) for one from the pool, which
// is then brought to the session's state (ENABLE QRESYNC, SELECT of the
// device's folder, a NOOP when the store has reported events the link may not
// show yet) before the job is sent. Between commands, and while the gateway
// itself answers an IDLE, the link goes back to the pool. The link itself,
// the borrowing and the lent link's state are LinkBorrower's
// (link_borrower.h); here: what a job needs of the link, the queued job, when
// the link may go back, and what the device is told when there is none.
//
// Hazard: a link is shared by every device of the user in turn. It goes back
// only at a command boundary (no tagged command of ours or the device's in
// flight, no response half read), or closed, never mid-response: the next
// borrower would read the rest of someone else's answer.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/session/device_driver.h"
#include "core/session/store_text.h"

namespace pimap::session {

bool DeviceDriver::covered_folder(absl::string_view folder) const {
  const SessionConfig& config = services_.registry->config();
  // A shared or public folder changes by other users' transactions: the
  // user's pushes do not report them, nor does the watch's NOTIFY `personal`;
  // but the watch (in any mode: with pushes alone, a cover watch) names the
  // ones connected devices have selected in its NOTIFY
  // (SessionRegistry::RefreshCoveredFolders), and covers each once it has
  // looked at it (its UIDVALIDITY known below). Until then the device hears
  // of changes there over its own link.
  const bool personal = services_.registry->PersonalFolder(folder);
  // The store's pushes report every mailbox of the user. The watch IDLEs on
  // INBOX and catches up on every other folder it holds a baseline of
  // (store/folder_catchup.h); a folder it does not track (past its cap, not
  // listed yet, the device's view of another UIDVALIDITY) learns its news over
  // the device's own link.
  if (personal && config.pushes) return true;
  if (personal && !config.watch) return false;
  if (folder.empty() || absl::EqualsIgnoreCase(folder, "INBOX")) return true;
  const uint32_t watched = services_.registry->WatchUidvalidity(user_, folder);
  if (watched == 0) return false;
  return session_ == nullptr || folder != session_->selected_folder ||
         session_->view_uidvalidity == 0 ||
         session_->view_uidvalidity == watched;
}

std::string DeviceDriver::FolderFor(Job job) const {
  // These select a folder themselves.
  if (job == Job::kEnable || job == Job::kResumeSelect || job == Job::kSelect ||
      job == Job::kStatusExamine) {
    return "";
  }
  // The view of a folder the device has not selected is counted where a
  // kStatusExamine left the link.
  if ((job == Job::kStatusCount || job == Job::kStatusUnseen) &&
      cmd().status.has_value() && !cmd().status->selected()) {
    return cmd().status->folder();
  }
  // XDELIVER's original is read and flagged in its own folder.
  if ((job == Job::kXdeliverFetch || job == Job::kXdeliverFlag) &&
      cmd().xdeliver != nullptr && !cmd().xdeliver->folder().empty()) {
    return cmd().xdeliver->folder();
  }
  if (session_ != nullptr && !session_->selected_folder.empty()) {
    return session_->selected_folder;
  }
  // CLOSE (and the UID EXPUNGE that stands for it under a view filter) acts on
  // the folder the device just left.
  if (job == Job::kCloseExpunge || (job == Job::kPlain && cmd().closing))
    return cmd().close_folder;
  return "";
}

bool DeviceDriver::WantsReadOnly(Job job) const {
  if ((job == Job::kStatusCount || job == Job::kStatusUnseen) &&
      cmd().status.has_value() && !cmd().status->selected()) {
    return true;  // counted in an EXAMINEd folder: nothing changes there
  }
  if ((job == Job::kXdeliverFetch || job == Job::kXdeliverFlag) &&
      cmd().xdeliver != nullptr && session_ != nullptr &&
      cmd().xdeliver->folder() != session_->selected_folder) {
    return false;  // the original's flag is set there
  }
  return session_ != nullptr && session_->read_only;
}

LinkNeed DeviceDriver::NeedOf(Job job) const {
  LinkNeed need;
  need.qresync = job != Job::kEnable;
  need.folder = FolderFor(job);
  need.read_only = WantsReadOnly(job);
  need.synced = job != Job::kEvalSync;
  need.events = services_.registry->EventsReceived(user_);
  if (session_ != nullptr && !need.folder.empty() &&
      need.folder == session_->selected_folder &&
      !covered_folder(need.folder) && session_->view_uidvalidity != 0 &&
      session_->view_modseq != 0) {
    // No event source covers this folder: what changed since the device's
    // view was last known comes with the SELECT (VANISHED (EARLIER), FETCH
    // FLAGS; new mail by EXISTS) and is journaled like any news.
    need.select_qresync =
        absl::StrCat(" (QRESYNC (", session_->view_uidvalidity, " ",
                     session_->view_modseq, "))");
  }
  return need;
}

void DeviceDriver::QueueJob(Job job, const std::string& device_tag,
                            std::string command) {
  cmd().queued = QueuedJob{job, device_tag, std::move(command)};
  job_ = Job::kAcquire;
  job_device_tag_ = device_tag;
  Paused(true, false);
  if (link() == nullptr) {
    AcquireLink();
  } else {
    PrepareLink();
  }
}

void DeviceDriver::AcquireLink() {
  links_.Acquire(this, services_.pool, services_.borrow_timeout_ms, alive_);
}

StoreCredentials DeviceDriver::LinkCredentials() const {
  return services_.registry->LinkCredentials(user_);
}

bool DeviceDriver::StorePasswordRejected() const {
  return services_.registry->StorePasswordRejected(user_);
}

void DeviceDriver::OnStoreLoginRejected(const std::string& password) {
  registry().OnStoreLoginRejected(user_, password);
}

void DeviceDriver::FromOutside(absl::FunctionRef<void()> call) {
  Busy busy(this);
  call();
}

void DeviceDriver::OnNoLink(const absl::Status& pool_error,
                            absl::string_view why) {
  if (!pool_error.ok()) {
    PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event(
        "store.unavailable")
        << "no store link: " << pool_error.message();
  }
  OnLinkFailed(why);
}

void DeviceDriver::OnLinkBorrowed() {
  cmd().resp_first = true;
  registry().RememberCapabilities(link()->capabilities());
  if (!cmd().relay_buffer.empty()) {
    link()->Send(cmd().relay_buffer);
    cmd().relay_buffer.clear();
    if (output_ != nullptr) output_->RelayDrained();
  }
  if (cmd().queued.has_value()) {
    PrepareLink();
  } else {
    MaybeReturnLink();
  }
}

bool DeviceDriver::PrepareLink() {
  const QueuedJob& queued = *cmd().queued;
  LinkStep step = links_.NextStep(NeedOf(queued.job));
  if (step.job != Job::kNone) {
    if (step.job == Job::kLinkSelect)
      cmd().prep_folder = std::move(step.folder);
    SendJob(step.job, queued.device_tag, std::move(step.command));
    return true;
  }
  QueuedJob job = std::move(*cmd().queued);
  cmd().queued.reset();
  SendJob(job.job, job.device_tag, std::move(job.command));
  return false;
}

void DeviceDriver::OnPrepDone(bool ok) {
  if (!ok) {
    // The folder cannot be selected on this link (deleted or renamed
    // meanwhile): the device's command cannot run.
    OnLinkFailed("The folder is not available on the message store");
    return;
  }
  if (job_ == Job::kLinkEnable || job_ == Job::kLinkSelect) {
    links_.StepDone(job_, cmd().prep_folder,
                    WantsReadOnly(cmd().queued.has_value() ? cmd().queued->job
                                                           : Job::kNone));
  }
  job_ = Job::kAcquire;
  PrepareLink();
}

void DeviceDriver::MaybeReturnLink() {
  if (services_.pool == nullptr || links_.lent() == nullptr) return;
  if (cmd().queued.has_value() || !relayed_tags_.empty() || cmd().passing ||
      !cmd().resp_first)
    return;
  const bool between_commands = job_ == Job::kNone || LocalIdleAtRest();
  if (!between_commands) return;
  // A folder no event source covers learns its news over the device's link:
  // keep it.
  if (session_ != nullptr && !covered_folder(session_->selected_folder)) return;
  links_.Return(services_.pool, /*reusable=*/true);
}

void DeviceDriver::OnLinkFailed(absl::string_view why) {
  cmd().queued.reset();
  if (output_ == nullptr) return;
  if (!relayed_tags_.empty() || !cmd().relay_buffer.empty()) {
    // A command relayed verbatim cannot be answered for the store.
    output_->EndSession("Connection to the message store lost");
    return;
  }
  if (!logged_in_) {
    job_ = Job::kNone;
    Paused(false, false);  // the binding reads again once the login is answered
    std::string out;
    imap::AppendTaggedStatus(
        &out, login_tag_, "NO", "UNAVAILABLE",
        "The message store is not available; try again later");
    if (session_ != nullptr) {
      registry().Detach(session_, this);
      session_ = nullptr;
    }
    Write(std::move(out));
    output_->LoginDone(false);
    return;
  }
  // New mail held for its FETCH (kNewFetch in IDLE): the events are the
  // device's (their journal positions count as delivered) and go now, whether
  // its IDLE survives or ends; the FETCH that did not complete does not.
  cmd().pushed_fetch.clear();
  WriteHeldEvents();
  if (LocalIdleSurvivesLinkLoss()) return;
  AbortCommand(why);
}

void DeviceDriver::AbortCommand(absl::string_view why) {
  const std::string tag = job_device_tag_;
  // An XDELIVER whose message the MTA took: the copy or the flag is what the
  // store's loss costs, never the sending (a NO would make the device send it
  // again, and the recipients get it twice).
  const bool sent = cmd().xdeliver != nullptr && cmd().xdeliver->submitted();
  job_ = Job::kNone;
  live_resync_ = false;
  xfilter_resync_ = false;
  idle_.Reset();
  if (cmd().Abort() && output_ != nullptr) output_->EndPassThrough();
  std::string out;
  if (!tag.empty() && sent) {
    imap::AppendTaggedStatus(
        &out, tag, "OK", "",
        absl::StrCat("XDELIVER completed; the message was sent, but no copy "
                     "was saved or flag set: ",
                     why));
  } else if (!tag.empty()) {
    imap::AppendTaggedStatus(&out, tag, "NO", "UNAVAILABLE", why);
  }
  MaybeReturnLink();
  Write(std::move(out));
  Paused(false, true);
}

void DeviceDriver::BeginRelayed(absl::string_view device_tag) {
  relayed_tags_.emplace_back(device_tag);
}

void DeviceDriver::RelayBytes(absl::string_view bytes) {
  if (link() != nullptr) {
    link()->Send(bytes);
    return;
  }
  // Held until a link comes; the binding stops reading past its high-water
  // mark (RelayPending), so this stays bounded.
  cmd().relay_buffer.append(bytes.data(), bytes.size());
  AcquireLink();
}

size_t DeviceDriver::RelayPending() const {
  return cmd().relay_buffer.size() +
         (link() != nullptr ? link()->PendingOutput() : 0);
}

}  // namespace pimap::session
