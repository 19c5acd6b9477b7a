// The P-IMAP half of a device connection: the session's resume at login, the
// device's own MSN view of the selected folder (commands go to the store by UID,
// responses come back renumbered from the view), journal rendering, and push in
// IDLE. The store connection runs one command at a time here, so every response
// can be attributed to the command that produced it.
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bindings/tcp/capabilities.h"
#include "bindings/tcp/imap_connection.h"
#include "bindings/tcp/imap_server.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"

namespace pimap::tcp {

namespace {

constexpr size_t kMaxCollectedBytes = 16 << 20;

// Renders a parsed argument back to IMAP text for the store. Strings that cannot
// be quoted go as non-synchronising literals: the store must not wait for "+".
void RenderArg(std::string* out, const imap::Arg& arg) {
  switch (arg.type) {
    case imap::Arg::Type::kAtom:
      out->append(arg.value);
      return;
    case imap::Arg::Type::kNil:
      out->append("NIL");
      return;
    case imap::Arg::Type::kList:
      out->push_back('(');
      for (size_t i = 0; i < arg.children.size(); ++i) {
        if (i > 0) out->push_back(' ');
        RenderArg(out, arg.children[i]);
      }
      out->push_back(')');
      return;
    case imap::Arg::Type::kQuoted:
    case imap::Arg::Type::kLiteral: {
      bool quotable = arg.value.size() <= 1024 && !arg.binary;
      for (unsigned char c : arg.value) {
        if (c == '\r' || c == '\n' || c == 0 || c >= 0x80) quotable = false;
      }
      if (quotable) {
        out->push_back('"');
        for (char c : arg.value) {
          if (c == '"' || c == '\\') out->push_back('\\');
          out->push_back(c);
        }
        out->push_back('"');
      } else {
        absl::StrAppend(out, arg.binary ? "~{" : "{", arg.value.size(), "+}\r\n",
                        arg.value);
      }
      return;
    }
  }
}

std::string RenderArgs(const std::vector<imap::Arg>& args, size_t from) {
  std::string out;
  for (size_t i = from; i < args.size(); ++i) {
    if (i > from) out.push_back(' ');
    RenderArg(&out, args[i]);
  }
  return out;
}

std::string SetOf(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
  return session::RangesToSequenceSet(ranges);
}

// Rewrites a device's SEARCH program for the store: message-sequence sets are the
// device's MSNs, which the store does not know, so each becomes "UID <uids>" from
// the device's view. Arguments of keys that take them are copied as they are.
void RenderSearchKeys(const std::vector<imap::Arg>& args, size_t from,
                      const session::UidView& view, std::string* out) {
  static const absl::flat_hash_map<std::string, int>* const kArity =
      new absl::flat_hash_map<std::string, int>{
          {"BCC", 1}, {"BODY", 1}, {"CC", 1}, {"FROM", 1}, {"SUBJECT", 1}, {"TEXT", 1},
          {"TO", 1}, {"KEYWORD", 1}, {"UNKEYWORD", 1}, {"BEFORE", 1}, {"ON", 1},
          {"SINCE", 1}, {"SENTBEFORE", 1}, {"SENTON", 1}, {"SENTSINCE", 1},
          {"LARGER", 1}, {"SMALLER", 1}, {"HEADER", 2}, {"UID", 1}, {"CHARSET", 1},
          {"YOUNGER", 1}, {"OLDER", 1}, {"MODSEQ", 1}};
  for (size_t i = from; i < args.size(); ++i) {
    if (!out->empty() && out->back() != '(') out->push_back(' ');
    const imap::Arg& arg = args[i];
    if (arg.type == imap::Arg::Type::kList) {
      out->push_back('(');
      RenderSearchKeys(arg.children, 0, view, out);
      out->push_back(')');
      continue;
    }
    if (arg.type == imap::Arg::Type::kAtom) {
      const std::string key = absl::AsciiStrToUpper(arg.value);
      auto it = kArity->find(key);
      if (it != kArity->end()) {
        RenderArg(out, arg);
        int arity = it->second;
        // MODSEQ [<entry-name> <entry-type>] <mod-sequence> (RFC 7162)
        if (key == "MODSEQ" && i + 1 < args.size() && args[i + 1].is_string()) arity = 3;
        for (int k = 0; k < arity && i + 1 < args.size(); ++k) {
          out->push_back(' ');
          RenderArg(out, args[++i]);
        }
        continue;
      }
      absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(arg.value);
      if (set.ok() && !set->is_saved_result()) {
        auto ranges = view.Resolve(*set, /*uid_mode=*/false);
        // No message of the view: a key that matches nothing.
        out->append(ranges.empty() ? "NOT ALL" : absl::StrCat("UID ", SetOf(ranges)));
        continue;
      }
    }
    RenderArg(out, arg);
  }
}

// "UID 17" inside the first line of a FETCH response.
std::optional<uint32_t> FetchUid(absl::string_view line) {
  size_t pos = 0;
  while ((pos = line.find("UID ", pos)) != absl::string_view::npos) {
    if (pos > 0 && line[pos - 1] != ' ' && line[pos - 1] != '(') {
      pos += 4;
      continue;
    }
    absl::string_view rest = line.substr(pos + 4);
    size_t end = 0;
    while (end < rest.size() && absl::ascii_isdigit(rest[end])) ++end;
    uint32_t uid = 0;
    if (end > 0 && absl::SimpleAtoi(rest.substr(0, end), &uid)) return uid;
    pos += 4;
  }
  return std::nullopt;
}

// "* 12 FETCH ..." → {12, "FETCH", rest-after-number}; "* SEARCH ..." → {0, "SEARCH"}.
struct Untagged {
  bool numbered = false;
  std::string name;
  absl::string_view after_number;  // " FETCH (...)" for numbered responses
};
Untagged ParseUntagged(absl::string_view line) {
  Untagged u;
  absl::string_view rest = line.substr(2);
  size_t sp = rest.find(' ');
  absl::string_view first = rest.substr(0, sp);
  uint32_t number;
  if (!first.empty() && absl::SimpleAtoi(first, &number)) {
    u.numbered = true;
    u.after_number = sp == absl::string_view::npos ? "" : rest.substr(sp);
    absl::string_view tail = u.after_number.empty() ? "" : u.after_number.substr(1);
    u.name = absl::AsciiStrToUpper(tail.substr(0, tail.find(' ')));
  } else {
    u.name = absl::AsciiStrToUpper(first);
  }
  return u;
}

// Removes " MODSEQ (n)" (or "MODSEQ (n) ") from a FETCH line.
void StripModseq(std::string* line) {
  size_t at = line->find("MODSEQ (");
  if (at == std::string::npos) return;
  size_t end = line->find(')', at);
  if (end == std::string::npos) return;
  ++end;
  if (at > 0 && (*line)[at - 1] == ' ') {
    --at;
  } else if (end < line->size() && (*line)[end] == ' ') {
    ++end;
  }
  line->erase(at, end - at);
}

// Flags as one comparable string: sorted, without \Recent (session-specific).
std::string FlagKey(std::vector<std::string> flags) {
  flags.erase(std::remove_if(flags.begin(), flags.end(),
                             [](const std::string& f) {
                               return absl::EqualsIgnoreCase(f, "\\Recent");
                             }),
              flags.end());
  std::sort(flags.begin(), flags.end());
  return absl::StrJoin(flags, " ");
}

// Records that the device now knows `flags` for `uid`; true if it knew them.
bool Told(DeviceSession& s, uint32_t uid, const std::string& flags) {
  constexpr size_t kRemembered = 4096;
  auto it = s.told_flags.find(uid);
  if (it != s.told_flags.end() && it->second == flags) return true;
  if (s.told_flags.size() >= kRemembered) s.told_flags.clear();
  s.told_flags[uid] = flags;
  return false;
}

bool Trivial(const session::FilterSpec& spec) {
  return spec.none || (spec.all && spec.search_keys.empty() && !spec.days_before_today);
}

// Push now only what the event filter and the notification filter both let
// through; the rest waits for the device's next command.
bool Admits(const DeviceSession& s, const session::FilterSpec& notify,
            const session::StoreEvent& event) {
  const std::string& event_filter = s.prefs.event_filter;
  if (event_filter == "NONE") return false;
  if (event_filter == "NEW" && event.kind != session::EventKind::kNew) return false;
  if (notify.none) return false;
  if (Trivial(notify)) return true;
  // A search-key filter: new mail by the store's verdict; other events wait.
  return event.kind == session::EventKind::kNew && s.notify.contains(event.uid);
}

}  // namespace

// Store commands the gateway runs on its own between two IDLEs or before a
// command's answer; news the store sends meanwhile still belong to the device.
bool ImapConnection::IsMaintenanceJob(Job job) {
  return job == Job::kEvalSync || job == Job::kOwnNew || job == Job::kEvalView ||
         job == Job::kEvalNotify;
}

bool ImapConnection::IsPimapCommand(absl::string_view name) const {
  return name == "XFILTER" || name == "XSETPIMAPPREF" || name == "XGETPIMAPPREF" ||
         name == "XGETPIMAPPREFS";
}

// ---- Login and resume ----------------------------------------------------------

void ImapConnection::StartPimap(const std::string& login_tag,
                                const std::string& password) {
  login_tag_ = login_tag;
  pimap_ = server_->sessions().Attach(user_, device_, {user_, password, ""}, this,
                                      &pimap_resumed_);
  // Everything this connection asks the store is by UID, and expunges come back
  // as VANISHED UIDs, so the device's MSNs can be rendered from its own view.
  SendJob(Job::kEnable, "", "ENABLE QRESYNC");
}

void ImapConnection::FinishLogin() {
  std::string out;
  ShardCounters& counters = server_->shard().counters();
  if (pimap_resumed_) {
    counters.session_resumes.fetch_add(1, std::memory_order_relaxed);
    if (!pimap_->selected_folder.empty()) {
      out += "* SESSION SELECTED\r\n* FOLDER ";
      imap::AppendAstring(&out, pimap_->selected_folder);
      out += "\r\n";
      if (resync_pending_) {
        resync_pending_ = false;
        counters.resyncs.fetch_add(1, std::memory_order_relaxed);
        absl::StrAppend(&out, "* RESYNC\r\n* ", pimap_->view.size(), " EXISTS\r\n");
      } else if (rebuilt_) {
        out += rebuild_output_;
        rebuild_output_.clear();
        rebuilt_ = false;
      } else {
        out += RenderPending(true, SIZE_MAX, /*replay=*/true);
      }
    } else {
      out += "* SESSION AUTHENTICATED\r\n";
    }
  }
  absl::StrAppend(&out, "* SESSIONID ", pimap_->session_id, "\r\n");
  imap::AppendTaggedStatus(
      &out, login_tag_, "OK",
      absl::StrCat("CAPABILITY ", PostAuthCapabilities(link_->capabilities(), true)),
      "Logged in");
  job_ = Job::kNone;
  WriteLocal(std::move(out));
  SetBlocked(kBlockLogin, false);
}

// ---- Commands ------------------------------------------------------------------

void ImapConnection::SendJob(Job job, const std::string& device_tag,
                             std::string command) {
  if ((job == Job::kViewSearch || job == Job::kRebuild || job == Job::kResumeSelect) &&
      pimap_ != nullptr) {
    snapshot_seq_ = pimap_->journal.last_seq();
  }
  job_ = job;
  job_device_tag_ = device_tag;
  // Our own tags for the store; device tags never reach it in a P-IMAP session
  // (except a streamed APPEND's), and "~" keeps ours apart from the usual ones.
  job_up_tag_ = absl::StrCat("~p", ++next_up_tag_);
  search_uids_.clear();
  PIMAP_LOG(DEBUG) << "store <- " << job_up_tag_ << " "
                   << imap::QuoteForLog(command.substr(0, 120));
  link_->Send(absl::StrCat(job_up_tag_, " ", command, "\r\n"));
  server_->shard().counters().commands_relayed.fetch_add(1, std::memory_order_relaxed);
  // Input waits while the store works, except in IDLE where "DONE" must get in.
  if (job != Job::kIdle) blocked_ |= kBlockJob;
}

void ImapConnection::ExecutePimap(const imap::Command& command) {
  const std::string& tag = command.tag;
  const std::string& name = command.name;
  const std::vector<imap::Arg>& args = command.args;
  DeviceSession& s = *pimap_;
  std::string out;
  auto ok_now = [&](absl::string_view text) {
    imap::AppendTaggedStatus(&out, tag, "OK", "", text);
    WriteLocal(std::move(out));
  };
  s.last_activity_ms = MonotonicNowMs();
  job_may_expunge_ = false;
  device_done_sent_ = false;

  if (name == "XFILTER") {
    absl::StatusOr<session::XFilterCommand> filter = session::ParseXFilter(args);
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
    s.filters.Set(*filter);
    server_->sessions().Save(s);
    const bool view_changed = filter->kind != session::FilterKind::kNotification &&
                              !s.selected_folder.empty() &&
                              (filter->all_folders || filter->target == s.selected_folder);
    if (view_changed) {
      // A new view filter makes the folder's view a different subset: rebuild it
      // and tell the device to resynchronise.
      xfilter_resync_ = true;
      SendJob(Job::kViewSearch, tag,
              absl::StrCat("UID SEARCH RETURN (ALL) ",
                           s.filters.View(s.selected_folder)
                               .ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    }
    ok_now("XFILTER completed");
    return;
  }
  if (name == "XSETPIMAPPREF") {
    absl::Status status = s.prefs.Set(args);
    if (absl::IsInvalidArgument(status)) {
      WriteBad(tag, status.message());
    } else if (!status.ok()) {
      imap::AppendTaggedStatus(&out, tag, "NO", "", status.message());
      WriteLocal(std::move(out));
    } else {
      server_->sessions().Save(s);
      ok_now("XSETPIMAPPREF completed");
    }
    return;
  }
  if (name == "XGETPIMAPPREF" || name == "XGETPIMAPPREFS") {
    absl::StatusOr<std::string> payload = s.prefs.Get(args);
    if (!payload.ok()) {
      WriteBad(tag, payload.status().message());
      return;
    }
    absl::StrAppend(&out, "* ", name, " ", *payload, "\r\n");
    ok_now(absl::StrCat(name, " completed"));
    return;
  }
  if (name == "LOGOUT") {
    server_->sessions().End(pimap_);
    pimap_ = nullptr;
    // From here the connection is a plain relay that says goodbye.
    outstanding_.push_back(tag);
    logout_tag_ = tag;
    link_->Send(absl::StrCat(tag, " LOGOUT\r\n"));
    return;
  }
  if (name == "SELECT" || name == "EXAMINE") {
    if (args.empty() || !args[0].is_astring()) {
      WriteBad(tag, absl::StrCat(name, " expects a mailbox name"));
      return;
    }
    // INBOX is case-insensitive (RFC 3501 §5.1): one spelling for journal keys.
    job_folder_ = absl::EqualsIgnoreCase(args[0].value, "INBOX") ? "INBOX" : args[0].value;
    job_examine_ = name == "EXAMINE";
    job_modseq_ = 0;
    s.selected_folder.clear();  // a SELECT leaves the previous folder at once
    s.view = session::UidView();
    snapshot_seq_ = s.journal.last_seq();  // what the fresh view will already show
    SendJob(Job::kSelect, tag, absl::StrCat(name, " ", RenderArgs(args, 0)));
    return;
  }
  const bool selected = !s.selected_folder.empty();
  if (name == "FETCH" || name == "STORE" || name == "COPY" || name == "MOVE" ||
      name == "UID" || name == "SEARCH" || name == "EXPUNGE" || name == "CLOSE" ||
      name == "UNSELECT") {
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
      if (sub == "SORT") {
        WriteBad(tag, "UID SORT is not offered in P-IMAP sessions");
        return;
      }
      if (sub == "SEARCH") {
        job_uid_mode_ = true;
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
    if (args.size() <= set_index || args[set_index].type != imap::Arg::Type::kAtom) {
      WriteBad(tag, absl::StrCat(sub, " expects a sequence set"));
      return;
    }
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(args[set_index].value);
    if (!set.ok() || set->is_saved_result()) {
      WriteBad(tag, set.ok() ? "saved search results are not supported"
                             : set.status().message());
      return;
    }
    if (!uid_mode) {
      for (const imap::SeqRange& r : set->ranges()) {
        const uint32_t hi = r.last == imap::kStar ? 0 : r.last;
        if (hi > s.view.size() || (r.first != imap::kStar && r.first > s.view.size())) {
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
    job_uid_mode_ = uid_mode;
    job_may_expunge_ = sub == "EXPUNGE" || sub == "MOVE";
    SendJob(sub == "EXPUNGE" ? Job::kExpunge : Job::kMessages, tag,
            absl::StrCat("UID ", sub, " ", SetOf(ranges),
                         args.size() > set_index + 1 ? " " : "",
                         RenderArgs(args, set_index + 1)));
    return;
  }
  if (name == "SEARCH" || name == "SORT") {
    for (const imap::Arg& arg : args) {
      if (arg.type == imap::Arg::Type::kAtom && absl::EqualsIgnoreCase(arg.value, "RETURN")) {
        WriteBad(tag, "SEARCH RETURN (ESEARCH) is not offered in P-IMAP sessions");
        return;
      }
    }
    job_uid_mode_ = false;
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
    job_sort_ = name == "SORT";
    SendJob(Job::kSearch, tag,
            absl::StrCat("UID ", name, " ", program, program.empty() ? "" : " ", keys));
    return;
  }
  if (name == "EXPUNGE") {
    if (s.view.empty()) {
      ok_now("EXPUNGE completed");
      return;
    }
    // Only what the device can see: a view filter must not let it expunge
    // messages outside its view (UIDPLUS UID EXPUNGE).
    job_uid_mode_ = true;
    job_may_expunge_ = true;
    SendJob(Job::kExpunge, tag, absl::StrCat("UID EXPUNGE ", SetOf(s.view.Ranges())));
    return;
  }
  if (name == "CLOSE" && !s.read_only && s.view.empty() &&
      !Trivial(s.filters.View(s.selected_folder))) {
    // Nothing of the device's view to expunge; the rest is not the device's.
    s.selected_folder.clear();
    SendJob(Job::kPlain, tag, "UNSELECT");
    return;
  }
  if (name == "CLOSE" && !s.read_only && !s.view.empty() &&
      !Trivial(s.filters.View(s.selected_folder))) {
    // CLOSE expunges every \Deleted message of the folder; under a view filter
    // only the device's own view may go: UID EXPUNGE it, then UNSELECT (CLOSE
    // sends no untagged EXPUNGE, so none goes to the device either).
    std::string set = SetOf(s.view.Ranges());
    s.selected_folder.clear();
    s.view = session::UidView();
    SendJob(Job::kCloseExpunge, tag, absl::StrCat("UID EXPUNGE ", set));
    return;
  }
  if (name == "CLOSE" || name == "UNSELECT") {
    s.selected_folder.clear();
    s.view = session::UidView();
    SendJob(Job::kPlain, tag, name);
    return;
  }
  if (name == "IDLE") {
    SendJob(Job::kIdle, tag, "IDLE");
    return;
  }
  if (name == "STATUS" && !args.empty() && args[0].is_astring() && selected &&
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

// ---- Store responses -----------------------------------------------------------

void ImapConnection::OnPimapResponseStart(absl::string_view line) {
  resp_action_ = RespAction::kDrop;
  collected_.clear();
  const bool internal = job_ == Job::kEnable || job_ == Job::kResumeSelect ||
                        job_ == Job::kViewSearch || job_ == Job::kSelectSearch ||
                        job_ == Job::kRebuild || job_ == Job::kRebuildNew ||
                        job_ == Job::kEvalView || job_ == Job::kEvalNotify ||
                        job_ == Job::kEvalSync || job_ == Job::kOwnNew ||
                        job_ == Job::kCloseExpunge;
  if (absl::StartsWith(line, "+")) {
    if (job_ == Job::kIdle) {
      idling_ = !device_done_sent_;
      // After verdicts, the store's new "+" is ours: the device never left IDLE.
      resp_action_ = reidle_ ? RespAction::kDrop : RespAction::kForward;
      reidle_ = false;
      ArmKeepalive();
    }
  } else if (!absl::StartsWith(line, "* ")) {
    absl::string_view tag = line.substr(0, line.find(' '));
    // Our own job's completion is collected; a device tag (a streamed APPEND,
    // LOGOUT) goes out as it is.
    resp_action_ = tag == job_up_tag_ ? RespAction::kCollect : RespAction::kForward;
  } else {
    Untagged u = ParseUntagged(line);
    if (u.numbered) {
      const bool own_news = pimap_ != nullptr && !watched_folder() &&
                            !pimap_->selected_folder.empty();
      if (u.name == "FETCH" && job_ == Job::kRebuild) {
        resp_action_ = RespAction::kCollect;
      } else if (u.name == "FETCH" && (job_ == Job::kIdle || IsMaintenanceJob(job_))) {
        // A flag change while idling (or while we ask the store for verdicts in
        // the middle of an IDLE) goes through the journal and the filters.
        if (own_news) resp_action_ = RespAction::kCollect;
      } else if (u.name == "EXISTS" && own_news) {
        own_new_ = true;
      } else if (u.name == "FETCH" && !internal && pimap_ != nullptr) {
        std::optional<uint32_t> uid = FetchUid(line);
        std::optional<uint32_t> msn;
        if (uid) msn = pimap_->view.MsnOf(*uid);
        if (msn) {
          // Renumbered from the device's view; MODSEQ only for a device that
          // enabled CONDSTORE itself (the store connection always has it on).
          std::string rewritten = absl::StrCat("* ", *msn, u.after_number);
          if (!device_condstore_) StripModseq(&rewritten);
          size_t flags_at = line.find("FLAGS (");
          if (flags_at != absl::string_view::npos) {
            absl::string_view f = line.substr(flags_at + 7);
            f = f.substr(0, f.find(')'));
            Told(*pimap_, *uid, FlagKey(absl::StrSplit(f, ' ', absl::SkipEmpty())));
          }
          mid_response_ = true;
          transport_->Write(std::move(rewritten));
          resp_action_ = RespAction::kForward;
          return;
        }
      }
      // EXISTS/RECENT/EXPUNGE and FETCH outside the view: the journal, fed by
      // the user's watch, is the one source of such news for the device.
    } else if (u.name == "VANISHED") {
      const bool earlier = absl::StrContains(line, "(EARLIER)");
      if (job_ == Job::kRebuild ||
          (!earlier && (!internal || IsMaintenanceJob(job_)) &&
           (job_may_expunge_ || (pimap_ != nullptr && !watched_folder())))) {
        resp_action_ = RespAction::kCollect;
      }
    } else if (u.name == "STATUS" && job_ == Job::kStatus) {
      resp_action_ = RespAction::kCollect;
    } else if (u.name == "SEARCH" || u.name == "SORT") {
      if (job_ == Job::kSearch) resp_action_ = RespAction::kCollect;
    } else if (u.name == "ESEARCH") {
      resp_action_ = (job_ == Job::kViewSearch || job_ == Job::kSelectSearch ||
                      job_ == Job::kRebuildNew || job_ == Job::kEvalView ||
                      job_ == Job::kEvalNotify || job_ == Job::kOwnNew)
                         ? RespAction::kCollect
                         : RespAction::kForward;
    } else if (u.name == "OK" || u.name == "NO" || u.name == "BAD") {
      uint32_t uidvalidity = 0;
      absl::string_view code = line;
      size_t at = code.find("[UIDVALIDITY ");
      if (at != absl::string_view::npos &&
          absl::SimpleAtoi(code.substr(at + 13, code.find(']', at) - at - 13),
                           &uidvalidity)) {
        pimap_->view_uidvalidity = uidvalidity;
      }
      at = code.find("[HIGHESTMODSEQ ");
      if (at != absl::string_view::npos &&
          (job_ == Job::kSelect || job_ == Job::kResumeSelect)) {
        absl::SimpleAtoi(code.substr(at + 15, code.find(']', at) - at - 15), &job_modseq_);
      }
      // MODSEQ bookkeeping of the store connection is not the device's news
      // (the device did not ENABLE CONDSTORE here), except as SELECT reports it.
      const bool modseq_noise = absl::StrContains(line, "[HIGHESTMODSEQ ") &&
                                (job_ != Job::kSelect || !device_condstore_);
      if (!internal && !modseq_noise) resp_action_ = RespAction::kForward;
    } else if (u.name == "ENABLED") {
      // ours
    } else if (!internal) {
      resp_action_ = RespAction::kForward;
    }
  }
  if (resp_action_ == RespAction::kForward) {
    mid_response_ = true;
    transport_->Write(line);
  } else if (resp_action_ == RespAction::kCollect) {
    collected_.assign(line.data(), line.size());
  }
}

void ImapConnection::OnPimapResponseEnd(absl::string_view completed_tag) {
  const RespAction action = resp_action_;
  resp_action_ = RespAction::kForward;
  resp_first_ = true;
  if (action != RespAction::kCollect) {
    if (idling_ && job_ == Job::kIdle) OnEventsPending();
    return;
  }
  std::string text = std::move(collected_);
  collected_.clear();
  if (!completed_tag.empty() && completed_tag == job_up_tag_) {
    OnJobDone(absl::StripTrailingAsciiWhitespace(text));
    return;
  }
  absl::string_view body(text);
  body = absl::StripTrailingAsciiWhitespace(body);
  PIMAP_LOG(DEBUG) << "collected: " << imap::QuoteForLog(body.substr(0, 100));
  Untagged u = ParseUntagged(body);
  if (u.name == "VANISHED" && pimap_ != nullptr) {
    absl::string_view set_text = body.substr(body.rfind(' ') + 1);
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(set_text);
    if (!set.ok()) return;
    std::vector<uint32_t> uids;
    for (const auto& [first, last] : pimap_->view.Resolve(*set, true)) {
      for (uint64_t u2 = first; u2 <= last; ++u2) uids.push_back(static_cast<uint32_t>(u2));
    }
    if (job_ != Job::kRebuild && !job_may_expunge_) {
      // Someone else's expunge: never in the middle of a FETCH/STORE/SEARCH by
      // MSN (RFC 3501 §7.4.1); the journal renders it at the next safe point.
      for (uint32_t uid : uids) JournalOwn(session::EventKind::kExpunge, uid, {});
      return;
    }
    // Highest first: each MSN stays valid while the ones above it go.
    std::string out;
    for (auto it = uids.rbegin(); it != uids.rend(); ++it) {
      if (std::optional<uint32_t> msn = pimap_->view.Erase(*it)) {
        absl::StrAppend(&out, "* ", *msn, " EXPUNGE\r\n");
      }
    }
    if (job_ == Job::kRebuild) {
      rebuild_output_ += out;
    } else {
      WriteLocal(std::move(out));
    }
  } else if (u.numbered && u.name == "FETCH" &&
             (job_ == Job::kIdle || IsMaintenanceJob(job_)) && pimap_ != nullptr) {
    std::optional<uint32_t> uid = FetchUid(body);
    size_t flags_at = body.find("FLAGS (");
    if (!uid || flags_at == absl::string_view::npos) return;
    absl::string_view flags = body.substr(flags_at + 7);
    flags = flags.substr(0, flags.find(')'));
    std::vector<std::string> list = absl::StrSplit(flags, ' ', absl::SkipEmpty());
    JournalOwn(session::EventKind::kFlags, *uid, std::move(list));
  } else if (u.numbered && u.name == "FETCH" && job_ == Job::kRebuild && pimap_ != nullptr) {
    // A flag change the device missed: rendered against its (updated) view.
    std::optional<uint32_t> uid = FetchUid(body);
    size_t flags_at = body.find("FLAGS (");
    if (!uid || flags_at == absl::string_view::npos) return;
    absl::string_view flags = body.substr(flags_at + 7);
    flags = flags.substr(0, flags.find(')'));
    if (std::optional<uint32_t> msn = pimap_->view.MsnOf(*uid)) {
      absl::StrAppend(&rebuild_output_, "* ", *msn, " FETCH (UID ", *uid, " FLAGS (",
                      flags, "))\r\n");
    }
  } else if (u.name == "STATUS" && pimap_ != nullptr) {
    std::string line(body);
    size_t at = line.find("MESSAGES ");
    if (at != std::string::npos) {
      size_t end = at + 9;
      while (end < line.size() && absl::ascii_isdigit(line[end])) ++end;
      line.replace(at + 9, end - at - 9, absl::StrCat(pimap_->view.size()));
    }
    WriteLocal(absl::StrCat(line, "\r\n"));
  } else if (u.name == "SEARCH" || u.name == "SORT") {
    for (absl::string_view n : absl::StrSplit(body.substr(std::min<size_t>(6, body.size())), ' ', absl::SkipEmpty())) {
      uint32_t uid;
      if (absl::SimpleAtoi(n, &uid)) search_uids_.push_back(uid);
    }
  } else if (u.name == "ESEARCH") {
    size_t at = body.find(" ALL ");
    if (at == absl::string_view::npos) return;
    absl::string_view set_text = body.substr(at + 5);
    set_text = set_text.substr(0, set_text.find(' '));
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(set_text);
    if (!set.ok()) return;
    for (const imap::SeqRange& r : set->ranges()) {
      for (uint64_t uid = r.first; uid <= r.last && search_uids_.size() < (1u << 24); ++uid) {
        search_uids_.push_back(static_cast<uint32_t>(uid));
      }
    }
  }
}

void ImapConnection::ApplyViewSearch() {
  std::sort(search_uids_.begin(), search_uids_.end());
  search_uids_.erase(std::unique(search_uids_.begin(), search_uids_.end()),
                     search_uids_.end());
  pimap_->view = session::UidView::FromSortedUids(search_uids_);
  search_uids_.clear();
}

void ImapConnection::OnJobDone(absl::string_view tagged_line) {
  PIMAP_LOG(DEBUG) << "store -> " << imap::QuoteForLog(tagged_line);
  absl::string_view rest = tagged_line.substr(tagged_line.find(' ') + 1);
  const bool ok = absl::StartsWithIgnoreCase(rest, "OK");
  DeviceSession* s = pimap_;
  switch (job_) {
    case Job::kEnable:
      if (!ok) {
        PIMAP_LOG(WARNING) << "store refused ENABLE QRESYNC: P-IMAP session refused";
        server_->sessions().End(pimap_);
        pimap_ = nullptr;
        std::string out;
        imap::AppendTaggedStatus(&out, login_tag_, "NO", "CANNOT",
                                 "The message store lacks QRESYNC, which P-IMAP sessions need");
        job_ = Job::kNone;
        blocked_ &= ~kBlockJob;
        link_->Close();
        link_ = nullptr;
        state_ = State::kNotAuthenticated;
        server_->UserLoggedOut(user_);
        user_.clear();
        WriteLocal(std::move(out));
        SetBlocked(kBlockLogin, false);
        return;
      }
      if (pimap_resumed_ && !s->selected_folder.empty()) {
        std::string folder_arg;
        imap::Arg a;
        a.type = imap::Arg::Type::kQuoted;
        a.value = s->selected_folder;
        RenderArg(&folder_arg, a);
        resume_uidvalidity_ = s->view_uidvalidity;
        job_modseq_ = 0;
        SendJob(Job::kResumeSelect, "",
                absl::StrCat(s->read_only ? "EXAMINE " : "SELECT ", folder_arg));
        return;
      }
      blocked_ &= ~kBlockJob;
      FinishLogin();
      return;
    case Job::kResumeSelect: {
      const uint32_t saved = resume_uidvalidity_;
      if (!ok) {
        s->selected_folder.clear();
        blocked_ &= ~kBlockJob;
        FinishLogin();
        return;
      }
      const bool uidvalidity_changed = saved != 0 && saved != s->view_uidvalidity;
      const bool uncertain = s->journal.Uncertain(s->selected_folder);
      // The user's watch journals INBOX only; for any other folder the journal
      // cannot know what happened, so the resume asks the store instead.
      // With store pushes only, notifications may have been lost (the store drops
      // them when we are slow or down): every resume checks with the store.
      const bool watched = server_->sessions().config().watch &&
                           absl::EqualsIgnoreCase(s->selected_folder, "INBOX");
      const bool lost =
          s->restored || !watched || s->journal.NeedsRebuild(s->selected_folder);
      if (!uidvalidity_changed && !uncertain && lost && s->view_modseq != 0) {
        // The journal cannot tell what the device missed, but its view and the
        // MODSEQ it reflects can: ask the store exactly what changed since
        // (CONDSTORE/QRESYNC), instead of a RESYNC.
        rebuild_output_.clear();
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
                             s->filters.View(s->selected_folder)
                                 .ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
        return;
      }
      blocked_ &= ~kBlockJob;
      FinishLogin();
      return;
    }
    case Job::kRebuild:
      SendJob(Job::kRebuildNew, "",
              absl::StrCat("UID SEARCH RETURN (ALL) UID ", s->view.max_uid() + 1, ":* ",
                           s->filters.View(s->selected_folder)
                               .ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    case Job::kRebuildNew: {
      // "UID n:*" also names the last message when none is newer than n.
      std::sort(search_uids_.begin(), search_uids_.end());
      bool grew = false;
      for (uint32_t uid : search_uids_) {
        if (uid > s->view.max_uid() || !s->view.Contains(uid)) {
          if (uid > s->view.max_uid() && s->view.Insert(uid)) grew = true;
        }
      }
      search_uids_.clear();
      if (grew) absl::StrAppend(&rebuild_output_, "* ", s->view.size(), " EXISTS\r\n");
      s->journal.MarkDelivered(s->selected_folder, snapshot_seq_);
      s->journal.AckDelivered(s->selected_folder);
      s->journal.ClearRebuild(s->selected_folder);
      if (job_modseq_ != 0) s->view_modseq = job_modseq_;
      s->restored = false;
      rebuilt_ = true;
      server_->shard().counters().rebuilds.fetch_add(1, std::memory_order_relaxed);
      blocked_ &= ~kBlockJob;
      FinishLogin();
      return;
    }
    case Job::kViewSearch: {
      ApplyViewSearch();
      s->restored = false;
      if (job_modseq_ != 0) s->view_modseq = job_modseq_;
      s->journal.MarkDelivered(s->selected_folder, snapshot_seq_);
      s->journal.AckDelivered(s->selected_folder);
      s->journal.ClearRebuild(s->selected_folder);
      if (live_resync_) {
        live_resync_ = false;
        server_->shard().counters().resyncs.fetch_add(1, std::memory_order_relaxed);
        std::string out = absl::StrCat("* RESYNC\r\n* ", s->view.size(), " EXISTS\r\n",
                                       job_device_tag_, " ", held_finish_, "\r\n");
        held_finish_.clear();
        job_ = Job::kNone;
        job_up_tag_.clear();
        WriteLocal(std::move(out));
        SetBlocked(kBlockJob, false);
        return;
      }
      if (xfilter_resync_) {
        xfilter_resync_ = false;
        server_->shard().counters().resyncs.fetch_add(1, std::memory_order_relaxed);
        std::string out = absl::StrCat("* RESYNC\r\n* ", s->view.size(), " EXISTS\r\n");
        imap::AppendTaggedStatus(&out, job_device_tag_, "OK", "", "XFILTER completed");
        job_ = Job::kNone;
        WriteLocal(std::move(out));
        SetBlocked(kBlockJob, false);
        return;
      }
      blocked_ &= ~kBlockJob;
      FinishLogin();
      return;
    }
    case Job::kSelect:
      if (!ok) {
        FinishCommand(rest);
        return;
      }
      held_tagged_.assign(rest.data(), rest.size());
      SendJob(Job::kSelectSearch, job_device_tag_,
              absl::StrCat("UID SEARCH RETURN (ALL) ",
                           s->filters.View(job_folder_)
                               .ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    case Job::kSelectSearch: {
      if (!ok) {
        s->selected_folder.clear();
        FinishCommand(absl::StrCat("NO ", rest.substr(rest.find(' ') + 1)));
        return;
      }
      ApplyViewSearch();
      s->selected_folder = job_folder_;
      s->read_only = job_examine_;
      // A fresh SELECT shows the folder as it was when the store ran it: news
      // journaled before that are moot; later ones still render (idempotently).
      s->journal.MarkDelivered(s->selected_folder, snapshot_seq_);
      s->journal.AckDelivered(s->selected_folder);
      s->journal.ClearRebuild(s->selected_folder);
      s->view_modseq = job_modseq_;
      s->restored = false;
      s->told_flags.clear();
      s->classified.clear();
      s->in_view.clear();
      s->notify.clear();
      server_->sessions().Save(*s);
      WriteLocal(absl::StrCat("* ", s->view.size(), " EXISTS\r\n* 0 RECENT\r\n"));
      std::string held = std::move(held_tagged_);
      held_tagged_.clear();
      FinishCommand(held);
      return;
    }
    case Job::kSearch: {
      std::string out = job_sort_ ? "* SORT" : "* SEARCH";
      std::vector<uint32_t> numbers;
      for (uint32_t uid : search_uids_) {
        if (job_uid_mode_) {
          if (s->view.Contains(uid)) numbers.push_back(uid);
        } else if (std::optional<uint32_t> msn = s->view.MsnOf(uid)) {
          numbers.push_back(*msn);
        }
      }
      // SORT's order is the answer; SEARCH's is ascending.
      if (!job_sort_) std::sort(numbers.begin(), numbers.end());
      job_sort_ = false;
      for (uint32_t n : numbers) absl::StrAppend(&out, " ", n);
      out += "\r\n";
      if (ok) WriteLocal(std::move(out));
      FinishCommand(rest);
      return;
    }
    case Job::kIdle:
      if (idle_interrupted_) {
        StartEval();  // the store left IDLE because we asked for verdicts
        return;
      }
      idling_ = false;
      FinishCommand(rest);
      return;
    case Job::kCloseExpunge:
      SendJob(Job::kPlain, job_device_tag_, "UNSELECT");
      return;
    case Job::kEvalSync:
      if (own_new_) {
        own_new_ = false;
        SendJob(Job::kOwnNew, job_device_tag_,
                absl::StrCat("UID SEARCH RETURN (ALL) UID ", s->view.max_uid() + 1, ":*"));
        return;
      }
      [[fallthrough]];
    case Job::kOwnNew:
      if (job_ == Job::kOwnNew) {
        // "UID n:*" names the last message even when none is newer than n.
        std::sort(search_uids_.begin(), search_uids_.end());
        const uint32_t max = s->view.max_uid();
        for (uint32_t uid : search_uids_) {
          if (uid > max) {
            session::StoreEvent event;
            event.kind = session::EventKind::kNew;
            event.folder = s->selected_folder;
            event.uidvalidity = s->view_uidvalidity;
            event.uid = uid;
            s->journal.Append(std::move(event));
          }
        }
        search_uids_.clear();
      }
      if (NeedsEval()) {
        StartEvalSearch();
      } else {
        eval_uids_.clear();
        OnEvalDone();
      }
      return;
    case Job::kNewFetch:
      if (fetch_then_finish_) {
        fetch_then_finish_ = false;
        std::string out = absl::StrCat(job_device_tag_, " ", held_finish_, "\r\n");
        held_finish_.clear();
        job_ = Job::kNone;
        job_uid_mode_ = false;
        job_may_expunge_ = false;
        job_up_tag_.clear();
        WriteLocal(std::move(out));
        SetBlocked(kBlockJob, false);
      } else {
        job_ = Job::kIdle;
        ReIdle();
      }
      return;
    case Job::kEvalView: {
      if (!ok) {
        // No verdict: show the mail rather than hide it for good.
        search_uids_ = eval_uids_;
      }
      for (uint32_t uid : search_uids_) s->in_view.insert(uid);
      search_uids_.clear();
      const session::FilterSpec& notify = s->filters.Notification(s->selected_folder);
      if (Trivial(notify)) {
        OnEvalDone();
        return;
      }
      std::string set;
      {
        std::vector<std::pair<uint32_t, uint32_t>> ranges;
        for (uint32_t uid : eval_uids_) ranges.emplace_back(uid, uid);
        set = SetOf(ranges);
      }
      SendJob(Job::kEvalNotify, job_device_tag_,
              absl::StrCat("UID SEARCH RETURN (ALL) UID ", set, " ",
                           notify.ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    }
    case Job::kEvalNotify:
      PIMAP_LOG(DEBUG) << "notification filter admits " << search_uids_.size()
                       << " of " << eval_uids_.size() << " new messages";
      for (uint32_t uid : search_uids_) s->notify.insert(uid);
      search_uids_.clear();
      OnEvalDone();
      return;
    default:
      FinishCommand(rest);
      return;
  }
}

void ImapConnection::FinishCommand(absl::string_view status_rest) {
  if (own_new_ || NeedsEval()) {
    // New mail under a search-key filter: get the store's verdicts before the
    // events are rendered with this command's answer.
    held_finish_.assign(status_rest.data(), status_rest.size());
    held_job_ = job_;
    finish_after_eval_ = true;
    StartEval();
    return;
  }
  std::string out;
  if (pimap_ != nullptr) {
    // RFC 3501 §7.4.1: no EXPUNGE while a FETCH, STORE or SEARCH by MSN runs.
    const bool msn_command = !job_uid_mode_ && (job_ == Job::kMessages || job_ == Job::kSearch);
    if (!msn_command && !pimap_->selected_folder.empty() &&
        pimap_->journal.NeedsRebuild(pimap_->selected_folder)) {
      // The journal overflowed while the device was connected: its news for the
      // folder are gone, so the device resynchronises against a fresh view.
      held_finish_.assign(status_rest.data(), status_rest.size());
      live_resync_ = true;
      SendJob(Job::kViewSearch, job_device_tag_,
              absl::StrCat("UID SEARCH RETURN (ALL) ",
                           pimap_->filters.View(pimap_->selected_folder)
                               .ToSearchProgram(absl::Now(), absl::LocalTimeZone())));
      return;
    }
    rendered_new_.clear();
    out = RenderPending(!msn_command);
    if (!rendered_new_.empty() && NewFormatWanted()) {
      WriteLocal(std::move(out));
      held_finish_.assign(status_rest.data(), status_rest.size());
      fetch_then_finish_ = true;
      FetchNewThen();
      return;
    }
  }
  absl::StrAppend(&out, job_device_tag_, " ", status_rest, "\r\n");
  job_ = Job::kNone;
  job_uid_mode_ = false;
  job_may_expunge_ = false;
  job_up_tag_.clear();
  device_done_sent_ = false;
  WriteLocal(std::move(out));
  SetBlocked(kBlockJob, false);
}

// ---- Journal rendering and push ------------------------------------------------

std::string ImapConnection::RenderPending(bool allow_expunge, size_t max_events,
                                          bool replay) {
  std::string out;
  if (pimap_ == nullptr || pimap_->selected_folder.empty()) return out;
  DeviceSession& s = *pimap_;
  uint64_t last = 0;
  size_t rendered = 0;
  size_t taken = 0;
  for (const session::JournalEntry* entry : s.journal.UndeliveredEntries(s.selected_folder)) {
    const session::StoreEvent& e = entry->event;
    if (e.kind == session::EventKind::kExpunge && !allow_expunge) break;
    if (taken++ == max_events) break;
    if (e.uidvalidity == 0 || s.view_uidvalidity == 0 || e.uidvalidity == s.view_uidvalidity) {
      switch (e.kind) {
        case session::EventKind::kNew:
          if (s.classified.contains(e.uid) && !s.in_view.contains(e.uid)) {
            s.classified.erase(e.uid);  // outside this device's view
            s.notify.erase(e.uid);
            break;
          }
          // A replay after a reconnect may find the UID already in the view:
          // EXISTS is idempotent, so say it again rather than risk a miss.
          // Outside a replay a known UID (the same news from two sources) is
          // not announced twice.
          if (s.view.Insert(e.uid) || (replay && s.view.Contains(e.uid))) {
            absl::StrAppend(&out, "* ", s.view.size(), " EXISTS\r\n");
            rendered_new_.push_back(e.uid);
            ++rendered;
          }
          s.classified.erase(e.uid);
          s.in_view.erase(e.uid);
          s.notify.erase(e.uid);
          break;
        case session::EventKind::kFlags:
          if (std::optional<uint32_t> msn = s.view.MsnOf(e.uid)) {
            const std::string flags = FlagKey(e.flags);
            if (!replay && Told(s, e.uid, flags)) break;  // the device knows already
            absl::StrAppend(&out, "* ", *msn, " FETCH (UID ", e.uid, " FLAGS (",
                            absl::StrJoin(e.flags, " "), "))\r\n");
            ++rendered;
          }
          break;
        case session::EventKind::kExpunge:
          if (std::optional<uint32_t> msn = s.view.Erase(e.uid)) {
            absl::StrAppend(&out, "* ", *msn, " EXPUNGE\r\n");
            ++rendered;
          }
          break;
        default:
          break;
      }
    }
    last = entry->seq;
  }
  if (last != 0) s.journal.MarkDelivered(s.selected_folder, last);
  server_->shard().counters().events_pushed.fetch_add(rendered, std::memory_order_relaxed);
  return out;
}

void ImapConnection::OnEventsPending() {
  if (pimap_ == nullptr || !idling_ || job_ != Job::kIdle || transport_ == nullptr ||
      device_done_sent_ || (idle_interrupted_ && !idle_maintenance_)) {
    return;
  }
  Busy busy(this);
  DeviceSession& s = *pimap_;
  if (s.selected_folder.empty()) return;
  const session::FilterSpec& notify_filter = s.filters.Notification(s.selected_folder);
  // New mail that would be pushed now (the leading run the filters admit): only
  // that is worth leaving the store's IDLE for a new-format FETCH; held-back
  // mail would otherwise make us leave and re-enter IDLE for ever.
  bool new_mail_admitted = false;
  for (const session::JournalEntry* entry : s.journal.UndeliveredEntries(s.selected_folder)) {
    if (!Admits(s, notify_filter, entry->event)) break;
    if (entry->event.kind == session::EventKind::kNew) new_mail_admitted = true;
  }
  if (!idle_maintenance_ &&
      (own_new_ || NeedsEval() || (new_mail_admitted && NewFormatWanted()))) {
    // Verdicts first: leave the store's IDLE (the device stays in its own),
    // ask, push what passes, go back into IDLE.
    idle_interrupted_ = true;
    device_done_ = false;
    link_->Send("DONE\r\n");
    return;
  }
  const session::FilterSpec& notify = s.filters.Notification(s.selected_folder);
  // Push the leading run of events the filters let through; order is kept, so
  // the first held-back event holds back the ones after it too.
  size_t admitted = 0;
  for (const session::JournalEntry* entry : s.journal.UndeliveredEntries(s.selected_folder)) {
    if (!Admits(s, notify, entry->event)) break;
    ++admitted;
  }
  PIMAP_LOG(DEBUG) << "push: " << admitted << " events admitted now";
  if (admitted == 0) return;
  std::string out = RenderPending(true, admitted);
  if (!out.empty()) WriteLocal(std::move(out));
}

bool ImapConnection::NeedsEval() const {
  if (pimap_ == nullptr || pimap_->selected_folder.empty()) return false;
  const DeviceSession& s = *pimap_;
  if (Trivial(s.filters.View(s.selected_folder)) &&
      Trivial(s.filters.Notification(s.selected_folder))) {
    return false;
  }
  for (const session::JournalEntry* entry : s.journal.UndeliveredEntries(s.selected_folder)) {
    if (entry->event.kind == session::EventKind::kNew &&
        !s.classified.contains(entry->event.uid)) {
      return true;
    }
  }
  return false;
}

void ImapConnection::StartEval() {
  // The store shows a session new messages only once it has synced the mailbox
  // (a NOOP does that); a SEARCH right away would not see them.
  SendJob(Job::kEvalSync, job_device_tag_, "NOOP");
}

void ImapConnection::StartEvalSearch() {
  DeviceSession& s = *pimap_;
  eval_uids_.clear();
  for (const session::JournalEntry* entry : s.journal.UndeliveredEntries(s.selected_folder)) {
    if (entry->event.kind == session::EventKind::kNew &&
        !s.classified.contains(entry->event.uid)) {
      eval_uids_.push_back(entry->event.uid);
    }
  }
  std::sort(eval_uids_.begin(), eval_uids_.end());
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  for (uint32_t uid : eval_uids_) {
    if (!ranges.empty() && ranges.back().second + 1 == uid) {
      ranges.back().second = uid;
    } else {
      ranges.emplace_back(uid, uid);
    }
  }
  const std::string set = SetOf(ranges);
  const absl::Time now = absl::Now();
  const session::FilterSpec& view = s.filters.View(s.selected_folder);
  if (!Trivial(view) || view.none) {
    SendJob(Job::kEvalView, job_device_tag_,
            absl::StrCat("UID SEARCH RETURN (ALL) UID ", set, " ",
                         view.ToSearchProgram(now, absl::LocalTimeZone())));
  } else {
    for (uint32_t uid : eval_uids_) s.in_view.insert(uid);
    SendJob(Job::kEvalNotify, job_device_tag_,
            absl::StrCat("UID SEARCH RETURN (ALL) UID ", set, " ",
                         s.filters.Notification(s.selected_folder)
                             .ToSearchProgram(now, absl::LocalTimeZone())));
  }
}

bool ImapConnection::watched_folder() const {
  // Only a watch journals everything for INBOX; with pushes only, the store's
  // notifications are hints, and the device's own connection reports too.
  return pimap_ != nullptr && server_->sessions().config().watch &&
         absl::EqualsIgnoreCase(pimap_->selected_folder, "INBOX");
}

void ImapConnection::JournalOwn(session::EventKind kind, uint32_t uid,
                                std::vector<std::string> flags) {
  DeviceSession& s = *pimap_;
  session::StoreEvent event;
  event.kind = kind;
  event.folder = s.selected_folder;
  event.uidvalidity = s.view_uidvalidity;
  event.uid = uid;
  event.flags = std::move(flags);
  s.journal.Append(std::move(event));
  OnEventsPending();
}

bool ImapConnection::NewFormatWanted() const {
  return pimap_ != nullptr && pimap_->prefs.inband_new_format != "NONE";
}

void ImapConnection::ReIdle() {
  idle_interrupted_ = false;
  if (device_done_) {
    device_done_ = false;
    idling_ = false;
    job_ = Job::kIdle;
    FinishCommand("OK Idle completed");
    return;
  }
  reidle_ = true;
  SendJob(Job::kIdle, job_device_tag_, "IDLE");
  // The device's "DONE" may be waiting in the input while we were busy.
  SetBlocked(kBlockJob, false);
}

// PIMAP_INBAND_NEW_FORMAT: after "* n EXISTS", "* n FETCH (<items>)" for the
// new messages, fetched by UID and renumbered from the device's view.
void ImapConnection::FetchNewThen() {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  std::sort(rendered_new_.begin(), rendered_new_.end());
  for (uint32_t uid : rendered_new_) {
    if (!ranges.empty() && ranges.back().second + 1 == uid) {
      ranges.back().second = uid;
    } else if (ranges.empty() || ranges.back().second < uid) {
      ranges.emplace_back(uid, uid);
    }
  }
  rendered_new_.clear();
  SendJob(Job::kNewFetch, job_device_tag_,
          absl::StrCat("UID FETCH ", SetOf(ranges), " ", pimap_->prefs.inband_new_format));
}

void ImapConnection::OnEvalDone() {
  DeviceSession& s = *pimap_;
  for (uint32_t uid : eval_uids_) s.classified.insert(uid);
  eval_uids_.clear();
  blocked_ &= ~kBlockJob;
  if (finish_after_eval_) {
    finish_after_eval_ = false;
    job_ = held_job_;
    std::string rest = std::move(held_finish_);
    held_finish_.clear();
    FinishCommand(rest);
    return;
  }
  // Back from the store work taken in the middle of an IDLE: push what passes,
  // then (new-format) the FETCH for new mail, then back into the store's IDLE.
  job_ = Job::kIdle;
  if (!device_done_) {
    idle_maintenance_ = true;
    rendered_new_.clear();
    OnEventsPending();
    idle_maintenance_ = false;
    if (!rendered_new_.empty() && NewFormatWanted()) {
      FetchNewThen();
      return;
    }
  }
  ReIdle();
}

// Devices in IDLE behind carrier NATs lose their mapping after a few minutes of
// silence: say something at --idle-keepalive. The phase comes from the device id,
// so one device's connections wake its radio together, and different devices
// are spread over the interval.
void ImapConnection::ArmKeepalive() {
  TimerWheel& timers = server_->shard().timers();
  if (keepalive_timer_ != 0) timers.Cancel(keepalive_timer_);
  keepalive_timer_ = 0;
  const int64_t interval = server_->sessions().config().idle_keepalive_ms;
  if (interval <= 0 || pimap_ == nullptr) return;
  const int64_t phase =
      static_cast<int64_t>(std::hash<std::string>()(pimap_->device) % interval);
  const int64_t delay = interval - (MonotonicNowMs() + phase) % interval;
  keepalive_timer_ = timers.Schedule(delay, [this] {
    keepalive_timer_ = 0;
    if (!idling_ || job_ != Job::kIdle || transport_ == nullptr) return;
    Busy busy(this);
    WriteLocal("* OK Still here\r\n");
    ArmKeepalive();
  });
}

void ImapConnection::OnFolderEvent(const session::StoreEvent& event) {
  if (pimap_ == nullptr || transport_ == nullptr || event.raw.empty()) return;
  Busy busy(this);
  WriteLocal(absl::StrCat(event.raw, "\r\n"));
}

void ImapConnection::OnTakenOver() {
  pimap_ = nullptr;  // the session now belongs to the newer connection
  Shutdown("Session taken over by a newer connection of this device");
}

}  // namespace pimap::tcp
