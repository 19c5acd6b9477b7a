// Per-user store watch: SELECT INBOX, IDLE, catch up by CONDSTORE on change.
#include "store/user_watcher.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"

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

// "UIDVALIDITY 3" → 3, for the code name given.
bool CodeNumber(absl::string_view code, absl::string_view name, uint64_t* out) {
  if (!absl::StartsWithIgnoreCase(code, name) || code.size() <= name.size() ||
      code[name.size()] != ' ') {
    return false;
  }
  code.remove_prefix(name.size() + 1);
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(code), out);
}
}  // namespace

UserWatcher::UserWatcher(engine::Shard* shard, const UpstreamConfig& config,
                         std::string user, session::StoreCredentials credentials,
                         session::StoreEventSink* sink)
    : shard_(shard),
      config_(config),
      user_(std::move(user)),
      credentials_(std::move(credentials)),
      sink_(sink),
      framer_(imap::Framer::Mode::kResponses, WatchLimits(config.limits)),
      assembler_(WatchLimits(config.limits), kMaxResponseBytes),
      alive_(std::make_shared<bool>(true)) {
  Connect();
}

UserWatcher::~UserWatcher() {
  if (retry_timer_ != 0) shard_->timers().Cancel(retry_timer_);
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

void UserWatcher::Connect() {
  state_ = State::kConnecting;
  framer_.Reset();
  assembler_.Reset();
  assembler_empty_ = true;
  std::weak_ptr<bool> alive = alive_;
  UpstreamLink::Open(shard_, config_, credentials_,
                     [this, alive](absl::StatusOr<session::StoreLink*> link) {
                       if (alive.expired()) {
                         if (link.ok()) (*link)->Close();
                         return;
                       }
                       OnLinked(std::move(link));
                     });
}

void UserWatcher::OnLinked(absl::StatusOr<session::StoreLink*> link) {
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
  if (link_ != nullptr) link_->Send(absl::StrCat(command, "\r\n"));
}

void UserWatcher::LinkLost(absl::string_view why) {
  if (state_ == State::kClosed) return;
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
  state_ = State::kBackoff;
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

bool UserWatcher::OnLine(absl::string_view line, const imap::LiteralHeader* literal) {
  if (assembler_empty_) last_line_.assign(line.data(), std::min<size_t>(line.size(), 4096));
  assembler_empty_ = false;
  if (!assembler_.AddLine(line, literal).ok()) frame_error_ = true;
  return !frame_error_;
}

bool UserWatcher::OnLiteralData(absl::string_view chunk) {
  if (!assembler_.AddLiteralData(chunk).ok()) frame_error_ = true;
  return !frame_error_;
}

bool UserWatcher::OnEnd() {
  assembler_empty_ = true;
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
  if (r.kind == Kind::kUntagged && r.name == "BYE") {
    LinkLost(r.text);
    return;
  }
  if (r.kind == Kind::kUntagged && r.name == "LIST") {
    OnList(r);
    return;
  }
  if (r.kind == Kind::kUntagged && r.is_status()) {
    uint64_t n = 0;
    if (CodeNumber(r.code, "UIDVALIDITY", &n)) select_uidvalidity_ = static_cast<uint32_t>(n);
    if (CodeNumber(r.code, "HIGHESTMODSEQ", &n)) select_modseq_ = n;
    if (CodeNumber(r.code, "UIDNEXT", &n)) uidnext_ = static_cast<uint32_t>(n);
    return;
  }
  switch (state_) {
    case State::kEnable:
      if (r.kind == Kind::kTagged) {
        if (r.name != "OK") {
          LinkLost("the store does not support QRESYNC");
          return;
        }
        // Mailbox creations, deletions and renames come as "* LIST" (RFC 5465);
        // message events for INBOX still come through the selected-mailbox path.
        state_ = State::kNotify;
        Send("W6 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
             "(personal (MailboxName))");
      }
      return;
    case State::kNotify:
      if (r.kind == Kind::kTagged) {
        // Without NOTIFY the watch still works; folder events are then not seen.
        state_ = State::kSelect;
        select_modseq_ = 0;
        select_uidvalidity_ = 0;
        Send("W2 SELECT INBOX");
      }
      return;
    case State::kSelect:
      if (r.kind != Kind::kTagged) return;
      if (r.name != "OK") {
        LinkLost(absl::StrCat("SELECT INBOX failed: ", r.text));
        return;
      }
      if (uidvalidity_ != 0 && select_uidvalidity_ == uidvalidity_ &&
          highest_modseq_ != 0) {
        StartCatchUp();  // reconnect: everything since the last MODSEQ we saw
        return;
      }
      if (uidvalidity_ != 0 && select_uidvalidity_ != uidvalidity_) {
        PIMAP_LOG(WARNING) << "UIDVALIDITY of INBOX changed for "
                           << imap::QuoteForLog(user_);
      }
      // First contact (or a new UIDVALIDITY): learn the UIDs, compactly.
      uidvalidity_ = select_uidvalidity_;
      highest_modseq_ = select_modseq_;
      known_ = session::UidView();
      state_ = State::kSearch;
      Send("W3 UID SEARCH RETURN (ALL) ALL");
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
              for (uint64_t u = range.first; u <= range.last && uids.size() < (1u << 24); ++u) {
                uids.push_back(static_cast<uint32_t>(u));
              }
            }
            known_ = session::UidView::FromSortedUids(uids);
          }
        }
        return;
      }
      if (r.kind == Kind::kTagged) {
        if (uidnext_ == 0) uidnext_ = known_.max_uid() + 1;
        EnterIdle();
      }
      return;
    case State::kCatchUp:
      if (r.kind == Kind::kUntagged && r.name == "FETCH") {
        OnFetch(r);
      } else if (r.kind == Kind::kUntagged && r.name == "VANISHED") {
        OnVanished(r);
      } else if (r.kind == Kind::kTagged) {
        highest_modseq_ = std::max(highest_modseq_, catchup_modseq_);
        Flush();
        EnterIdle();
      }
      return;
    case State::kIdle:
      if (r.kind == Kind::kUntagged &&
          (r.name == "EXISTS" || r.name == "EXPUNGE" || r.name == "VANISHED" ||
           r.name == "FETCH")) {
        state_ = State::kLeavingIdle;
        Send("DONE");
      } else if (r.kind == Kind::kTagged) {
        StartCatchUp();  // IDLE ended by the store (timeout): look, then idle again
      }
      return;
    case State::kLeavingIdle:
      if (r.kind == Kind::kTagged) StartCatchUp();
      return;
    default:
      return;
  }
}

