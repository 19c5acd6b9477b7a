// The session engine's store links on demand (device_driver.h): with a pool, a
// device holds a store link only while one of its commands runs. A job that
// finds no link waits (kAcquire) for one from the pool, which is then brought
// to the session's state (ENABLE QRESYNC, SELECT of the device's folder, a NOOP
// when the store has reported events the link may not show yet) before the job
// is sent. Between commands, and while the gateway itself answers an IDLE, the
// link goes back to the pool.
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
  // A shared or public folder changes by other users' transactions: neither
  // the user's pushes nor the watch's NOTIFY `personal` report them, so the
  // device hears of changes there over its own link.
  if (!services_.registry->PersonalFolder(folder)) return false;
  // The store's pushes report every mailbox of the user. The watch IDLEs on
  // INBOX and catches up on every other folder it holds a baseline of
  // (store/folder_catchup.h); a folder it does not track (past its cap, not
  // listed yet, the device's view of another UIDVALIDITY) learns its news over
  // the device's own link.
  if (config.pushes) return true;
  if (!config.watch) return false;
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
  return session_ != nullptr && session_->read_only;
}

bool DeviceDriver::LinkBehind(Job job) const {
  if (lent_ == nullptr) return false;  // a link of its own is always in state
  if (job != Job::kEnable && !lent_->qresync_enabled) return true;
  const std::string folder = FolderFor(job);
  if (folder.empty()) return false;
  if (lent_->selected_folder != folder ||
      lent_->read_only != WantsReadOnly(job))
    return true;
  return job != Job::kEvalSync &&
         lent_->synced_events < services_.registry->EventsReceived(user_);
}

void DeviceDriver::QueueJob(Job job, const std::string& device_tag,
                            std::string command) {
  cmd().queued = QueuedJob{job, device_tag, std::move(command)};
  job_ = Job::kAcquire;
  job_device_tag_ = device_tag;
  Paused(true, false);
  if (link_ == nullptr) {
    AcquireLink();
  } else {
    PrepareLink();
  }
}

void DeviceDriver::AcquireLink() {
  if (acquiring_) return;
  StoreLinkPool* pool = services_.pool;
  if (pool == nullptr) {
    OnLinkFailed("The connection to the message store is gone");
    return;
  }
  const StoreCredentials credentials = registry().LinkCredentials(user_);
  if (PooledLink* warm = pool->TryBorrow(credentials); warm != nullptr) {
    OnLinkBorrowed(warm);  // no round trip for a warm link
    return;
  }
  if (registry().StorePasswordRejected(user_)) {
    // Each try would be one more failed login at the store (and its lockout
    // counter): none until the user logs in with a password it accepts.
    OnLinkFailed("The message store rejected the password; log in again");
    return;
  }
  acquiring_ = true;
  std::weak_ptr<bool> alive = alive_;
  pool->Borrow(credentials, services_.borrow_timeout_ms,
               [this, alive, pool, password = credentials.password](
                   absl::StatusOr<PooledLink*> link) {
                 if (alive.expired()) {  // the device went away meanwhile
                   if (link.ok()) pool->Return(*link, true);
                   return;
                 }
                 Busy busy(this);
                 acquiring_ = false;
                 if (absl::IsUnauthenticated(link.status())) {
                   registry().OnStoreLoginRejected(user_, password);
                 }
                 OnLinkBorrowed(std::move(link));
               });
}

