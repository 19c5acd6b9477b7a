// The session engine's push side: journal events rendered against the device's
// view, pushed in IDLE as far as the filters admit them, filter verdicts asked
// of the store for new mail, PIMAP_INBAND_NEW_FORMAT fetches, and the IDLE
// keepalive (device_driver.h).
#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/log.h"
#include "core/imap/syntax.h"
#include "core/session/delivery.h"
#include "core/session/device_driver.h"
#include "core/session/journal_render.h"
#include "core/session/store_text.h"

namespace pimap::session {

std::string DeviceDriver::RenderPending(bool allow_expunge, size_t max_events,
                                        bool replay) {
  if (session_ == nullptr || session_->selected_folder.empty()) return "";
  DeviceSession& s = *session_;
  RenderedEvents r =
      RenderJournal(s, RenderRequest{.allow_expunge = allow_expunge,
                                     .max_events = max_events,
                                     .replay = replay,
                                     .flags_resolved_seq = flags_resolved_seq_,
                                     .condstore = device_condstore_});
  if (!r.new_uids.empty()) {
    // (Only then: the command state stays unallocated for a push of no mail.)
    std::vector<uint32_t>& rendered_new = cmd().rendered_new;
    rendered_new.insert(rendered_new.end(), r.new_uids.begin(),
                        r.new_uids.end());
  }
  if (r.last_seq != 0) delivered_seq_ = std::max(delivered_seq_, r.last_seq);
  // Every caller writes `out` next: the checkpoint is marked dirty before.
  if (r.view_changed) registry().MarkViewChanged(s);
  counters().events_pushed.fetch_add(r.rendered, std::memory_order_relaxed);
  return std::move(r.out);
}

void DeviceDriver::OnEventsPending() {
  if (session_ == nullptr || !idle_.Pushes() || job_ != Job::kIdle ||
      output_ == nullptr || (!idle_.InLocalIdle() && link() == nullptr)) {
    return;
  }
  Busy busy(this);
  DeviceSession& s = *session_;
  if (s.selected_folder.empty()) return;
  const FilterSpec& notify_filter = s.filters.Notification(s.selected_folder);
  // An event the filters admit is pushed at once; events held back before it
  // ride along (they are in the EXISTS count) and never hold it back
  // (architecture.md §4). `through`: how many undelivered events go now.
  size_t through = 0;
  bool new_mail_admitted = false;
  size_t index = 0;
  for (const JournalEntry* entry :
       s.journal.UndeliveredEntries(s.selected_folder)) {
    ++index;
    if (!Admits(s, notify_filter, entry->event)) continue;
    through = index;
    if (entry->event.kind == EventKind::kNew) new_mail_admitted = true;
  }
  if (idle_.MayInterrupt() &&
      (own_new_ || NeedsEval() || (new_mail_admitted && NewFormatWanted()))) {
    InterruptIdle();
    return;
  }
  PIMAP_LOG(DEBUG).Conn(client_) << "push: " << through << " events go now";
  if (through == 0) return;
  std::string out = RenderPending(true, through);
  if (out.empty() || output_ == nullptr) return;
  if (hold_events_) {
    cmd().held_events += out;  // ResumeIdleAfterEval: they wait for the FETCH
  } else {
    output_->WriteEvents(std::move(out));
  }
}

void DeviceDriver::WriteHeldEvents() {
  std::string out = std::exchange(cmd().held_events, std::string());
  out += std::exchange(cmd().pushed_fetch, std::string());
  if (!out.empty() && output_ != nullptr) output_->WriteEvents(std::move(out));
}

bool DeviceDriver::NeedsEval() const {
  return NeedsVerdicts() || !FlagsToResolve().empty();
}

std::vector<uint32_t> DeviceDriver::FlagsToResolve() const {
  std::vector<uint32_t> uids;
  if (session_ == nullptr || session_->selected_folder.empty()) return uids;
  const DeviceSession& s = *session_;
  for (const JournalEntry* entry :
       s.journal.UndeliveredEntries(s.selected_folder)) {
    if (FlagsUnresolved(s, *entry, flags_resolved_seq_)) {
      uids.push_back(entry->event.uid);
    }
  }
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}

void DeviceDriver::StartFlagsFetch(const std::vector<uint32_t>& uids) {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  for (uint32_t uid : uids) {
    if (!ranges.empty() && ranges.back().second + 1 == uid) {
      ranges.back().second = uid;
    } else {
      ranges.emplace_back(uid, uid);
    }
  }
  // Bounded command line: past this many ranges one range spans them all
  // (answers for UIDs outside the view render nothing).
  constexpr size_t kMaxRanges = 256;
  if (ranges.size() > kMaxRanges) {
    ranges = {{ranges.front().first, ranges.back().second}};
  }
  // Every change to resolve journaled so far is answered by this fetch (the
  // store pushed it after committing it; our NOOP before has synced since).
  cmd().flags_fetch_seq = session_->journal.last_seq();
  SendJob(Job::kFlagsFetch, job_device_tag_,
          absl::StrCat("UID FETCH ", SetOf(ranges), " (FLAGS)"));
}

bool DeviceDriver::NeedsVerdicts() const {
  if (session_ == nullptr || session_->selected_folder.empty()) return false;
  const DeviceSession& s = *session_;
  // A NONE view is not trivial here: its new mail must be kept out.
  if (WholeFolder(s.SelectedView()) &&
      Trivial(s.filters.Notification(s.selected_folder))) {
    return false;
  }
  for (const JournalEntry* entry :
       s.journal.UndeliveredEntries(s.selected_folder)) {
    if (entry->event.kind == EventKind::kNew &&
        !s.classified.contains(entry->event.uid)) {
      return true;
    }
  }
  return false;
}

void DeviceDriver::StartEval() {
  // The store shows a session new messages only once it has synced the mailbox
  // (a NOOP does that); a SEARCH right away would not see them.
  SendJob(Job::kEvalSync, job_device_tag_, "NOOP");
}

void DeviceDriver::StartEvalSearch() {
  DeviceSession& s = *session_;
  cmd().eval_uids.clear();
  for (const JournalEntry* entry :
       s.journal.UndeliveredEntries(s.selected_folder)) {
    if (entry->event.kind == EventKind::kNew &&
        !s.classified.contains(entry->event.uid)) {
      cmd().eval_uids.push_back(entry->event.uid);
    }
  }
  std::sort(cmd().eval_uids.begin(), cmd().eval_uids.end());
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  for (uint32_t uid : cmd().eval_uids) {
    if (!ranges.empty() && ranges.back().second + 1 == uid) {
      ranges.back().second = uid;
    } else {
      ranges.emplace_back(uid, uid);
    }
  }
  const std::string set = SetOf(ranges);
  const absl::Time now = absl::Now();
  const FilterSpec view = s.SelectedView();
  if (!Trivial(view) || view.none) {
    SendJob(Job::kEvalView, job_device_tag_,
            absl::StrCat("UID SEARCH RETURN (ALL) UID ", set, " ",
                         view.ToSearchProgram(now, absl::LocalTimeZone())));
  } else {
    for (uint32_t uid : cmd().eval_uids) s.in_view.insert(uid);
    SendJob(Job::kEvalNotify, job_device_tag_,
            absl::StrCat("UID SEARCH RETURN (ALL) UID ", set, " ",
                         s.filters.Notification(s.selected_folder)
                             .ToSearchProgram(now, absl::LocalTimeZone())));
  }
}

bool DeviceDriver::watched_folder() const {
  // Only a watch journals everything: INBOX, and every folder it holds a
  // baseline of at the device's UIDVALIDITY (store/folder_catchup.h). With
  // pushes only, the store's notifications are hints, and the device's own
  // connection reports too; but a cover watch journals a shared or public
  // folder it has looked at (WatchUidvalidity is 0 for the others then).
  if (session_ == nullptr) return false;
  const std::string& folder = session_->selected_folder;
  if (!services_.registry->config().watch &&
      services_.registry->PersonalFolder(folder)) {
    return false;
  }
  if (absl::EqualsIgnoreCase(folder, "INBOX")) return true;
  const uint32_t watched = services_.registry->WatchUidvalidity(user_, folder);
  return watched != 0 && watched == session_->view_uidvalidity;
}

void DeviceDriver::JournalOwn(EventKind kind, uint32_t uid,
                              std::vector<std::string> flags) {
  DeviceSession& s = *session_;
  StoreEvent event;
  event.kind = kind;
  event.folder = s.selected_folder;
  event.uidvalidity = s.view_uidvalidity;
  event.uid = uid;
  event.flags = std::move(flags);
  s.journal.Append(std::move(event));
  OnEventsPending();
}

bool DeviceDriver::NewFormatWanted() const {
  return session_ != nullptr && session_->prefs().inband_new_format != "NONE";
}

// PIMAP_INBAND_NEW_FORMAT: after "* n EXISTS", "* n FETCH (<items>)" for the
// new messages, fetched by UID and renumbered from the device's view.
void DeviceDriver::FetchNewThen() {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  std::sort(cmd().rendered_new.begin(), cmd().rendered_new.end());
  for (uint32_t uid : cmd().rendered_new) {
    if (!ranges.empty() && ranges.back().second + 1 == uid) {
      ranges.back().second = uid;
    } else if (ranges.empty() || ranges.back().second < uid) {
      ranges.emplace_back(uid, uid);
    }
  }
  cmd().rendered_new.clear();
  SendJob(Job::kNewFetch, job_device_tag_,
          absl::StrCat("UID FETCH ", SetOf(ranges), " ",
                       session_->prefs().inband_new_format));
}

void DeviceDriver::OnEvalDone() {
  DeviceSession& s = *session_;
  for (uint32_t uid : cmd().eval_uids) s.classified.insert(uid);
  cmd().eval_uids.clear();
  Paused(false, false);
  if (cmd().finish_after_eval) {
    cmd().finish_after_eval = false;
    job_ = cmd().held_job;
    std::string rest = std::move(cmd().held_finish);
    cmd().held_finish.clear();
    FinishCommand(rest);
    return;
  }
  ResumeIdleAfterEval();
}

bool DeviceDriver::Selecting(absl::string_view folder) const {
  // SELECT/EXAMINE sent: the store's snapshot is taken at some point before its
  // answer, so the events of that folder from now on are journaled and those
  // the snapshot already has are marked delivered when it completes.
  // (kSelectSearch: the view's UID SEARCH that follows; the folder becomes
  // the selected one only when it completes.)
  if (job_ != Job::kSelect && job_ != Job::kSelectSearch) return false;
  const std::string& selecting = cmd().job_folder;
  return selecting == folder || (absl::EqualsIgnoreCase(selecting, "INBOX") &&
                                 absl::EqualsIgnoreCase(folder, "INBOX"));
}

void DeviceDriver::OnFolderEvent(const StoreEvent& event) {
  if (session_ == nullptr || output_ == nullptr || event.raw.empty()) return;
  Busy busy(this);
  Write(absl::StrCat(event.raw, "\r\n"));
}

void DeviceDriver::OnTakenOver(absl::string_view reason) {
  Busy busy(this);
  session_ = nullptr;  // the session now belongs to the newer connection
  // Nothing this driver has asked the store may touch the session any more:
  // whatever is in flight is dropped with the link.
  job_ = Job::kNone;
  idle_.Reset();
  links_.CloseLink(services_.pool);
  if (output_ != nullptr) {
    output_->EndSession(reason);
  }
}

std::string DeviceDriver::Binding() const {
  if (output_ == nullptr) return "";
  return absl::StrCat(output_->Binding(), output_->Secure() ? "s" : "");
}

void DeviceDriver::Kick(absl::string_view reason) {
  Busy busy(this);
  // The binding says BYE and closes; its Detach() leaves the session away.
  if (output_ != nullptr) output_->EndSession(reason);
}

void DeviceDriver::OnPushJobDone(bool ok) {
  DeviceSession* s = session_;
  switch (job_) {
    case Job::kEvalSync:
      if (own_new_) {
        own_new_ = false;
        SendJob(Job::kOwnNew, job_device_tag_,
                absl::StrCat("UID SEARCH RETURN (ALL) UID ",
                             s->view.max_uid() + 1, ":*"));
        return;
      }
      [[fallthrough]];
    case Job::kOwnNew:
      if (job_ == Job::kOwnNew) {
        // "UID n:*" names the last message even when none is newer than n.
        std::sort(cmd().search_uids.begin(), cmd().search_uids.end());
        const uint32_t max = s->view.max_uid();
        for (uint32_t uid : cmd().search_uids) {
          if (uid > max) {
            StoreEvent event;
            event.kind = EventKind::kNew;
            event.folder = s->selected_folder;
            event.uidvalidity = s->view_uidvalidity;
            event.uid = uid;
            s->journal.Append(std::move(event));
          }
        }
        cmd().search_uids.clear();
      }
      if (std::vector<uint32_t> uids = FlagsToResolve(); !uids.empty()) {
        StartFlagsFetch(uids);
        return;
      }
      [[fallthrough]];
    case Job::kFlagsFetch:
      if (job_ == Job::kFlagsFetch) {
        // The answers were journaled as they came (OnResponseEnd). A refused
        // fetch must not hold the journal back for ever either, but then the
        // flags stay unknown: dropping the changes would leave the device
        // with its old flags for good, and retrying could loop against a
        // store that keeps refusing. The folder is rebuilt instead (a RESYNC
        // with the next command's answer, or at resume).
        if (!ok) s->journal.MarkIncomplete(s->selected_folder);
        flags_resolved_seq_ =
            std::max(flags_resolved_seq_, cmd().flags_fetch_seq);
      }
      if (NeedsVerdicts()) {
        StartEvalSearch();
      } else {
        cmd().eval_uids.clear();
        OnEvalDone();
      }
      return;
    case Job::kNewFetch:
      if (cmd().fetch_then_finish) {
        cmd().fetch_then_finish = false;
        std::string out =
            absl::StrCat(job_device_tag_, " ", cmd().held_finish, "\r\n");
        cmd().held_finish.clear();
        job_ = Job::kNone;
        cmd().EndJob();
        Write(std::move(out));
        Paused(false, true);
      } else {
        // The FETCH of an interrupted IDLE: the new mail's EXISTS and its
        // FETCH go as one burst.
        WriteHeldEvents();
        cmd().pushed_fetch_plain = false;
        job_ = Job::kIdle;
        ReIdle();
      }
      return;
    case Job::kEvalView: {
      if (!ok) {
        // No verdict: show the mail rather than hide it for good.
        cmd().search_uids = cmd().eval_uids;
      }
      for (uint32_t uid : cmd().search_uids) s->in_view.insert(uid);
      cmd().search_uids.clear();
      const FilterSpec& notify = s->filters.Notification(s->selected_folder);
      if (Trivial(notify)) {
        OnEvalDone();
        return;
      }
      std::string set;
      {
        std::vector<std::pair<uint32_t, uint32_t>> ranges;
        for (uint32_t uid : cmd().eval_uids) ranges.emplace_back(uid, uid);
        set = SetOf(ranges);
      }
      SendJob(Job::kEvalNotify, job_device_tag_,
              absl::StrCat(
                  "UID SEARCH RETURN (ALL) UID ", set, " ",
                  notify.ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    }
    case Job::kEvalNotify:
      PIMAP_LOG(DEBUG).Conn(client_)
          << "notification filter admits " << cmd().search_uids.size() << " of "
          << cmd().eval_uids.size() << " new messages";
      for (uint32_t uid : cmd().search_uids) s->notify.insert(uid);
      cmd().search_uids.clear();
      OnEvalDone();
      return;
    default:
      return;
  }
}

}  // namespace pimap::session