void UserWatcher::StartCatchUp() {
  state_ = State::kCatchUp;
  // pending_ survives a reconnect on purpose: what an interrupted catch-up
  // found (and already recorded in known_) is delivered with the next one.
  catchup_modseq_ = highest_modseq_;
  Send(absl::StrCat("W4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE ", highest_modseq_,
                    " VANISHED)"));
}

void UserWatcher::EnterIdle() {
  journaled_modseq_ = highest_modseq_;  // everything up to here went to the sink
  state_ = State::kIdle;
  Send("W5 IDLE");
}

void UserWatcher::OnFetch(const imap::Response& r) {
  if (r.args.empty() || r.args[0].type != imap::Arg::Type::kList) return;
  const std::vector<imap::Arg>& items = r.args[0].children;
  session::StoreEvent event;
  event.folder = kFolder;
  event.uidvalidity = uidvalidity_;
  bool have_uid = false;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const std::string name = absl::AsciiStrToUpper(items[i].value);
    const imap::Arg& value = items[i + 1];
    if (name == "UID") {
      have_uid = absl::SimpleAtoi(value.value, &event.uid);
    } else if (name == "FLAGS" && value.type == imap::Arg::Type::kList) {
      for (const imap::Arg& flag : value.children) event.flags.push_back(flag.value);
    } else if (name == "MODSEQ" && value.type == imap::Arg::Type::kList &&
               !value.children.empty()) {
      absl::SimpleAtoi(value.children[0].value, &event.modseq);
    }
  }
  if (!have_uid || event.uid == 0) return;
  // Committed only when the catch-up completes: results come in UID order, so a
  // link lost half-way must not skip the lower MODSEQs not yet seen.
  catchup_modseq_ = std::max(catchup_modseq_, event.modseq);
  if (known_.Contains(event.uid)) {
    event.kind = session::EventKind::kFlags;
  } else {
    event.kind = session::EventKind::kNew;
    known_.Insert(event.uid);
    uidnext_ = std::max(uidnext_, event.uid + 1);
  }
  pending_.push_back(std::move(event));
}

void UserWatcher::OnVanished(const imap::Response& r) {
  // "* VANISHED (EARLIER) 3:5,9": only UIDs we knew are news; the store repeats
  // earlier expunges as long as our MODSEQ predates them.
  for (const imap::Arg& arg : r.args) {
    if (arg.type != imap::Arg::Type::kAtom) continue;
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(arg.value);
    if (!set.ok()) continue;
    for (const auto& [first, last] : known_.Resolve(*set, /*uid_mode=*/true)) {
      for (uint64_t uid = first; uid <= last; ++uid) {
        session::StoreEvent event;
        event.kind = session::EventKind::kExpunge;
        event.folder = kFolder;
        event.uidvalidity = uidvalidity_;
        event.uid = static_cast<uint32_t>(uid);
        pending_.push_back(std::move(event));
      }
    }
    for (const session::StoreEvent& e : pending_) {
      if (e.kind == session::EventKind::kExpunge) known_.Erase(e.uid);
    }
  }
}

void UserWatcher::OnList(const imap::Response& r) {
  // "* LIST () "." Name", "* LIST (\NonExistent) "." Old",
  // "* LIST () "." New ("OLDNAME" ("Old"))".
  if (r.args.size() < 3) return;
  session::StoreEvent event;
  event.folder = r.args[2].value;
  event.raw = last_line_;
  event.kind = session::EventKind::kFolderCreated;
  if (r.args[0].type == imap::Arg::Type::kList) {
    for (const imap::Arg& attr : r.args[0].children) {
      if (absl::EqualsIgnoreCase(attr.value, "\\NonExistent")) {
        event.kind = session::EventKind::kFolderDeleted;
      }
    }
  }
  if (r.args.size() >= 4 && r.args[3].type == imap::Arg::Type::kList &&
      absl::StrContains(absl::AsciiStrToUpper(last_line_), "OLDNAME")) {
    event.kind = session::EventKind::kFolderRenamed;
    event.new_folder = event.folder;
    const std::vector<imap::Arg>& ext = r.args[3].children;
    if (ext.size() >= 2 && ext[1].type == imap::Arg::Type::kList &&
        !ext[1].children.empty()) {
      event.folder = ext[1].children[0].value;
    }
  }
  sink_->OnStoreEvents(user_, {event});
}

void UserWatcher::Flush() {
  if (pending_.empty()) return;
  std::vector<session::StoreEvent> events = std::move(pending_);
  pending_.clear();
  // The catch-up lists changes in UID order; expunges first keeps MSNs simple
  // for devices (a message that arrived and vanished between two looks nets out).
  std::stable_partition(events.begin(), events.end(), [](const session::StoreEvent& e) {
    return e.kind == session::EventKind::kExpunge;
  });
  sink_->OnStoreEvents(user_, events);
}

}  // namespace pimap::store
