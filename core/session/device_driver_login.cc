// The session engine's login side (device_driver.h): a device's session is
// attached (resumed or new) and made ready before its login is answered:
// ENABLE QRESYNC on the store link, then for a resumed session in a folder the
// folder's SELECT and, when the journal cannot say what the device missed, an
// exact rebuild from the store (CONDSTORE) or a RESYNC.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/session/capabilities.h"
#include "core/session/event_frames.h"
#include "core/session/device_driver.h"
#include "core/session/store_text.h"

namespace pimap::session {

void DeviceDriver::Start(StoreLink* link, std::string login_tag,
                         const std::string& password,
                         const ClientAddress& client) {
  Busy busy(this);
  login_tag_ = std::move(login_tag);
  client_ = client;
  StoreCredentials credentials{user_, password, ""};
  credentials.origin = client;  // pooled links this device's commands open
  session_ = registry().Attach(user_, device_, credentials, this, &resumed_);
  if (session_ == nullptr) {
    // A new device past --max-devices-per-user: refused, not evicting
    // another (README, "Limits"); nothing was created for it.
    PIMAP_LOG(INFO)
            .Conn(client_)
            .User(user_)
            .Device(device_)
            .Event("login.refused")
            .Field("reason", "too_many_devices")
        << "login refused: too many devices";
    if (link != nullptr) link->Close();
    std::string out;
    imap::AppendTaggedStatus(&out, login_tag_, "NO", "LIMIT",
                             "Too many devices for this user");
    Write(std::move(out));
    if (output_ != nullptr) output_->LoginDone(false);
    return;
  }
  if (resumed_) {
    PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event(
        "session.resume")
        << "session resumed";
  }
  if (link != nullptr) {
    registry().RememberCapabilities(link->capabilities());
    links_.Adopt(services_.pool, registry().LinkCredentials(user_), link, this);
  } else if (services_.pool != nullptr && JournalSuffices()) {
    // Admitted by the auth cache, and the journal knows what the device
    // missed: the login costs the store nothing. Links get ENABLE QRESYNC and
    // the folder's SELECT when a command borrows one.
    FinishLogin();
    return;
  }
  // Everything this connection asks the store is by UID, and expunges come back
  // as VANISHED UIDs, so the device's MSNs can be rendered from its own view.
  SendJob(Job::kEnable, "", "ENABLE QRESYNC");
}

bool DeviceDriver::JournalSuffices() const {
  const DeviceSession& s = *session_;
  if (!resumed_ || s.selected_folder.empty()) return true;
  const SessionConfig& config = services_.registry->config();
  // Only the watch journals every change (pushes are hints, reconciled at
  // resume); a restored session has no journal; an overflow or an uncertain
  // EXPUNGE needs the store; a new UIDVALIDITY needs a RESYNC.
  if (!config.watch || config.pushes || s.restored ||
      s.journal.NeedsRebuild(s.selected_folder) || s.view_uidvalidity == 0) {
    return false;
  }
  // The watch journals INBOX and every folder it holds a baseline of.
  return services_.registry->WatchUidvalidity(user_, s.selected_folder) ==
         s.view_uidvalidity;
}

void DeviceDriver::FinishLogin() {
  std::string out;
  // A resumed session's folder may be one the watch is to cover.
  registry().RefreshCoveredFolders(user_);
  if (resumed_) {
    counters().session_resumes.fetch_add(1, std::memory_order_relaxed);
    if (!session_->selected_folder.empty()) {
      out += "* SESSION SELECTED\r\n* FOLDER ";
      // The device selected what it names: a virtual folder by its own name.
      imap::AppendAstring(&out, session_->selected_vfolder.empty()
                                    ? session_->selected_folder
                                    : session_->selected_vfolder);
      out += "\r\n";
      if (resync_pending_) {
        resync_pending_ = false;
        counters().resyncs.fetch_add(1, std::memory_order_relaxed);
        absl::StrAppend(&out, "* RESYNC\r\n* ", session_->view.size(),
                        " EXISTS\r\n");
      } else if (rebuilt_) {
        // The rebuild marked its view changes when it made them; they leave
        // now, and the device acknowledges them only after this.
        if (session_->checkpoint_dirty) registry().MarkViewChanged(*session_);
        out += cmd().rebuild_output;
        cmd().rebuild_output.clear();
        rebuilt_ = false;
      } else {
        out += RenderPending(true, SIZE_MAX, /*replay=*/true);
      }
    } else {
      out += "* SESSION AUTHENTICATED\r\n";
    }
  }
  // Folders created, deleted or renamed while the device was away.
  for (const std::string& line : session_->folder_events)
    absl::StrAppend(&out, line, "\r\n");
  session_->folder_events_written = session_->folder_events.size();
  absl::StrAppend(&out, "* SESSIONID ", session_->session_id, "\r\n");
  imap::AppendTaggedStatus(
      &out, login_tag_, "OK",
      absl::StrCat("CAPABILITY ",
                   PostAuthCapabilities(store_capabilities(), true,
                                        output_->OffersCompression(),
                                        ExtraCapabilities(services_))),
      "Logged in");
  job_ = Job::kNone;
  logged_in_ = true;
  MaybeReturnLink();
  Write(std::move(out));
  if (output_ != nullptr) output_->LoginDone(true);
}

void DeviceDriver::OnLoginJobDone(bool ok) {
  DeviceSession* s = session_;
  switch (job_) {
    case Job::kEnable:
      if (!ok) {
        PIMAP_LOG(WARNING).Conn(client_).User(user_).Device(device_)
            << "store refused ENABLE QRESYNC: P-IMAP session refused";
        registry().End(session_);
        session_ = nullptr;
        std::string out;
        imap::AppendTaggedStatus(
            &out, login_tag_, "NO", "CANNOT",
            "The message store lacks QRESYNC, which P-IMAP sessions need");
        job_ = Job::kNone;
        Paused(false, false);
        links_.CloseLink(services_.pool);
        Write(std::move(out));
        if (output_ != nullptr) output_->LoginDone(false);
        return;
      }
      if (resumed_ && !s->selected_folder.empty()) {
        const std::string folder_arg = QuotedMailbox(s->selected_folder);
        resume_uidvalidity_ = s->view_uidvalidity;
        cmd().job_modseq = 0;
        SendJob(
            Job::kResumeSelect, "",
            absl::StrCat(s->read_only ? "EXAMINE " : "SELECT ", folder_arg));
        return;
      }
      Paused(false, false);
      FinishLogin();
      return;
    case Job::kResumeSelect: {
      const uint32_t saved = resume_uidvalidity_;
      if (!ok) {
        s->selected_folder.clear();
        s->selected_vfolder.clear();
        Paused(false, false);
        FinishLogin();
        return;
      }
      const bool uidvalidity_changed =
          saved != 0 && saved != s->view_uidvalidity;
      const bool uncertain = s->journal.Uncertain(s->selected_folder);
      // The user's watch journals INBOX only; for any other folder the journal
      // cannot know what happened, so the resume asks the store instead.
      // With store pushes only, notifications may have been lost (the store
      // drops them when we are slow or down): every resume checks with the
      // store.
      const bool watched = registry().config().watch &&
                           absl::EqualsIgnoreCase(s->selected_folder, "INBOX");
      const bool lost = s->restored || !watched ||
                        s->journal.NeedsRebuild(s->selected_folder);
      if (!uidvalidity_changed && !uncertain && lost && s->view_modseq != 0) {
        // The journal cannot tell what the device missed, but its view and the
        // MODSEQ it reflects can: ask the store exactly what changed since
        // (CONDSTORE/QRESYNC), instead of a RESYNC.
        cmd().rebuild_output.clear();
        // New mail rendered before the disconnect but never acknowledged is in
        // the view, and the rebuild drops its replay: the device may lack its
        // EXISTS, so say the count again (idempotent) before the rebuild's
        // lines, which may name those messages' MSNs.
        for (const StoreEvent* e : s->journal.Undelivered(s->selected_folder)) {
          if (e->kind == EventKind::kNew && s->view.Contains(e->uid)) {
            cmd().rebuild_output =
                absl::StrCat("* ", s->view.size(), " EXISTS\r\n");
            break;
          }
        }
        SendJob(Job::kRebuild, "",
                s->view.empty()
                    ? std::string("NOOP")
                    : absl::StrCat("UID FETCH ", SetOf(s->view.Ranges()),
                                   " (FLAGS) (CHANGEDSINCE ", s->view_modseq,
                                   " VANISHED)"));
        return;
      }
      if (uidvalidity_changed || uncertain || lost) {
        // Events may have been lost (overflow, or an EXPUNGE the device may not
        // have seen): rebuild the view from the store and say RESYNC.
        resync_pending_ = true;
        SendJob(Job::kViewSearch, "",
                absl::StrCat("UID SEARCH RETURN (ALL) ",
                             s->SelectedView().ToSearchProgram(
                                 absl::Now(), absl::LocalTimeZone())));
        return;
      }
      Paused(false, false);
      FinishLogin();
      return;
    }
    case Job::kRebuild:
      SendJob(Job::kRebuildNew, "",
              absl::StrCat("UID SEARCH RETURN (ALL) UID ",
                           s->view.max_uid() + 1, ":* ",
                           s->SelectedView().ToSearchProgram(
                               absl::Now(), absl::LocalTimeZone())));
      return;
    case Job::kRebuildNew: {
      // "UID n:*" also names the last message when none is newer than n.
      std::sort(cmd().search_uids.begin(), cmd().search_uids.end());
      bool grew = false;
      for (uint32_t uid : cmd().search_uids) {
        if (uid > s->view.max_uid() || !s->view.Contains(uid)) {
          if (uid > s->view.max_uid() && s->view.Insert(uid)) grew = true;
        }
      }
      cmd().search_uids.clear();
      if (grew) {
        absl::StrAppend(&cmd().rebuild_output, "* ", s->view.size(),
                        " EXISTS\r\n");
        registry().MarkViewChanged(*s);
      }
      s->journal.MarkDelivered(s->selected_folder, cmd().snapshot_seq);
      s->journal.AckDelivered(s->selected_folder);
      s->journal.ClearRebuild(s->selected_folder);
      if (cmd().job_modseq != 0) {
        s->view_modseq = cmd().job_modseq;
        registry().CheckWatchCoverage(*s);
      }
      s->restored = false;
      rebuilt_ = true;
      counters().rebuilds.fetch_add(1, std::memory_order_relaxed);
      Paused(false, false);
      FinishLogin();
      return;
    }
    default:
      return;
  }
}

}  // namespace pimap::session
