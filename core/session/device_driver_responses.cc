// The session engine's store side: each store response is passed through to the
// device (renumbered from its view), collected for the running job, or dropped;
// news the store volunteers becomes journal events (device_driver.h).
#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/log.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"
#include "core/session/delivery.h"
#include "core/session/device_driver.h"
#include "core/session/response_class.h"
#include "core/session/store_text.h"
#include "core/session/vfolder_membership.h"

namespace pimap::session {

namespace {
// A response the gateway reads itself is never larger than this; past it the
// rest is dropped (a store answer to our own SEARCH of 16 MiB is already
// absurd).
constexpr size_t kMaxCollectedBytes = 16 << 20;
// UIDs an ESEARCH ALL may give a job of the gateway's (a view of 16 million).
constexpr size_t kMaxSearchUids = 1u << 24;
// New mail's pushed FETCH held to go out as one burst with its EXISTS (an
// ENVELOPE is a few hundred bytes; bodies pass through).
constexpr size_t kMaxHeldFetchBytes = 64 << 10;
}  // namespace

// ---- Store link client
// -----------------------------------------------------------

void DeviceDriver::OnStoreBytes(absl::string_view bytes) {
  Busy busy(this);
  if (session_ == nullptr && job_ == Job::kNone) {  // after LOGOUT: the goodbye
    PassThrough(bytes);
    return;
  }
  if (cmd().resp_first) {
    cmd().resp_first = false;
    OnResponseStart(bytes);
    return;
  }
  if (cmd().resp_action == RespAction::kDrop) return;
  if (cmd().resp_action == RespAction::kCollect) {
    if (cmd().collected.size() + bytes.size() <= kMaxCollectedBytes) {
      cmd().collected.append(bytes.data(), bytes.size());
    }
    return;
  }
  PassThrough(bytes);
}

void DeviceDriver::PassThrough(absl::string_view bytes) {
  if (output_ == nullptr) return;
  if (job_ == Job::kNewFetch && !cmd().fetch_then_finish &&
      !cmd().pushed_fetch_plain) {
    // New mail's FETCH pushed in IDLE: events, written with the EXISTS when
    // the job ends (WriteHeldEvents). A format with bodies (e.g. "(ALL
    // BODY[])") may be large: past kMaxHeldFetchBytes it streams through
    // as before, with the reading paused when the device is slow.
    if (cmd().pushed_fetch.size() + bytes.size() <= kMaxHeldFetchBytes) {
      cmd().pushed_fetch.append(bytes.data(), bytes.size());
      return;
    }
    cmd().pushed_fetch_plain = true;
    std::string held = std::exchange(cmd().pushed_fetch, std::string());
    WriteHeldEvents();
    held.append(bytes.data(), bytes.size());
    PassThrough(held);
    return;
  }
  cmd().passing = true;
  if (!output_->WritePassThrough(bytes)) {
    // The device reads slower than the store answers: stop reading the store
    // until the device's output drains, so memory stays bounded.
    links_.PauseReading();
  }
}

void DeviceDriver::OnOutputDrained() { links_.ResumeReading(); }

void DeviceDriver::OnStoreResponseEnd(absl::string_view completed_tag) {
  Busy busy(this);
  if (cmd().passing) {
    cmd().passing = false;
    if (output_ != nullptr) output_->EndPassThrough();
  }
  if (session_ != nullptr || job_ != Job::kNone || !cmd().resp_first) {
    OnResponseEnd(completed_tag);
  }
  if (completed_tag.empty() || output_ == nullptr ||
      completed_tag == cmd().job_up_tag)
    return;
  if (completed_tag == logout_tag_) {
    output_->Close();
    return;
  }
  // A device tag: a command relayed verbatim (APPEND) completed.
  auto relayed = absl::c_find(relayed_tags_, completed_tag);
  if (relayed != relayed_tags_.end()) {
    relayed_tags_.erase(relayed);
    MaybeReturnLink();
    output_->RelayedDone(completed_tag);
  }
}

void DeviceDriver::OnStoreDrained() {
  Busy busy(this);
  if (output_ != nullptr) output_->RelayDrained();
}

void DeviceDriver::OnStoreClosed(absl::Status reason) {
  Busy busy(this);
  links_.OnLinkClosed(services_.pool);
  if (output_ == nullptr) return;
  if (!logout_tag_.empty()) {
    output_->Close();
    return;
  }
  if (services_.pool != nullptr) {
    // Pooled: the session outlives its link. Between commands (and in the
    // gateway's IDLE) nothing is lost; a command in flight gets NO, never a
    // half answer passed off as whole.
    PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event(
        "store.lost")
        << "store link lost: " << reason.message();
    cmd().resp_first = true;
    cmd().collected.clear();
    // (An XDELIVER's submission needs no link: its next step borrows one.)
    const bool quiet = job_ == Job::kNone || job_ == Job::kXdeliverSubmit ||
                       (job_ == Job::kIdle && idle_.InLocalIdle());
    if (quiet && relayed_tags_.empty()) {
      if (cmd().passing) {
        cmd().passing = false;
        output_->EndPassThrough();
      }
      return;
    }
    OnLinkFailed("Connection to the message store lost");
    return;
  }
  PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event("store.lost")
      << "store connection lost: " << reason.message();
  // New mail held for its FETCH: the events go before the end (as in
  // OnLinkFailed), the FETCH that did not complete does not.
  cmd().pushed_fetch.clear();
  WriteHeldEvents();
  if (cmd().passing) {
    cmd().passing = false;
    output_->EndPassThrough();
  }
  output_->EndSession("Connection to the message store lost");
}

// ---- Store responses
// -----------------------------------------------------------

void DeviceDriver::OnResponseStart(absl::string_view raw) {
  // The first chunk is the response's first line; a link may deliver its CRLF
  // with it or apart. Parse without it, pass through what came.
  absl::string_view line = raw;
  absl::ConsumeSuffix(&line, "\r\n");
  const absl::string_view line_end = raw.substr(line.size());
  cmd().collected.clear();
  ResponseContext context;
  context.job = job_;
  context.job_up_tag = cmd().job_up_tag;
  context.has_session = session_ != nullptr;
  // While an XDELIVER has the link in the original's folder (its SELECT
  // included), what the store says there is not news of the device's folder.
  const Job for_job = job_ == Job::kLinkSelect && cmd().queued.has_value()
                          ? cmd().queued->job
                          : job_;
  const bool elsewhere =
      (for_job == Job::kXdeliverFetch || for_job == Job::kXdeliverFlag) &&
      cmd().xdeliver != nullptr && session_ != nullptr &&
      cmd().xdeliver->folder() != session_->selected_folder;
  context.unwatched = session_ != nullptr && !watched_folder() && !elsewhere;
  context.folder_selected =
      session_ != nullptr && !session_->selected_folder.empty();
  context.job_may_expunge = cmd().job_may_expunge;
  context.device_condstore = device_condstore_;
  const ResponseClass c = ClassifyResponse(context, line);
  cmd().resp_action = c.action;
  if (c.uidvalidity.has_value() && session_ != nullptr) {
    session_->view_uidvalidity = *c.uidvalidity;
  }
  if (c.select_modseq.has_value()) cmd().job_modseq = *c.select_modseq;
  switch (c.extra) {
    case ResponseClass::Extra::kNone:
      break;
    case ResponseClass::Extra::kIdleContinuation:
      cmd().resp_action =
          idle_.OnContinuation() ? RespAction::kDrop : RespAction::kForward;
      ArmKeepalive();
      break;
    case ResponseClass::Extra::kOwnNew:
      own_new_ = true;
      break;
    case ResponseClass::Extra::kRenumberFetch:
      if (RenumberFetch(line, line_end)) return;
      break;
  }
  if (cmd().resp_action == RespAction::kForward) {
    PassThrough(raw);
  } else if (cmd().resp_action == RespAction::kCollect) {
    cmd().collected.assign(raw.data(), raw.size());
  }
  if (c.extra == ResponseClass::Extra::kIdleContinuation &&
      idle_.state() == IdleMachine::State::kStoreIdling &&
      services_.pool != nullptr && session_ != nullptr &&
      covered_folder(session_->selected_folder)) {
    // The IDLE was sent relayed (or waited for its link) while the watch took
    // its first look at the folder, so OnFolderCovered could not leave it:
    // it is left now, its "+" passed on, and becomes the gateway's (ReIdle).
    InterruptIdle();
  }
}

bool DeviceDriver::RenumberFetch(absl::string_view line,
                                 absl::string_view line_end) {
  std::optional<uint32_t> uid = FetchUid(line);
  std::optional<uint32_t> msn;
  if (uid) msn = session_->view.MsnOf(*uid);
  if (!msn) return false;  // outside the view: dropped
  // Renumbered from the device's view; MODSEQ only for a device that enabled
  // CONDSTORE itself (the store connection always has it on).
  const Untagged u = ParseUntagged(line);
  std::string rewritten = absl::StrCat("* ", *msn, u.after_number);
  if (!device_condstore_ && StripModseq(&rewritten)) {
    // Only the CONDSTORE echo of a STORE .SILENT: not the device's.
    cmd().resp_action = RespAction::kDrop;
    return true;
  }
  size_t flags_at = line.find("FLAGS (");
  if (flags_at != absl::string_view::npos) {
    absl::string_view f = line.substr(flags_at + 7);
    f = f.substr(0, f.find(')'));
    std::vector<std::string> flags = absl::StrSplit(f, ' ', absl::SkipEmpty());
    Told(*session_, *uid, FlagKey(flags));
    // The device's own STORE took the message out of the selected virtual
    // folder's search: journaled, its EXPUNGE goes where one may
    // (RenderJournal, at the command's end or the next one's).
    if (!session_->selected_vfolder.empty() &&
        session_->vfolders.Find(session_->selected_vfolder) != nullptr &&
        MatchFlags(session_->SelectedView(), flags) == FlagVerdict::kFails) {
      JournalOwn(EventKind::kFlags, *uid, std::move(flags));
    }
  }
  rewritten.append(line_end.data(), line_end.size());
  PassThrough(rewritten);
  cmd().resp_action = RespAction::kForward;
  return true;
}

void DeviceDriver::OnResponseEnd(absl::string_view completed_tag) {
  const RespAction action = cmd().resp_action;
  cmd().resp_action = RespAction::kForward;
  cmd().resp_first = true;
  if (action != RespAction::kCollect) {
    if (idle_.DeviceIdling() && job_ == Job::kIdle) OnEventsPending();
    return;
  }
  std::string text = std::move(cmd().collected);
  cmd().collected.clear();
  if (!completed_tag.empty() && completed_tag == cmd().job_up_tag) {
    OnJobDone(absl::StripTrailingAsciiWhitespace(text));
    return;
  }
  absl::string_view body(text);
  body = absl::StripTrailingAsciiWhitespace(body);
  PIMAP_LOG(DEBUG).Conn(client_)
      << "collected: " << imap::QuoteForLog(body.substr(0, 100));
  Untagged u = ParseUntagged(body);
  if (u.numbered && u.name == "FETCH" && job_ == Job::kConvert &&
      cmd().convert.has_value() && absl::StrContains(body, "BODY[")) {
    cmd().convert->fetch = std::move(text);  // read when the job completes
  } else if (u.name == "VANISHED" && session_ != nullptr) {
    absl::string_view set_text = body.substr(body.rfind(' ') + 1);
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(set_text);
    if (!set.ok()) return;
    std::vector<uint32_t> uids;
    for (const auto& [first, last] : session_->view.Resolve(*set, true)) {
      for (uint64_t u2 = first; u2 <= last; ++u2)
        uids.push_back(static_cast<uint32_t>(u2));
    }
    if (job_ != Job::kRebuild && !cmd().job_may_expunge) {
      // Someone else's expunge: never in the middle of a FETCH/STORE/SEARCH by
      // MSN (RFC 3501 §7.4.1); the journal renders it at the next safe point.
      for (uint32_t uid : uids) JournalOwn(EventKind::kExpunge, uid, {});
      return;
    }
    // Highest first: each MSN stays valid while the ones above it go.
    std::string out;
    for (auto it = uids.rbegin(); it != uids.rend(); ++it) {
      if (std::optional<uint32_t> msn = session_->view.Erase(*it)) {
        absl::StrAppend(&out, "* ", *msn, " EXPUNGE\r\n");
      }
    }
    // The view changed (the rebuild's bytes go with the login): dirty before
    // the bytes leave, and before a Detach could save this view as the
    // device's.
    if (!out.empty()) registry().MarkViewChanged(*session_);
    if (job_ == Job::kRebuild) {
      cmd().rebuild_output += out;
    } else {
      Write(std::move(out));
    }
  } else if (u.numbered && u.name == "FETCH" && job_ == Job::kXdeliverFetch &&
             absl::StrContains(body, "BODY[] {")) {
    if (cmd().xdeliver != nullptr) cmd().xdeliver->TakeOriginal(body);
  } else if (u.numbered && u.name == "FETCH" &&
             (job_ == Job::kIdle || job_ == Job::kXdeliverFetch ||
              job_ == Job::kConvert || IsMaintenanceJob(job_)) &&
             session_ != nullptr) {
    std::optional<uint32_t> uid = FetchUid(body);
    std::optional<std::vector<std::string>> list = FetchFlags(body);
    if (!uid || !list) return;
    // \Recent belongs to our link's session, not to the device's.
    std::erase_if(*list, [](const std::string& f) {
      return absl::EqualsIgnoreCase(f, "\\Recent");
    });
    JournalOwn(EventKind::kFlags, *uid, std::move(*list));
  } else if (u.numbered && u.name == "FETCH" && job_ == Job::kRebuild &&
             session_ != nullptr) {
    // A flag change the device missed: rendered against its (updated) view.
    std::optional<uint32_t> uid = FetchUid(body);
    size_t flags_at = body.find("FLAGS (");
    if (!uid || flags_at == absl::string_view::npos) return;
    absl::string_view flags = body.substr(flags_at + 7);
    flags = flags.substr(0, flags.find(')'));
    std::vector<std::string> list =
        absl::StrSplit(flags, ' ', absl::SkipEmpty());
    if (!session_->selected_vfolder.empty() &&
        session_->vfolders.Find(session_->selected_vfolder) != nullptr &&
        MatchFlags(session_->SelectedView(), list) == FlagVerdict::kFails) {
      // A selected virtual folder's view follows its search on flag changes
      // missed while away as on live ones (journal_render.cc): the message
      // leaves, an EXPUNGE to the device only (its MSN is the view's now, so
      // each line holds after the ones before it).
      if (std::optional<uint32_t> msn = session_->view.Erase(*uid)) {
        absl::StrAppend(&cmd().rebuild_output, "* ", *msn, " EXPUNGE\r\n");
        session_->told_flags.erase(*uid);
        registry().MarkViewChanged(*session_);
      }
      return;
    }
    if (std::optional<uint32_t> msn = session_->view.MsnOf(*uid)) {
      absl::StrAppend(&cmd().rebuild_output, "* ", *msn, " FETCH (UID ", *uid,
                      " FLAGS (", flags, "))\r\n");
      // What the device is told now: a later change back to the flags it
      // had before must not be taken for known (chaos, push mode).
      Told(*session_, *uid, FlagKey(list));
    }
  } else if (u.name == "STATUS" && session_ != nullptr &&
             cmd().status.has_value()) {
    cmd().status->OnStatusLine(body);  // answered once the view is counted
  } else if (u.name == "STATUS" && session_ != nullptr) {
    Write(
        absl::StrCat(WithStatusMessages(body, session_->view.size()), "\r\n"));
  } else if (u.name == "SEARCH" || u.name == "SORT") {
    ParseSearchNumbers(body, &cmd().search_uids, &cmd().search_modseq);
  } else if (u.name == "ESEARCH" &&
             (job_ == Job::kStatusCount || job_ == Job::kStatusUnseen)) {
    std::optional<uint32_t> count = EsearchCount(body);
    if (count.has_value() && cmd().status.has_value()) {
      cmd().status->OnCount(*count);
    }
  } else if (u.name == "ESEARCH") {
    AppendEsearchAll(body, &cmd().search_uids, kMaxSearchUids);
  }
}

}  // namespace pimap::session
