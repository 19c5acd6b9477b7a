// Per-user store watch: SELECT INBOX, IDLE, catch up by CONDSTORE on change;
// other folders by NOTIFY STATUS and excursions (EXAMINE with QRESYNC).
#include "store/user_watcher.h"

#include <algorithm>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"
#include "core/session/store_text.h"

namespace pimap::store {

namespace {
constexpr size_t kMaxResponseBytes = 8 << 20;
constexpr int64_t kBackoffBaseMs = 250;
constexpr int64_t kBackoffMaxMs = 30000;

imap::ParserLimits WatchLimits(const imap::ParserLimits& base) {
  imap::ParserLimits limits = base;
  limits.max_line_bytes = kMaxResponseBytes;
  limits.max_literal_bytes = kMaxResponseBytes;
  return limits;
}

}  // namespace

UserWatcher::UserWatcher(engine::Shard* shard, const UpstreamConfig& config,
                         std::string user,
                         session::StoreCredentials credentials,
                         session::StoreEventSink* sink,
                         const UpstreamConfig* live_config,
                         session::WatchScope scope)
    : shard_(shard),
      config_(config),
      live_config_(live_config),
      user_(std::move(user)),
      credentials_(std::move(credentials)),
      sink_(sink),
      scope_(scope),
      framer_(imap::Framer::Mode::kResponses, WatchLimits(config.limits)),
      assembler_(WatchLimits(config.limits), kMaxResponseBytes),
      alive_(std::make_shared<bool>(true)) {
  delimiter_.type = imap::Arg::Type::kNil;
  delimiter_.value = "NIL";
  folders_.set_namespaces(config_.namespaces);
  folders_.set_view_source([this](absl::string_view folder) {
    return sink_->OldestLiveView(user_, folder, /*uidvalidity=*/0);
  });
  Connect();
}

UserWatcher::~UserWatcher() {
  if (retry_timer_ != 0) shard_->timers().Cancel(retry_timer_);
  for (HeadlineAsk& ask : headline_asks_) shard_->timers().Cancel(ask.timer);
}

void UserWatcher::Close() {
  state_ = State::kClosed;
  alive_.reset();
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
  delete this;
}

uint64_t UserWatcher::highest_modseq(absl::string_view folder) const {
  if (folder == kFolder) return journaled_modseq_;
  const FolderCatchUp::Folder* f = folders_.Find(folder);
  return f == nullptr ? 0 : f->modseq;
}

uint32_t UserWatcher::uidvalidity(absl::string_view folder) const {
  if (folder == kFolder) return uidvalidity_;
  const FolderCatchUp::Folder* f = folders_.Find(folder);
  return f == nullptr ? 0 : f->uidvalidity;
}

void UserWatcher::CoverFolders(std::vector<std::string> folders) {
  if (folders == requested_) return;
  requested_ = folders;
  if (!folders_.SetCovered(folders)) return;
  switch (state_) {
    case State::kConnecting:
    case State::kEnable:
    case State::kBackoff:
    case State::kRejected:
    case State::kClosed:
      return;  // the next NOTIFY names them
    default:
      break;
  }
  renotify_due_ = true;
  if (state_ == State::kIdle) LeaveIdle();
}

void UserWatcher::Connect() {
  state_ = State::kConnecting;
  notify_full_ = false;
  framer_.Reset();
  assembler_.Reset();
  selected_.clear();
  open_.clear();
  opening_.clear();
  std::weak_ptr<bool> alive = alive_;
  // The store's address and TLS as the last reload left them.
  if (live_config_ != nullptr) config_ = *live_config_;
  UpstreamLink::Open(shard_, config_, credentials_,
                     [this, alive, generation = credentials_generation_](
                         absl::StatusOr<session::StoreLink*> link) {
                       if (alive.expired()) {
                         if (link.ok()) (*link)->Close();
                         return;
                       }
                       OnLinked(std::move(link), generation);
                     });
}

void UserWatcher::UpdateCredentials(session::StoreCredentials credentials) {
  credentials.origin = {};  // the gateway's own connection, not a device's
  if (credentials.password != credentials_.password ||
      credentials.user != credentials_.user ||
      credentials.authzid != credentials_.authzid) {
    ++credentials_generation_;
  }
  credentials_ = std::move(credentials);
  if (state_ == State::kRejected) {
    PIMAP_LOG(INFO) << "store watch for " << imap::QuoteForLog(user_)
                    << ": new credentials, logging in again";
    Connect();
  }
}

void UserWatcher::OnLinked(absl::StatusOr<session::StoreLink*> link,
                           uint64_t generation) {
  if (!link.ok() && absl::IsUnauthenticated(link.status())) {
    if (generation != credentials_generation_) {
      Connect();  // rejected credentials were replaced meanwhile: try the new
      return;
    }
    // Not again with the same password: a watch retrying a stale password
    // every few seconds gets the account locked by the store's brute-force
    // protection. The next login of the user brings new credentials.
    state_ = State::kRejected;
    folders_.Abort();
    PIMAP_LOG(WARNING) << "store watch for " << imap::QuoteForLog(user_)
                       << ": the store rejected the login ("
                       << link.status().message()
                       << "); not retrying until the user logs in again";
    sink_->OnStoreLoginRejected(user_, credentials_.password);
    std::fill(credentials_.password.begin(), credentials_.password.end(), '\0');
    credentials_.password.clear();  // of no use any more: not kept
    return;
  }
  if (!link.ok()) {
    LinkLost(link.status().message());
    return;
  }
  link_ = *link;
  link_->SetClient(this);
  failures_ = 0;
  state_ = State::kEnable;
  Send("W1 ENABLE QRESYNC");
}

void UserWatcher::Send(absl::string_view command) {
  PIMAP_LOG(DEBUG) << "watch " << imap::QuoteForLog(user_) << " <- "
                   << imap::QuoteForLog(command.substr(0, 120));
  if (link_ != nullptr) link_->Send(absl::StrCat(command, "\r\n"));
}

void UserWatcher::LinkLost(absl::string_view why) {
  if (state_ == State::kClosed) return;
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
  state_ = State::kBackoff;
  folders_.Abort();  // an interrupted folder catch-up waits for the next link
  ++failures_;
  // Exponential back-off with jitter, so a store restart is not met by every
  // watch of every shard reconnecting in the same millisecond.
  int64_t delay = kBackoffBaseMs << std::min(failures_ - 1, 7);
  delay = std::min(delay, kBackoffMaxMs);
  static thread_local std::mt19937 rng(std::random_device{}());
  delay = delay / 2 + std::uniform_int_distribution<int64_t>(0, delay / 2)(rng);
  PIMAP_LOG(INFO) << "store watch for " << imap::QuoteForLog(user_) << " lost ("
                  << why << "); reconnecting in " << delay << " ms";
  retry_timer_ = shard_->timers().Schedule(delay, [this] {
    retry_timer_ = 0;
    Connect();
  });
}

void UserWatcher::OnStoreClosed(absl::Status reason) {
  link_ = nullptr;
  LinkLost(reason.message());
}

void UserWatcher::OnStoreBytes(absl::string_view bytes) {
  // The link hands us verbatim response bytes; frame and parse them ourselves.
  while (!bytes.empty() && state_ != State::kClosed && !frame_error_) {
    size_t used = framer_.Feed(bytes, *this);
    bytes.remove_prefix(std::min(used, bytes.size()));
    if (used == 0) break;
  }
  if (frame_error_) {
    frame_error_ = false;
    LinkLost("unparsable store response");
  }
}

bool UserWatcher::OnLine(absl::string_view line,
                         const imap::LiteralHeader* literal) {
  if (!assembler_.AddLine(line, literal).ok()) frame_error_ = true;
  return !frame_error_;
}

bool UserWatcher::OnLiteralData(absl::string_view chunk) {
  if (!assembler_.AddLiteralData(chunk).ok()) frame_error_ = true;
  return !frame_error_;
}

bool UserWatcher::OnEnd() {
  absl::StatusOr<imap::Response> response = assembler_.Finish();
  if (!response.ok()) {
    frame_error_ = true;
    return false;
  }
  OnResponse(*response);
  return state_ != State::kClosed && state_ != State::kBackoff;
}

bool UserWatcher::OnError(const imap::FrameError& error) {
  frame_error_ = true;
  return false;
}

void UserWatcher::OnResponse(const imap::Response& r) {
  using Kind = imap::Response::Kind;
  PIMAP_LOG(DEBUG) << "watch " << imap::QuoteForLog(user_) << " -> "
                   << (r.kind == Kind::kUntagged ? "*" : r.tag) << " " << r.name
                   << " " << LoggedArgs(r);
  if (r.kind == Kind::kUntagged) {
    if (r.name == "BYE") {
      LinkLost(r.text);
      return;
    }
    if (r.name == "LIST") {
      OnList(r);
      return;
    }
    if (r.name == "STATUS") {
      // A baseline entry (LIST-STATUS) or NOTIFY saying a folder changed.
      folders_.OnStatus(r);
      if (state_ == State::kIdle && folders_.queued()) LeaveIdle();
      return;
    }
    if (r.is_status()) {
      OnCode(r.code);
      return;
    }
    if (r.name == "FETCH" || r.name == "VANISHED" || r.name == "EXISTS" ||
        r.name == "EXPUNGE") {
      OnMessageData(r);
      return;
    }
  }
  const bool tagged = r.kind == Kind::kTagged;
  const bool ok = tagged && r.name == "OK";
  switch (state_) {
    case State::kEnable:
      if (!tagged) return;
      if (!ok) {
        LinkLost("the store does not support QRESYNC");
        return;
      }
      // INBOX is the selected mailbox; every other personal one reports its
      // message changes as "* STATUS" and its creation, deletion and renaming
      // as "* LIST" (RFC 5465).
      // The shared and public folders devices have selected too (by name).
      state_ = State::kNotify;
      renotify_due_ = false;
      Send(absl::StrCat("W6 ", NotifyCommand()));
      return;
    case State::kNotify:
      if (!tagged) return;
      if (!ok && !folders_.covered().empty()) {
        // Perhaps for the names of other users' folders: without them.
        PIMAP_LOG(INFO) << "store watch for " << imap::QuoteForLog(user_)
                        << ": NOTIFY refused (" << r.text
                        << "); shared and public folders not covered";
        folders_.SetCovered({});
        Send(absl::StrCat("W6 ", NotifyCommand()));
        return;
      }
      if (covered_only()) {
        StartCoveredOnly(ok);
        return;
      }
      if (!ok) {
        // Folder events may still be had; other folders are then not covered.
        state_ = State::kNotifyInboxOnly;
        Send(
            "W6 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
            "(personal (MailboxName))");
        return;
      }
      notify_full_ = true;
      // After NOTIFY, so that a change during the listing is reported too.
      state_ = State::kList;
      folders_.BeginBaseline();
      Send(
          "W7 LIST \"\" \"*\" RETURN (STATUS (UIDVALIDITY UIDNEXT "
          "HIGHESTMODSEQ))");
      return;
    case State::kNotifyInboxOnly:
      // Without NOTIFY the watch still works; folder events are then not seen.
      if (!tagged) return;
      folders_.Disable();
      SelectInbox();
      return;
    case State::kList:
      if (!tagged) return;
      if (!ok) {
        PIMAP_LOG(INFO) << "store has no LIST-STATUS: the watch covers INBOX "
                           "only";
      }
      ReportFolderChanges(folders_.EndBaseline(ok));
      if (std::exchange(relisting_, false)) {
        Settle();  // INBOX stayed selected
        return;
      }
      SelectInbox();
      return;
    case State::kSelect:
      if (!tagged) return;
      OnSelectDone(ok);
      if (!ok) {
        LinkLost(absl::StrCat("SELECT INBOX failed: ", r.text));
        return;
      }
      OnInboxSelected();
      return;
    case State::kSearch:
      if (r.kind == Kind::kUntagged && r.name == "ESEARCH") {
        for (size_t i = 0; i + 1 < r.args.size(); ++i) {
          if (r.args[i].type == imap::Arg::Type::kAtom &&
              absl::EqualsIgnoreCase(r.args[i].value, "ALL")) {
            absl::StatusOr<imap::SequenceSet> set =
                imap::SequenceSet::Parse(r.args[i + 1].value);
            if (!set.ok()) continue;
            std::vector<uint32_t> uids;
            for (const imap::SeqRange& range : set->ranges()) {
              for (uint64_t u = range.first;
                   u <= range.last && uids.size() < (1u << 24); ++u) {
                uids.push_back(static_cast<uint32_t>(u));
              }
            }
            known_ = session::UidView::FromSortedUids(uids);
          }
        }
        return;
      }
      if (tagged) {
        // Past what the search found too (a message new since the SELECT).
        uidnext_ = std::max(uidnext_, known_.max_uid() + 1);
        // The baseline is the SELECT's (MODSEQ, UIDNEXT) but the search ran
        // later: mail that came between would be caught up as a flag change,
        // mail that went never reported (docs/chaos-test.md, defect 5). So
        // catch up from the SELECT as for an older view (top below its
        // UIDNEXT), or from a connected device's view if older still.
        session::ViewStart start;
        if (select_uidnext_ != 0 && highest_modseq_ != 0) {
          start = {highest_modseq_, select_uidnext_ - 1};
        }
        const session::ViewStart older =
            sink_->OldestLiveView(user_, kFolder, uidvalidity_);
        if (older.modseq != 0 &&
            (start.modseq == 0 || older.modseq < start.modseq)) {
          start = {older.modseq, start.modseq == 0
                                     ? older.top_uid
                                     : std::min(older.top_uid, start.top_uid)};
        }
        if (start.modseq != 0) {
          view_catchup_ = start;
          StartCatchUp();
          return;
        }
        // Events of INBOX begin here (a change during the search comes as
        // untagged data and is caught up from this MODSEQ).
        sink_->OnWatchBaseline(user_, kFolder, uidvalidity_, highest_modseq_);
        Settle();
      }
      return;
    case State::kCatchUp:
      if (tagged) {
        const uint64_t looked_at = highest_modseq_;
        highest_modseq_ = std::max(highest_modseq_, catchup_modseq_);
        Flush();
        if (view_catchup_.modseq != 0) {
          // Events now begin at the older view, unless too much vanished to
          // name (then such views are rebuilt: OnWatchBaseline's contract).
          const uint64_t from =
              view_catchup_overflow_ ? looked_at : view_catchup_.modseq;
          view_catchup_ = {};
          view_catchup_overflow_ = false;
          sink_->OnWatchBaseline(user_, kFolder, uidvalidity_, from);
        }
        Settle();
      }
      return;
    case State::kIdle:
      if (tagged && !ok) {
        // Refused (a store without IDLE where nothing is selected): not
        // again at once, which would spin, but after the link's back-off.
        LinkLost(absl::StrCat("IDLE refused: ", r.text));
        return;
      }
      if (tagged) {
        // IDLE ended by the store (timeout): look, then idle again.
        if (!covered_only()) inbox_dirty_ = true;
        Settle();
      }
      return;
    case State::kLeavingIdle:
      if (tagged) Settle();
      return;
    case State::kHeadline:
      if (tagged) AfterHeadlines();
      return;
    case State::kRenotify:
      if (!tagged) return;
      if (!ok) {
        if (folders_.covered().empty()) {
          LinkLost(absl::StrCat("NOTIFY refused: ", r.text));
          return;
        }
        PIMAP_LOG(INFO) << "store watch for " << imap::QuoteForLog(user_)
                        << ": NOTIFY refused (" << r.text
                        << "); shared and public folders not covered";
        folders_.SetCovered({});  // and the NOTIFY without them
        renotify_due_ = true;
      }
      Settle();
      return;
    case State::kExamine:
      if (tagged) OnFolderLooked(ok, r.text);
      return;
    case State::kUnselect:
      if (!tagged) return;
      // A store without UNSELECT leaves the folder selected: its message data
      // then queues it for a look (OnMessageData).
      if (ok) OnSelectDone(false);
      Settle();
      return;
    case State::kReturn:
      if (!tagged) return;
      OnSelectDone(ok);
      if (!ok) {
        LinkLost(absl::StrCat("SELECT INBOX failed: ", r.text));
        return;
      }
      if (select_uidvalidity_ != uidvalidity_) {
        RebaselineInbox();
        return;
      }
      // The QRESYNC output reported every INBOX change up to its HIGHESTMODSEQ.
      highest_modseq_ =
          std::max({highest_modseq_, catchup_modseq_, select_modseq_});
      Flush();
      Settle();
      return;
    default:
      return;
  }
}

void UserWatcher::OnCode(absl::string_view code) {
  if (absl::EqualsIgnoreCase(code, "CLOSED")) {
    open_ = opening_;  // from here on, message data is the new mailbox's
    return;
  }
  if (state_ == State::kExamine) {
    if (!folders_.current().empty() && open_ == folders_.current()) {
      folders_.OnCode(code);
    }
    return;
  }
  uint64_t n = 0;
  if (CodeNumber(code, "UIDVALIDITY", &n)) {
    select_uidvalidity_ = static_cast<uint32_t>(n);
  }
  if (CodeNumber(code, "HIGHESTMODSEQ", &n)) select_modseq_ = n;
  // Taken as the watch's own mark only by a new baseline: a reconnect's or a
  // return's UIDNEXT would skip the UIDs that came and went meanwhile.
  if (CodeNumber(code, "UIDNEXT", &n)) {
    select_uidnext_ = static_cast<uint32_t>(n);
  }
}

void UserWatcher::OnMessageData(const imap::Response& r) {
  if (open_.empty()) return;
  if (state_ == State::kHeadline && r.name == "FETCH" && OnHeadlineFetch(r)) {
    return;
  }
  if (open_ != kFolder) {
    if (state_ == State::kExamine && open_ == folders_.current()) {
      // The folder's QRESYNC output; its EXISTS is only a count (new mail
      // comes as FETCH of a UID past the last UIDNEXT).
      if (r.name == "FETCH") folders_.OnFetch(r);
      if (r.name == "VANISHED") folders_.OnVanished(r);
      return;
    }
    folders_.Queue(open_);  // changed after its catch-up: look again
    if (state_ == State::kIdle && folders_.queued()) LeaveIdle();
    return;
  }
  switch (state_) {
    case State::kCatchUp:
    case State::kReturn:
      if (r.name == "FETCH") {
        OnFetch(r);
      } else if (r.name == "VANISHED") {
        OnVanished(r);
      } else if (state_ == State::kCatchUp) {
        // An EXISTS may announce a message the running FETCH does not show
        // (a SELECT's EXISTS is only the count: its QRESYNC output says all).
        inbox_dirty_ = true;
        // Hazard: an unsolicited FETCH of a later flag change may follow with
        // a MODSEQ above the new message's; as the mark it would start the
        // next catch-up past that message. The mark stays where it was
        // before this EXISTS; the next catch-up repeats the rest.
        catchup_mark_frozen_ = true;
      }
      return;
    case State::kIdle:
      inbox_dirty_ = true;
      LeaveIdle();
      return;
    default:
      inbox_dirty_ = true;  // looked at when INBOX is next caught up
      return;
  }
}

void UserWatcher::SendSelect(absl::string_view command,
                             absl::string_view target) {
  opening_.assign(target.data(), target.size());
  // Nothing selected: no [CLOSED] comes, the data is the new mailbox's at once.
  if (selected_.empty()) open_ = opening_;
  Send(command);
}

void UserWatcher::OnSelectDone(bool ok) {
  // A failed SELECT/EXAMINE leaves no mailbox selected (RFC 3501).
  selected_ = ok ? opening_ : "";
  open_ = selected_;
  opening_.clear();
}

void UserWatcher::SelectInbox() {
  state_ = State::kSelect;
  select_modseq_ = 0;
  select_uidvalidity_ = 0;
  select_uidnext_ = 0;
  SendSelect("W2 SELECT INBOX", kFolder);
}

void UserWatcher::OnInboxSelected() {
  if (uidvalidity_ != 0 && select_uidvalidity_ == uidvalidity_ &&
      highest_modseq_ != 0) {
    StartCatchUp();  // reconnect: everything since the last MODSEQ we saw
    return;
  }
  RebaselineInbox();
}

void UserWatcher::RebaselineInbox() {
  if (uidvalidity_ != 0 && select_uidvalidity_ != uidvalidity_) {
    PIMAP_LOG(WARNING) << "UIDVALIDITY of INBOX changed for "
                       << imap::QuoteForLog(user_);
  }
  // First contact (or a new UIDVALIDITY): learn the UIDs, compactly.
  uidvalidity_ = select_uidvalidity_;
  highest_modseq_ = select_modseq_;
  uidnext_ = select_uidnext_;  // and past the search's highest UID
  known_ = session::UidView();
  view_catchup_ = {};  // views of another UIDVALIDITY get a RESYNC anyway
  view_catchup_overflow_ = false;
  inbox_dirty_ = false;
  state_ = State::kSearch;
  Send("W3 UID SEARCH RETURN (ALL) ALL");
}

void UserWatcher::StartCatchUp() {
  state_ = State::kCatchUp;
  inbox_dirty_ = false;
  // pending_ survives a reconnect on purpose: what an interrupted catch-up
  // found (and already recorded in known_) is delivered with the next one.
  catchup_modseq_ = highest_modseq_;
  catchup_mark_frozen_ = false;
  // From an older device view's MODSEQ while that is owed (also after a
  // reconnect that interrupted it).
  const uint64_t since = view_catchup_.modseq != 0
                             ? std::min(view_catchup_.modseq, highest_modseq_)
                             : highest_modseq_;
  Send(absl::StrCat("W4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE ", since,
                    " VANISHED)"));
}

void UserWatcher::Settle() {
  // Everything up to here went to the sink.
  journaled_modseq_ = highest_modseq_;
  if (FetchHeadlines()) return;  // a wake-up waits for one
  if (renotify_due_ && notify_full_) {
    // Before the first look of a folder newly covered: a change after the
    // look is then reported.
    renotify_due_ = false;
    state_ = State::kRenotify;
    Send(absl::StrCat("W10 ", NotifyCommand()));
    return;
  }
  if (std::exchange(relist_due_, false) && folders_.tracking()) {
    // A mailbox event came: list again, so that what the store's events
    // left out (it coalesces a quick rename + create + delete into one
    // event, or none) is found by comparison (FolderCatchUp::EndBaseline).
    state_ = State::kList;
    relisting_ = true;
    folders_.BeginBaseline();
    Send(
        "W7 LIST \"\" \"*\" RETURN (STATUS (UIDVALIDITY UIDNEXT "
        "HIGHESTMODSEQ))");
    return;
  }
  if (folders_.queued()) {
    // One excursion takes the folders waiting now, one after another; those
    // queued meanwhile wait for the next, so INBOX is never left for long.
    budget_ = folders_.queue_size();
    NextFolder();
  } else if (inbox_dirty_) {
    StartCatchUp();
  } else {
    EnterIdle();
  }
}

void UserWatcher::NextFolder() {
  if (budget_ > 0) {
    const std::string command = folders_.StartNext();
    if (!command.empty()) {
      --budget_;
      state_ = State::kExamine;
      SendSelect(absl::StrCat("W8 ", command), folders_.current());
      return;
    }
  }
  ReturnToInbox();
}

void UserWatcher::ReturnToInbox() {
  if (covered_only()) {
    LeaveFolder();
    return;
  }
  if (selected_ == kFolder) {
    // Nothing was examined (only stale names waited): still in INBOX.
    if (inbox_dirty_) {
      StartCatchUp();
    } else {
      EnterIdle();
    }
    return;
  }
  if (uidvalidity_ == 0 || highest_modseq_ == 0) {
    SelectInbox();
    return;
  }
  // What INBOX got while the watch was away comes with the SELECT itself.
  state_ = State::kReturn;
  inbox_dirty_ = false;
  select_modseq_ = 0;
  select_uidvalidity_ = 0;
  catchup_modseq_ = highest_modseq_;
  SendSelect(absl::StrCat("W9 SELECT INBOX (QRESYNC (", uidvalidity_, " ",
                          highest_modseq_, "))"),
             kFolder);
}

void UserWatcher::LeaveIdle() {
  state_ = State::kLeavingIdle;
  Send("DONE");
}

void UserWatcher::EnterIdle() {
  state_ = State::kIdle;
  Send("W5 IDLE");
}

}  // namespace pimap::store