void DeviceDriver::OnLinkBorrowed(absl::StatusOr<PooledLink*> link) {
  if (!link.ok()) {
    PIMAP_LOG(INFO) << client_
                    << " no store link for user=" << imap::QuoteForLog(user_)
                    << ": " << link.status().message();
    OnLinkFailed("The message store is not available; try again later");
    return;
  }
  lent_ = *link;
  link_ = lent_->link;
  link_->SetClient(this);
  link_->SetReading(true);
  store_paused_ = false;
  cmd().resp_first = true;
  registry().RememberCapabilities(link_->capabilities());
  if (!cmd().relay_buffer.empty()) {
    link_->Send(cmd().relay_buffer);
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
  if (lent_ != nullptr) {
    if (!lent_->qresync_enabled && queued.job != Job::kEnable) {
      SendJob(Job::kLinkEnable, queued.device_tag, "ENABLE QRESYNC");
      return true;
    }
    const std::string folder = FolderFor(queued.job);
    const bool read_only = WantsReadOnly(queued.job);
    if (!folder.empty() &&
        (lent_->selected_folder != folder || lent_->read_only != read_only)) {
      lent_->selected_folder.clear();  // known again once the SELECT completed
      cmd().prep_folder = folder;
      std::string qresync;
      if (session_ != nullptr && folder == session_->selected_folder &&
          !covered_folder(folder) && session_->view_uidvalidity != 0 &&
          session_->view_modseq != 0) {
        // No event source covers this folder: what changed since the device's
        // view was last known comes with the SELECT (VANISHED (EARLIER), FETCH
        // FLAGS; new mail by EXISTS) and is journaled like any news.
        qresync = absl::StrCat(" (QRESYNC (", session_->view_uidvalidity, " ",
                               session_->view_modseq, "))");
      }
      SendJob(Job::kLinkSelect, queued.device_tag,
              absl::StrCat(read_only ? "EXAMINE " : "SELECT ",
                           QuotedMailbox(folder), qresync));
      return true;
    }
    if (LinkBehind(queued.job)) {
      // The store reported events (the journal has them); this link must show
      // them before it answers for the device (a FETCH of the new message).
      SendJob(Job::kLinkSync, queued.device_tag, "NOOP");
      return true;
    }
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
  if (job_ == Job::kLinkEnable) lent_->qresync_enabled = true;
  if (job_ == Job::kLinkSelect) {
    lent_->selected_folder = cmd().prep_folder;
    lent_->read_only =
        WantsReadOnly(cmd().queued.has_value() ? cmd().queued->job : Job::kNone);
  }
  job_ = Job::kAcquire;
  PrepareLink();
}

void DeviceDriver::MaybeReturnLink() {
  if (services_.pool == nullptr || lent_ == nullptr) return;
  if (cmd().queued.has_value() || !relayed_tags_.empty() || cmd().passing ||
      !cmd().resp_first)
    return;
  const bool between_commands = job_ == Job::kNone || LocalIdleAtRest();
  if (!between_commands) return;
  // A folder no event source covers learns its news over the device's link:
  // keep it.
  if (session_ != nullptr && !covered_folder(session_->selected_folder)) return;
  store_paused_ = false;
  services_.pool->Return(lent_, /*reusable=*/true);
  lent_ = nullptr;
  link_ = nullptr;
}

void DeviceDriver::OnLinkFailed(absl::string_view why) {
  acquiring_ = false;
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
  if (LocalIdleSurvivesLinkLoss()) return;
  AbortCommand(why);
}

void DeviceDriver::AbortCommand(absl::string_view why) {
  const std::string tag = job_device_tag_;
  job_ = Job::kNone;
  live_resync_ = false;
  xfilter_resync_ = false;
  idle_.Reset();
  if (cmd().Abort() && output_ != nullptr) output_->EndPassThrough();
  std::string out;
  if (!tag.empty())
    imap::AppendTaggedStatus(&out, tag, "NO", "UNAVAILABLE", why);
  MaybeReturnLink();
  Write(std::move(out));
  Paused(false, true);
}

void DeviceDriver::AdoptLoginLink(StoreLink* link) {
  if (services_.pool != nullptr) {
    lent_ = services_.pool->Adopt(registry().LinkCredentials(user_), link);
  }
  link_ = link;
  link_->SetClient(this);
}

void DeviceDriver::BeginRelayed(absl::string_view device_tag) {
  relayed_tags_.emplace_back(device_tag);
}

void DeviceDriver::RelayBytes(absl::string_view bytes) {
  if (link_ != nullptr) {
    link_->Send(bytes);
    return;
  }
  // Held until a link comes; the binding stops reading past its high-water
  // mark (RelayPending), so this stays bounded.
  cmd().relay_buffer.append(bytes.data(), bytes.size());
  AcquireLink();
}

size_t DeviceDriver::RelayPending() const {
  return cmd().relay_buffer.size() +
         (link_ != nullptr ? link_->PendingOutput() : 0);
}

}  // namespace pimap::session
