// The session engine's command side: login and resume of a device's session,
// execution of its commands UID-wise against the store link, and what each
// store command's completion means (device_driver.h).
#include "core/session/device_driver.h"

#include <algorithm>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/log.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"
#include "core/session/capabilities.h"
#include "core/session/delivery.h"
#include "core/session/store_text.h"

namespace pimap::session {

const CommandState DeviceDriver::kNoCommand;

void DeviceDriver::MaybeDropCommandState() {
  // At rest no job runs (or only the IDLE the gateway answers itself), waits
  // for a link or holds an answer: every job sets the running-command fields
  // before it reads them, so they can go with the rest.
  const bool at_rest = job_ == Job::kNone || LocalIdleAtRest();
  if (cmd_ == nullptr || !at_rest || links_.acquiring() ||
      !relayed_tags_.empty() || !cmd_->Settled()) {
    return;
  }
  cmd_.reset();
}

// ---- Login and resume ------------------------------------------------------

DeviceDriver::DeviceDriver(DriverServices services, DeviceOutput* output,
                           std::string user, std::string device)
    : services_(services),
      output_(output),
      user_(std::move(user)),
      device_(std::move(device)) {}

DeviceDriver::~DeviceDriver() { idle_.CancelTimers(*services_.timers); }

void DeviceDriver::Release() {
  Detach();
  release_pending_ = true;
  if (busy_ == 0) delete this;
}

void DeviceDriver::Detach() {
  output_ = nullptr;
  alive_.reset();  // a borrow still pending finds nobody
  idle_.CancelTimers(*services_.timers);
  if (session_ != nullptr) {
    registry().Detach(session_, this);
    session_ = nullptr;
  }
  // A lent link is reusable only between commands: a command in flight would
  // answer into the next borrower's session.
  const bool quiet =
      links_.lent() != nullptr &&
      (job_ == Job::kNone || (job_ == Job::kIdle && idle_.InLocalIdle())) &&
      !cmd().passing && relayed_tags_.empty() && cmd().resp_first;
  links_.Detach(services_.pool, quiet);
}

const std::vector<std::string>& DeviceDriver::store_capabilities() const {
  if (link() != nullptr && !link()->capabilities().empty())
    return link()->capabilities();
  return services_.registry->store_capabilities();
}

void DeviceDriver::Write(std::string bytes) {
  if (output_ != nullptr) output_->WriteResponse(std::move(bytes));
}

void DeviceDriver::WriteBad(absl::string_view tag, absl::string_view message) {
  std::string out;
  if (tag.empty()) {
    imap::AppendUntaggedStatus(&out, "BAD", "", message);
  } else {
    imap::AppendTaggedStatus(&out, tag, "BAD", "", message);
  }
  Write(std::move(out));
}

void DeviceDriver::Paused(bool running, bool resume) {
  if (output_ != nullptr) output_->SetCommandRunning(running, resume);
}

// ---- Commands --------------------------------------------------------------

namespace {
bool EnablesCondstore(const std::vector<imap::Arg>& args) {
  for (const imap::Arg& arg : args) {
    if (arg.type == imap::Arg::Type::kList) {
      if (EnablesCondstore(arg.children)) return true;
    } else if (arg.type == imap::Arg::Type::kAtom &&
               (absl::EqualsIgnoreCase(arg.value, "MODSEQ") ||
                absl::EqualsIgnoreCase(arg.value, "CHANGEDSINCE") ||
                absl::EqualsIgnoreCase(arg.value, "UNCHANGEDSINCE") ||
                absl::EqualsIgnoreCase(arg.value, "CONDSTORE"))) {
      return true;
    }
  }
  return false;
}
}  // namespace

bool DeviceDriver::OnCommandLine() {
  if (session_ == nullptr) return false;
  registry().AckFolderEvents(*session_);
  // Any command acknowledges what was written before it (architecture.md §4).
  if (!session_->selected_folder.empty()) {
    const std::string& folder = session_->selected_folder;
    session_->journal.AckDelivered(folder, ackable_seq_);
    if (ackable_seq_ == delivered_seq_ &&
        session_->journal.UndeliveredEntries(folder).empty() &&
        !session_->journal.NeedsRebuild(folder)) {
      // Everything the watch reported for this folder is now acknowledged: the
      // view reflects the store up to the watch's MODSEQ (the checkpoint).
      session_->view_modseq = std::max(session_->view_modseq,
                                       registry().WatchModseq(user_, folder));
    }
    // Ends a dirty period if every view change written has reached the device.
    registry().CheckpointAcknowledged(*session_);
  }
  session_->last_activity_ms = MonotonicNowMs();
  // In IDLE, the line is its end ("DONE").
  return TakeIdleDone();
}

void DeviceDriver::Execute(const imap::Command& command) {
  Busy busy(this);
  if (session_ == nullptr) {
    std::string out;
    imap::AppendTaggedStatus(&out, command.tag, "NO", "UNAVAILABLE",
                             "The session has ended");
    Write(std::move(out));
    return;
  }
  ExecuteInSession(command);
}

void DeviceDriver::SendJob(Job job, const std::string& device_tag,
                           std::string command) {
  // Without a link (pooled mode), or with a borrowed one that is not yet in the
  // session's state, the job waits for the link to be ready.
  const bool prep_step = job == Job::kLinkEnable || job == Job::kLinkSelect ||
                         job == Job::kLinkSync;
  if (!prep_step &&
      (link() == nullptr || cmd().queued.has_value() ||
       (links_.lent() != nullptr && links_.Behind(NeedOf(job))))) {
    QueueJob(job, device_tag, std::move(command));
    return;
  }
  if ((job == Job::kViewSearch || job == Job::kRebuild ||
       job == Job::kResumeSelect) &&
      session_ != nullptr) {
    cmd().snapshot_seq = session_->journal.last_seq();
    // The store may run the snapshot before changes that reach us while it
    // is on its way: those must still be journaled (and rendered against the
    // new view) even while the folder is marked for this rebuild.
    if (job != Job::kResumeSelect) {
      session_->journal.SnapshotSent(session_->selected_folder);
    }
  }
  job_ = job;
  job_device_tag_ = device_tag;
  // Our own tags for the store; device tags never reach it in a P-IMAP session
  // (except a streamed APPEND's), and "~" keeps ours apart from the usual ones.
  do {
    cmd().job_up_tag = absl::StrCat("~p", ++next_up_tag_);
  } while (absl::c_linear_search(relayed_tags_, cmd().job_up_tag));
  cmd().search_uids.clear();
  cmd().search_modseq.clear();
  PIMAP_LOG(DEBUG).Conn(client_) << "store <- " << cmd().job_up_tag << " "
                                 << imap::QuoteForLog(command.substr(0, 120));
  if (command == "UNSELECT" || command == "CLOSE") links_.ForgetSelected();
  links_.OnSent(registry().EventsReceived(user_));
  link()->Send(absl::StrCat(cmd().job_up_tag, " ", command, "\r\n"));
  if (job == Job::kIdle && idle_.DoneRelayed()) {
    // The device's DONE came while this IDLE waited for its link: it follows
    // at once (TakeIdleDone); the store's answer is the device's.
    link()->Send("DONE\r\n");
  }
  counters().commands_relayed.fetch_add(1, std::memory_order_relaxed);
  // Input waits while the store works, except in IDLE where "DONE" must get in.
  if (job != Job::kIdle) {
    Paused(true, false);
  } else {
    Paused(false, true);  // the IDLE may have waited for its link
  }
}

void DeviceDriver::ExecuteInSession(const imap::Command& command) {
  const std::string& tag = command.tag;
  const std::string& name = command.name;
  const std::vector<imap::Arg>& args = command.args;
  DeviceSession& s = *session_;
  std::string out;
  auto ok_now = [&](absl::string_view text) {
    // (a pooled CLOSE or UNSELECT: the watch may cover one folder less)
    registry().RefreshCoveredFolders(user_);
    imap::AppendTaggedStatus(&out, tag, "OK", "", text);
    Write(std::move(out));
  };
  s.last_activity_ms = MonotonicNowMs();
  // RFC 7162 §3.1: a CONDSTORE-enabling command (FETCH/SEARCH with MODSEQ,
  // CHANGEDSINCE, UNCHANGEDSINCE, SELECT/EXAMINE with CONDSTORE) turns on
  // MODSEQ data for the device, as ENABLE CONDSTORE does.
  if (!device_condstore_ && EnablesCondstore(args)) device_condstore_ = true;
  cmd().job_may_expunge = false;

  if (name == "XFILTER") {
    absl::StatusOr<XFilterCommand> filter = ParseXFilter(args);
    if (!filter.ok()) {
      WriteBad(tag, filter.status().message());
      return;
    }
    if (filter->get) {
      std::vector<std::string> known;
      if (!s.selected_folder.empty()) known.push_back(s.selected_folder);
      for (const std::string& line : s.filters.GetLines(*filter, known)) {
        absl::StrAppend(&out, line, "\r\n");
      }
      ok_now("XFILTER completed");
      return;
    }
    const SessionConfig& limits = registry().config();
    if (absl::Status room = s.filters.CheckLimits(
            *filter, limits.max_filters_per_device, limits.max_filter_bytes);
        !room.ok()) {
      imap::AppendTaggedStatus(&out, tag, "NO", "LIMIT", room.message());
      Write(std::move(out));
      return;
    }
    s.filters.Set(*filter);
    registry().Save(s);
    const bool view_changed =
        filter->kind != FilterKind::kNotification &&
        !s.selected_folder.empty() &&
        (filter->all_folders || filter->target == s.selected_folder);
    if (view_changed) {
      // A new view filter makes the folder's view a different subset: rebuild
      // it and tell the device to resynchronise.
      xfilter_resync_ = true;
      SendJob(Job::kViewSearch, tag,
              absl::StrCat("UID SEARCH RETURN (ALL) ",
                           s.SelectedView().ToSearchProgram(
                               absl::Now(), absl::LocalTimeZone())));
      return;
    }
    ok_now("XFILTER completed");
    return;
  }
  if (name == "XSETPIMAPPREF") {
    absl::Status status = s.mutable_prefs().Set(args);
    if (absl::IsInvalidArgument(status)) {
      WriteBad(tag, status.message());
    } else if (!status.ok()) {
      imap::AppendTaggedStatus(&out, tag, "NO", "", status.message());
      Write(std::move(out));
    } else {
      registry().Save(s);
      ok_now("XSETPIMAPPREF completed");
    }
    return;
  }
  if (ExecuteVfolderCommand(command)) return;
  if (name == "XPROVISION") return Provision(command);
  if (name == "XDELIVER") return Xdeliver(command);
  if (name == "XCONVERT" || name == "XUIDCONVERT") {
    return StartConvert(command, 0, name == "XUIDCONVERT");
  }
  if (name == "XGETPIMAPPREF" || name == "XGETPIMAPPREFS") {
    absl::StatusOr<std::string> payload = s.prefs().Get(args);
    if (!payload.ok()) {
      WriteBad(tag, payload.status().message());
      return;
    }
    absl::StrAppend(&out, "* ", name, " ", *payload, "\r\n");
    ok_now(absl::StrCat(name, " completed"));
    return;
  }
  if (name == "LOGOUT" && services_.pool != nullptr) {
    // The gateway says goodbye itself; the store link stays for others.
    registry().End(session_);
    session_ = nullptr;
    out = "* BYE Logging out\r\n";
    imap::AppendTaggedStatus(&out, tag, "OK", "", "LOGOUT completed");
    MaybeReturnLink();
    Write(std::move(out));
    if (output_ != nullptr) output_->Close();
    return;
  }
  if (name == "LOGOUT") {
    registry().End(session_);
    session_ = nullptr;
    // From here the store's answers pass through: the store says goodbye.
    logout_tag_ = tag;
    Paused(true, false);
    link()->Send(absl::StrCat(tag, " LOGOUT\r\n"));
    return;
  }
  if (name == "SELECT" || name == "EXAMINE") {
    if (args.empty() || !args[0].is_astring()) {
      WriteBad(tag, absl::StrCat(name, " expects a mailbox name"));
      return;
    }
    // INBOX is case-insensitive (RFC 3501 §5.1): one spelling for journal keys.
    // A virtual folder selects its backing folder (seen through its search).
    const VirtualFolder* v = s.vfolders.Find(args[0].value);
    cmd().job_vfolder = v != nullptr ? args[0].value : "";
    cmd().job_folder = v != nullptr ? v->backing
                       : absl::EqualsIgnoreCase(args[0].value, "INBOX")
                           ? "INBOX"
                           : args[0].value;
    cmd().job_examine = name == "EXAMINE";
    cmd().job_modseq = 0;
    s.selected_folder.clear();  // a SELECT leaves the previous folder at once
    s.selected_vfolder.clear();
    s.view = UidView();
    cmd().snapshot_seq =
        s.journal.last_seq();  // what the fresh view will already show
    s.journal.SnapshotSent(cmd().job_folder);  // journal what comes meanwhile
    SendJob(Job::kSelect, tag,
            v == nullptr ? absl::StrCat(name, " ", RenderArgs(args, 0))
                         : absl::StrCat(name, " ", QuotedMailbox(v->backing),
                                        args.size() > 1 ? " " : "",
                                        RenderArgs(args, 1)));
    return;
  }
  const bool selected = !s.selected_folder.empty();
  if (name == "FETCH" || name == "STORE" || name == "COPY" || name == "MOVE" ||
      name == "UID" || name == "SEARCH" || name == "EXPUNGE" ||
      name == "CLOSE" || name == "UNSELECT") {
    if (!selected) {
      WriteBad(tag, absl::StrCat(name, " needs a selected mailbox"));
      return;
    }
  }
  if (name == "FETCH" || name == "STORE" || name == "COPY" || name == "MOVE" ||
      name == "UID") {
    std::string sub = name;
    size_t set_index = 0;
    bool uid_mode = false;
    if (name == "UID") {
      if (args.empty() || args[0].type != imap::Arg::Type::kAtom) {
        WriteBad(tag, "UID expects a command");
        return;
      }
      sub = absl::AsciiStrToUpper(args[0].value);
      set_index = 1;
      uid_mode = true;
      if (sub == "XCONVERT") return StartConvert(command, 1, true);  // R02
      if (sub == "SORT") {
        WriteBad(tag, "UID SORT is not offered in P-IMAP sessions");
        return;
      }
      if (sub == "SEARCH") {
        cmd().job_uid_mode = true;
        std::string program;
        RenderSearchKeys(args, 1, s.view, &program);
        SendJob(Job::kSearch, tag, absl::StrCat("UID SEARCH ", program));
        return;
      }
      if (sub != "FETCH" && sub != "STORE" && sub != "COPY" && sub != "MOVE" &&
          sub != "EXPUNGE") {
        WriteBad(tag, absl::StrCat("UID ", sub, " is not supported"));
        return;
      }
    }
    // The device's own STORE changes flags it is not told of (.SILENT, or
    // +FLAGS whose result it works out): what it was told no longer says
    // what it has, and a later change back must not be taken for an echo.
    if (sub == "STORE") s.told_flags.clear();
    if (args.size() <= set_index ||
        args[set_index].type != imap::Arg::Type::kAtom) {
      WriteBad(tag, absl::StrCat(sub, " expects a sequence set"));
      return;
    }
    absl::StatusOr<imap::SequenceSet> set =
        imap::SequenceSet::Parse(args[set_index].value);
    if (!set.ok() || set->is_saved_result()) {
      WriteBad(tag, set.ok() ? "saved search results are not supported"
                             : set.status().message());
      return;
    }
    if (!uid_mode) {
      for (const imap::SeqRange& r : set->ranges()) {
        const uint32_t hi = r.last == imap::kStar ? 0 : r.last;
        if (hi > s.view.size() ||
            (r.first != imap::kStar && r.first > s.view.size())) {
          WriteBad(tag, "Invalid message sequence number");
          return;
        }
      }
    }
    auto ranges = s.view.Resolve(*set, uid_mode);
    if (ranges.empty()) {
      ok_now(absl::StrCat(uid_mode ? "UID " : "", sub, " completed"));
      return;
    }
    cmd().job_uid_mode = uid_mode;
    cmd().job_may_expunge = sub == "EXPUNGE" || sub == "MOVE";
    // COPY/MOVE name their target first: a virtual folder's is its backing.
    const bool copy =
        (sub == "COPY" || sub == "MOVE") && args.size() == set_index + 2;
    SendJob(sub == "EXPUNGE" ? Job::kExpunge : Job::kMessages, tag,
            absl::StrCat("UID ", sub, " ", SetOf(ranges),
                         args.size() > set_index + 1 ? " " : "",
                         copy ? CopyTarget(args[set_index + 1])
                              : RenderArgs(args, set_index + 1)));
    return;
  }
  if (name == "SEARCH" || name == "SORT") {
    for (const imap::Arg& arg : args) {
      if (arg.type == imap::Arg::Type::kAtom &&
          absl::EqualsIgnoreCase(arg.value, "RETURN")) {
        WriteBad(tag,
                 "SEARCH RETURN (ESEARCH) is not offered in P-IMAP sessions");
        return;
      }
    }
    cmd().job_uid_mode = false;
    std::string program;
    size_t from = 0;
    if (name == "SORT") {
      // SORT (criteria) charset keys: the first two go as they are.
      if (args.size() < 3) {
        WriteBad(tag, "SORT expects criteria, a charset and search keys");
        return;
      }
      RenderArg(&program, args[0]);
      program += ' ';
      RenderArg(&program, args[1]);
      from = 2;
    }
    std::string keys;
    RenderSearchKeys(args, from, s.view, &keys);
    cmd().job_sort = name == "SORT";
    SendJob(Job::kSearch, tag,
            absl::StrCat("UID ", name, " ", program, program.empty() ? "" : " ",
                         keys));
    return;
  }
  if (name == "EXPUNGE") {
    if (s.view.empty()) {
      ok_now("EXPUNGE completed");
      return;
    }
    // Only what the device can see: a view filter must not let it expunge
    // messages outside its view (UIDPLUS UID EXPUNGE).
    cmd().job_uid_mode = true;
    cmd().job_may_expunge = true;
    SendJob(Job::kExpunge, tag,
            absl::StrCat("UID EXPUNGE ", SetOf(s.view.Ranges())));
    return;
  }
  if (name == "CLOSE" && !s.read_only && s.view.empty() &&
      !WholeFolder(s.SelectedView())) {
    // Nothing of the device's view to expunge; the rest is not the device's.
    s.selected_folder.clear();
    s.selected_vfolder.clear();
    if (services_.pool != nullptr) {  // what a pooled link has selected is ours
      MaybeReturnLink();
      ok_now("CLOSE completed");
      return;
    }
    SendJob(Job::kPlain, tag, "UNSELECT");
    return;
  }
  if (name == "CLOSE" && !s.read_only && !s.view.empty() &&
      !WholeFolder(s.SelectedView())) {
    // CLOSE expunges every \Deleted message of the folder; under a view filter
    // only the device's own view may go: UID EXPUNGE it, then UNSELECT (CLOSE
    // sends no untagged EXPUNGE, so none goes to the device either).
    std::string set = SetOf(s.view.Ranges());
    cmd().close_folder = s.selected_folder;
    s.selected_folder.clear();
    s.selected_vfolder.clear();
    s.view = UidView();
    SendJob(Job::kCloseExpunge, tag, absl::StrCat("UID EXPUNGE ", set));
    return;
  }
  if (name == "CLOSE" || name == "UNSELECT") {
    cmd().close_folder = s.selected_folder;
    s.selected_folder.clear();
    s.selected_vfolder.clear();
    s.view = UidView();
    if (name == "UNSELECT" && services_.pool != nullptr) {
      MaybeReturnLink();
      ok_now("UNSELECT completed");  // what a pooled link has selected is ours
      return;
    }
    cmd().closing = name == "CLOSE";
    SendJob(Job::kPlain, tag, name);
    return;
  }
  if (name == "NOOP" && services_.pool != nullptr &&
      covered_folder(s.selected_folder)) {
    // A poll: what the store has changed is in the journal already (the folder
    // is covered), so the answer costs the store nothing.
    job_ = Job::kPlain;
    job_device_tag_ = tag;
    Paused(true, false);
    FinishCommand("OK NOOP completed");
    return;
  }
  if (name == "IDLE" && services_.pool != nullptr &&
      covered_folder(s.selected_folder)) {
    StartLocalIdle(tag);
    return;
  }
  if (name == "IDLE") {
    idle_.StartRelayed();
    SendJob(Job::kIdle, tag, "IDLE");
    return;
  }
  if (name == "STATUS" && StartFilteredStatus(command)) return;
  if (name == "STATUS" && !args.empty() && args[0].is_astring() && selected &&
      s.selected_vfolder.empty() &&
      (args[0].value == s.selected_folder ||
       (absl::EqualsIgnoreCase(args[0].value, "INBOX") &&
        absl::EqualsIgnoreCase(s.selected_folder, "INBOX")))) {
    // The selected folder's MESSAGES is the size of the device's view, which a
    // view filter makes a subset of the folder.
    SendJob(Job::kStatus, tag, absl::StrCat("STATUS ", RenderArgs(args, 0)));
    return;
  }
  if (name == "ENABLE") {
    // The store connection already runs QRESYNC for the gateway's own use. A
    // device may turn on CONDSTORE (MODSEQ data); device-side QRESYNC (VANISHED
    // instead of EXPUNGE) is not offered in a P-IMAP session.
    std::vector<std::string> enabled;
    for (const imap::Arg& arg : args) {
      if (arg.type == imap::Arg::Type::kAtom &&
          absl::EqualsIgnoreCase(arg.value, "CONDSTORE")) {
        device_condstore_ = true;
        enabled.push_back("CONDSTORE");
      }
    }
    absl::StrAppend(&out, "* ENABLED", enabled.empty() ? "" : " ",
                    absl::StrJoin(enabled, " "), "\r\n");
    ok_now("ENABLE completed");
    return;
  }
  // Everything else (NOOP, CHECK, LIST, STATUS, CREATE, ...) goes as it came.
  SendJob(Job::kPlain, tag,
          absl::StrCat(name, args.empty() ? "" : " ", RenderArgs(args, 0)));
}

void DeviceDriver::OnJobDone(absl::string_view tagged_line) {
  PIMAP_LOG(DEBUG).Conn(client_)
      << "store -> " << imap::QuoteForLog(tagged_line);
  absl::string_view rest = tagged_line.substr(tagged_line.find(' ') + 1);
  const bool ok = absl::StartsWithIgnoreCase(rest, "OK");
  DeviceSession* s = session_;
  if (links_.lent() != nullptr) {
    links_.OnCompleted();
    if (job_ == Job::kEnable && ok) links_.QresyncEnabled();
    if (job_ == Job::kSelect || job_ == Job::kResumeSelect) {
      // A failed SELECT leaves no folder selected (RFC 3501 §6.3.1).
      links_.Selected(
          ok ? (job_ == Job::kSelect ? cmd().job_folder
                                     : (s != nullptr ? s->selected_folder : ""))
             : "",
          job_ == Job::kSelect ? cmd().job_examine
                               : (s != nullptr && s->read_only));
    }
  }
  switch (job_) {
    case Job::kAcquire:
    case Job::kLinkEnable:
    case Job::kLinkSelect:
    case Job::kLinkSync:
      OnPrepDone(ok);
      return;
    case Job::kStatus:
    case Job::kStatusExamine:
    case Job::kStatusCount:
    case Job::kStatusUnseen:
      if (cmd().status.has_value()) {
        OnStatusJobDone(ok, rest);
        return;
      }
      FinishCommand(rest);
      return;
    case Job::kEnable:
    case Job::kResumeSelect:
    case Job::kRebuild:
    case Job::kRebuildNew:
      OnLoginJobDone(ok);
      return;
    case Job::kViewSearch: {
      ApplyViewSearch();
      registry().MarkViewChanged(*s);  // a RESYNC goes out below or at login
      s->restored = false;
      if (cmd().job_modseq != 0) s->view_modseq = cmd().job_modseq;
      s->journal.MarkDelivered(s->selected_folder, cmd().snapshot_seq);
      s->journal.AckDelivered(s->selected_folder);
      s->journal.ClearRebuild(s->selected_folder);
      // A resume's view dates from its SELECT (a live RESYNC has no MODSEQ).
      if (resync_pending_ && cmd().job_modseq != 0) {
        registry().CheckWatchCoverage(*s);
      }
      if (live_resync_) {
        live_resync_ = false;
        counters().resyncs.fetch_add(1, std::memory_order_relaxed);
        std::string out =
            absl::StrCat("* RESYNC\r\n* ", s->view.size(), " EXISTS\r\n",
                         job_device_tag_, " ", cmd().held_finish, "\r\n");
        cmd().held_finish.clear();
        job_ = Job::kNone;
        cmd().job_up_tag.clear();
        Write(std::move(out));
        Paused(false, true);
        return;
      }
      if (xfilter_resync_) {
        xfilter_resync_ = false;
        counters().resyncs.fetch_add(1, std::memory_order_relaxed);
        std::string out =
            absl::StrCat("* RESYNC\r\n* ", s->view.size(), " EXISTS\r\n");
        imap::AppendTaggedStatus(&out, job_device_tag_, "OK", "",
                                 "XFILTER completed");
        job_ = Job::kNone;
        Write(std::move(out));
        Paused(false, true);
        return;
      }
      Paused(false, false);
      FinishLogin();
      return;
    }
    case Job::kSelect:
      if (!ok) {
        FinishCommand(rest);
        return;
      }
      cmd().held_tagged.assign(rest.data(), rest.size());
      SendJob(Job::kSelectSearch, job_device_tag_,
              absl::StrCat(
                  "UID SEARCH RETURN (ALL) ",
                  s->ViewOf(cmd().job_folder, cmd().job_vfolder)
                      .ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    case Job::kSelectSearch: {
      if (!ok) {
        s->selected_folder.clear();
        s->selected_vfolder.clear();
        FinishCommand(absl::StrCat("NO ", rest.substr(rest.find(' ') + 1)));
        return;
      }
      ApplyViewSearch();
      s->selected_folder = cmd().job_folder;
      s->selected_vfolder = cmd().job_vfolder;
      s->read_only = cmd().job_examine;
      // A fresh SELECT shows the folder as it was when the store ran it: news
      // journaled before that are moot; later ones still render (idempotently).
      s->journal.MarkDelivered(s->selected_folder, cmd().snapshot_seq);
      s->journal.AckDelivered(s->selected_folder);
      s->journal.ClearRebuild(s->selected_folder);
      s->view_modseq = cmd().job_modseq;
      registry().CheckWatchCoverage(*s);
      s->restored = false;
      s->told_flags.clear();
      s->classified.clear();
      s->in_view.clear();
      s->notify.clear();
      s->checkpoint_dirty = false;  // a fresh view, saved before it is told
      registry().Save(*s);
      Write(absl::StrCat("* ", s->view.size(), " EXISTS\r\n* 0 RECENT\r\n"));
      std::string held = std::move(cmd().held_tagged);
      cmd().held_tagged.clear();
      FinishCommand(held);
      return;
    }
    case Job::kSearch: {
      std::string out = cmd().job_sort ? "* SORT" : "* SEARCH";
      std::vector<uint32_t> numbers;
      for (uint32_t uid : cmd().search_uids) {
        if (cmd().job_uid_mode) {
          if (s->view.Contains(uid)) numbers.push_back(uid);
        } else if (std::optional<uint32_t> msn = s->view.MsnOf(uid)) {
          numbers.push_back(*msn);
        }
      }
      // SORT's order is the answer; SEARCH's is ascending.
      if (!cmd().job_sort) std::sort(numbers.begin(), numbers.end());
      cmd().job_sort = false;
      for (uint32_t n : numbers) absl::StrAppend(&out, " ", n);
      if (!cmd().search_modseq.empty() && !numbers.empty()) {
        absl::StrAppend(&out, " (MODSEQ ", cmd().search_modseq, ")");
      }
      cmd().search_modseq.clear();
      out += "\r\n";
      if (ok) Write(std::move(out));
      FinishCommand(rest);
      return;
    }
    case Job::kIdle:
      // Left for verdicts (our DONE): the store work starts now.
      if (idle_.OnStoreIdleEnded()) {
        StartEval();
      } else {
        FinishCommand(rest);
      }
      return;
    case Job::kCloseExpunge:
      SendJob(Job::kPlain, job_device_tag_, "UNSELECT");
      return;
    case Job::kXdeliverFetch:
    case Job::kXdeliverAppend:
    case Job::kXdeliverFlag:
      OnXdeliverJobDone(ok, rest);
      return;
    case Job::kConvert:
      OnConvertFetched(ok, rest);
      return;
    case Job::kEvalSync:
    case Job::kOwnNew:
    case Job::kNewFetch:
    case Job::kEvalView:
    case Job::kEvalNotify:
    case Job::kFlagsFetch:
      OnPushJobDone(ok);
      return;
    default:
      FinishCommand(rest);
      return;
  }
}

void DeviceDriver::FinishCommand(absl::string_view status_rest) {
  if (own_new_ || NeedsEval()) {
    // New mail under a search-key filter: get the store's verdicts before the
    // events are rendered with this command's answer.
    cmd().held_finish.assign(status_rest.data(), status_rest.size());
    cmd().held_job = job_;
    cmd().finish_after_eval = true;
    StartEval();
    return;
  }
  std::string out;
  if (session_ != nullptr) {
    // RFC 3501 §7.4.1: no EXPUNGE while a FETCH, STORE or SEARCH by MSN runs.
    const bool msn_command =
        !cmd().job_uid_mode && (job_ == Job::kMessages || job_ == Job::kSearch);
    if (!msn_command && !session_->selected_folder.empty() &&
        session_->journal.NeedsRebuild(session_->selected_folder)) {
      // The journal overflowed while the device was connected: its news for the
      // folder are gone, so the device resynchronises against a fresh view.
      cmd().held_finish.assign(status_rest.data(), status_rest.size());
      live_resync_ = true;
      SendJob(Job::kViewSearch, job_device_tag_,
              absl::StrCat("UID SEARCH RETURN (ALL) ",
                           session_->SelectedView().ToSearchProgram(
                               absl::Now(), absl::LocalTimeZone())));
      return;
    }
    cmd().rendered_new.clear();
    out = RenderPending(!msn_command);
    if (!cmd().rendered_new.empty() && NewFormatWanted()) {
      Write(std::move(out));
      cmd().held_finish.assign(status_rest.data(), status_rest.size());
      cmd().fetch_then_finish = true;
      FetchNewThen();
      return;
    }
  }
  if (absl::StartsWithIgnoreCase(status_rest, "OK")) out += cmd().vfolder_lines;
  cmd().vfolder_lines.clear();
  absl::StrAppend(&out, job_device_tag_, " ", status_rest, "\r\n");
  job_ = Job::kNone;
  cmd().EndJob();
  idle_.Reset();
  cmd().closing = false;
  // A SELECT, CLOSE or UNSELECT may have changed what the watch is to cover.
  if (session_ != nullptr) registry().RefreshCoveredFolders(user_);
  MaybeReturnLink();
  Write(std::move(out));
  Paused(false, true);
}

}  // namespace pimap::session
