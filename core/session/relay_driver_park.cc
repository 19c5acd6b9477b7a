// Parking a stock client's IDLE (relay_driver.h): the gateway ends the
// store's IDLE, lists the client's MSN map on the link, gives the link back
// to the pool and answers the IDLE itself from the user's store events
// (ParkedMailbox). At DONE it borrows a link of the client's profile (same
// ENABLEd extensions), resynchronises it to what the client knows, tells the
// client what it missed and only then relays again.
//
// Hazards and the chosen fixes:
//  * Events between the listing and the link's return would be lost: the
//    driver listens to the user's events before it ends the store's IDLE and
//    buffers them until the listing is in (ParkedMailbox drops repeats).
//  * An EXISTS or EXPUNGE after the listing's data makes the map stale: the
//    listing is repeated (bounded), then the park is given up and our own
//    IDLE runs on the store for the client instead.
//  * The client's DONE may arrive while the park is under way: input is held
//    and the IDLE ends as soon as the store's side is settled.
//  * A link lent for the unpark must start from the client's session state:
//    links are pooled per profile (StoreCredentials::profile), so a link
//    never has more extensions enabled than the client.
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/log.h"
#include "core/base/timer_wheel.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"
#include "core/session/relay_driver.h"

namespace pimap::session {
namespace {

// A mailbox bigger than this is not parked (its map is listed whole).
constexpr size_t kMaxParkedMessages = 1000000;
// A park attempt that cannot start now (a response is streaming, the device
// is slow) is retried after this.
constexpr int64_t kParkRetryMs = 1000;
// The user's watch, started by the first park attempt, has its baseline of
// the folder one store round trip later: polled this often (a 1 s retry would
// miss a short IDLE, e.g. a client's first one, altogether)...
constexpr int64_t kWatchRetryMs = 50;
// ...for this long, then the IDLE stays relayed (a folder the watch does not
// cover would never tell the client).
constexpr int64_t kMaxWatchWaitMs = 30000;

}  // namespace

bool RelayDriver::parking_enabled() const {
  return park_config_.park_after_ms > 0 && services_.registry != nullptr &&
         services_.timers != nullptr && services_.pool != nullptr;
}

bool RelayDriver::collecting() const {
  // A store response already streaming to the client when XDELIVER's
  // command went out is passed on to its end (a cut one would break the
  // client, and it may be larger than CollectLimit()); the store answers our
  // command only after it, so collecting starts with the next response.
  if (!xdeliver_up_tag_.empty()) return !passing_;
  switch (idle_) {
    case IdleState::kEnding:
    case IdleState::kListing:
    case IdleState::kOwnIdle:
    case IdleState::kParkedStatus:
    case IdleState::kRestoring:
    case IdleState::kResyncing:
      return true;
    default:
      return false;
  }
}

std::string RelayDriver::NextTag() { return absl::StrCat("~r", ++next_tag_); }

void RelayDriver::SchedulePark() {
  if (!parking_enabled() || park_timer_ != 0) return;
  park_timer_ = services_.timers->Schedule(park_config_.park_after_ms, [this] {
    park_timer_ = 0;
    Busy busy(this);
    StartPark();
  });
}

void RelayDriver::CancelParkTimer() {
  if (park_timer_ != 0) services_.timers->Cancel(park_timer_);
  park_timer_ = 0;
}

void RelayDriver::StartPark() {
  if (idle_ != IdleState::kRelayed || link_ == nullptr || output() == nullptr)
    return;
  if (!client_.parkable()) return;  // sticky: stays relayed for this IDLE
  // A shared or public folder changes by other users' transactions, which
  // neither the watch's NOTIFY `personal` nor the user's pushes report: the
  // store's own IDLE (or NOTIFY) stays relayed for it.
  const SessionRegistry& registry = *services_.registry;
  const auto personal = [&registry](absl::string_view folder) {
    return registry.PersonalFolder(folder);
  };
  if (!personal(client_.folder()) || !client_.NotifyNamesOnly(personal)) {
    return;
  }
  auto retry = [this](int64_t delay_ms = kParkRetryMs) {
    park_timer_ = services_.timers->Schedule(delay_ms, [this] {
      park_timer_ = 0;
      Busy busy(this);
      StartPark();
    });
  };
  // Only the IDLE may be in flight, confirmed to the client, and no response
  // half-written: everything the store says from here on is about the IDLE.
  if (relayed_outstanding() != 1 || !idle_continued_ || !head_open_ ||
      !head_.empty() || store_paused_) {
    retry();
    return;
  }
  // The user's events must flow before the store's IDLE ends, or a change
  // between the listing and the link's return would never be told.
  if (!listening_) {
    services_.registry->AddParked(user_, credentials_, this);
    listening_ = true;
  }
  const SessionConfig& events = services_.registry->config();
  if (events.watch && !events.pushes &&
      services_.registry->WatchUidvalidity(user_, client_.folder()) !=
          client_.Snapshot().uidvalidity) {
    // The watch (started just now, or not covering this folder) has no
    // baseline here yet: it would not report what happens in the folder.
    const int64_t now = services_.timers->now_ms();
    if (watch_wait_since_ms_ < 0) watch_wait_since_ms_ = now;
    if (now - watch_wait_since_ms_ >= kMaxWatchWaitMs) {
      StopListening();
      return;
    }
    retry(kWatchRetryMs);
    return;
  }
  early_events_.clear();
  list_rounds_ = 0;
  done_early_ = false;
  idle_ = IdleState::kEnding;
  collected_.clear();
  collect_overflow_ = false;
  link_->Send("DONE\r\n");
  ArmStoreTimer();
}

void RelayDriver::ArmStoreTimer() {
  DisarmStoreTimer();
  store_timer_ =
      services_.timers->Schedule(services_.borrow_timeout_ms, [this] {
        store_timer_ = 0;
        Busy busy(this);
        PIMAP_LOG(INFO)
                .Conn(credentials_.origin)
                .User(user_)
                .Event("store.lost")
            << "store did not answer the gateway";
        Bye("The message store did not answer");
      });
}

void RelayDriver::DisarmStoreTimer() {
  if (store_timer_ != 0) services_.timers->Cancel(store_timer_);
  store_timer_ = 0;
}

void RelayDriver::StopListening() {
  if (!listening_) return;
  listening_ = false;
  early_events_.clear();
  services_.registry->RemoveParked(user_, this);
}

void RelayDriver::OnOwnResponse(absl::string_view completed_tag) {
  if (!xdeliver_up_tag_.empty()) {
    if (xdeliver_ != nullptr) OnXdeliverResponse(completed_tag);
    return;
  }
  std::string raw = std::exchange(collected_, std::string());
  absl::StatusOr<imap::Response> r = absl::ResourceExhaustedError("too large");
  if (!std::exchange(collect_overflow_, false)) {
    // A listing of a large mailbox is one long line.
    imap::ParserLimits limits;
    limits.max_line_bytes = kMaxCollectedBytes;
    r = imap::ParseWholeResponse(raw, limits, kMaxCollectedBytes);
  }
  if (!r.ok()) {
    if (idle_ == IdleState::kListing && completed_tag.empty()) {
      // Listing data too long or unreadable (it is the only untagged data
      // of any size here): the park is given up at the listing's end.
      moved_after_list_ = true;
      list_rounds_ = kMaxListRounds;
      return;
    }
    PIMAP_LOG(WARNING)
            .Conn(credentials_.origin)
            .User(user_)
            .Event("store.error")
        << "unusable store response: " << r.status().message();
    Bye("Unreadable response from the message store");
    return;
  }
  switch (idle_) {
    case IdleState::kEnding:
    case IdleState::kListing:
      // Untagged data the store sends meanwhile belongs to the client's IDLE.
      if (r->kind == imap::Response::Kind::kUntagged && r->name != "SEARCH" &&
          r->name != "ESEARCH") {
        Write(std::move(raw));
      }
      OnParkResponse(*r, completed_tag);
      return;
    case IdleState::kOwnIdle:
      if (r->kind == imap::Response::Kind::kContinuation) return;  // "+ idling"
      if (r->kind == imap::Response::Kind::kTagged && r->tag == own_tag_) {
        EndIdle();
        return;
      }
      Write(std::move(raw));
      return;
    case IdleState::kParkedStatus:
      OnStatusResponse(*r);
      return;
    case IdleState::kRestoring:
      OnRestoreResponse(*r, raw);
      return;
    case IdleState::kResyncing:
      if (OnResyncNotifyResponse(*r, raw)) return;
      OnResyncResponse(*r, completed_tag);
      return;
    default:
      return;
  }
}

void RelayDriver::OnParkResponse(const imap::Response& r,
                                 absl::string_view completed_tag) {
  if (idle_ == IdleState::kEnding) {
    if (r.kind != imap::Response::Kind::kTagged || r.tag != idle_tag_) return;
    if (r.name != "OK" || done_early_) {
      // The IDLE ended (badly, or the client said DONE meanwhile): the store's
      // answer is the client's, as if nothing had been tried.
      DisarmStoreTimer();
      StopListening();
      std::string out;
      imap::AppendTaggedStatus(&out, idle_tag_, r.name, r.code, r.text);
      Write(std::move(out));
      const std::string tag = std::exchange(idle_tag_, std::string());
      idle_ = IdleState::kNone;
      done_early_ = false;
      CompleteRelayed(tag);
      ReleaseInput();
      return;
    }
    idle_ = IdleState::kListing;
    QuietNotify();
    SendList();
    return;
  }
  // kListing
  switch (r.kind) {
    case imap::Response::Kind::kContinuation:
      return;
    case imap::Response::Kind::kTagged:
      if (!notify_tag_.empty() && r.tag == notify_tag_) {
        notify_tag_.clear();
        notify_quiet_ = r.name == "OK";
        // Still notifying: the link cannot be pooled; the park is given up
        // when the listing (pipelined behind) ends.
        if (!notify_quiet_) list_rounds_ = kMaxListRounds;
        if (!notify_quiet_) moved_after_list_ = true;
        return;
      }
      if (r.tag != own_tag_) return;
      DisarmStoreTimer();
      if (r.name != "OK") {
        GiveUpPark(absl::StrCat("listing failed: ", r.text));
        return;
      }
      FinishListing();
      return;
    case imap::Response::Kind::kUntagged:
      break;
  }
  if (r.name == "SEARCH" || r.name == "ESEARCH") {
    listed_ = true;  // an ESEARCH without ALL: an empty mailbox
    // Too big, '*' or a saved result: listed again, then given up.
    if (!AddListedUids(r, kMaxParkedMessages - 1, &listing_)) {
      moved_after_list_ = true;
    }
  } else if (listed_ && (r.name == "EXISTS" || r.name == "EXPUNGE" ||
                         r.name == "VANISHED")) {
    moved_after_list_ = true;  // the client heard of it; the map did not
  }
}

void RelayDriver::SendList() {
  own_tag_ = NextTag();
  listed_ = false;
  moved_after_list_ = false;
  listing_ = UidView();
  const bool esearch = imap::HasCapability(store_capabilities(), "ESEARCH");
  link_->Send(absl::StrCat(own_tag_, esearch
                                         ? " UID SEARCH RETURN (ALL) ALL\r\n"
                                         : " UID SEARCH ALL\r\n"));
  ArmStoreTimer();
}

void RelayDriver::FinishListing() {
  if (!listed_ || moved_after_list_) {
    if (++list_rounds_ < kMaxListRounds && !done_early_) {
      SendList();
      return;
    }
    GiveUpPark("the mailbox kept changing while its map was listed");
    return;
  }
  if (done_early_) {
    // Nothing was given back: the link is where the client is.
    StopListening();
    if (notify_quiet_) {
      RestoreNotify();
      return;
    }
    EndIdle();
    return;
  }
  Park();
}

void RelayDriver::GiveUpPark(absl::string_view why) {
  CounterAdd(counters().relay_park_failures);
  PIMAP_LOG(DEBUG).Conn(credentials_.origin).User(user_)
      << "not parking: " << why;
  DisarmStoreTimer();
  StopListening();
  listing_ = UidView();
  if (notify_quiet_) {
    RestoreNotify();
    return;
  }
  if (done_early_) {
    EndIdle();
    return;
  }
  StartOwnIdle();
}

void RelayDriver::StartOwnIdle() {
  // The client still idles: the store runs an IDLE of ours for it, whose
  // continuation is ours and whose tagged end answers the client's DONE.
  own_tag_ = NextTag();
  idle_ = IdleState::kOwnIdle;
  link_->Send(absl::StrCat(own_tag_, " IDLE\r\n"));
}

void RelayDriver::Park() {
  if (client_.notify() != nullptr && !notify_quiet_) {
    // Pooled with the client's NOTIFY still set, the link would report to
    // its next borrower.
    GiveUpPark("the store's NOTIFY was not stopped");
    return;
  }
  ParkedClientState state = client_.Snapshot();
  state.view = std::move(listing_);
  listing_ = UidView();
  absl::StatusOr<ParkedMailbox> mailbox =
      ParkedMailbox::Create(std::move(state));
  if (!mailbox.ok()) {
    GiveUpPark(mailbox.status().message());
    return;
  }
  StoreCredentials profiled = credentials_;
  profiled.profile = client_.LinkProfile();
  if (lent_ == nullptr) {
    // Our own login link: its session has exactly the client's extensions.
    lent_ = services_.pool->Adopt(profiled, link_);
    if (lent_ == nullptr) {  // the pool is shutting down
      GiveUpPark("the link pool is shutting down");
      return;
    }
    link_profile_ = profiled.profile;
  }
  const bool same_profile = link_profile_ == profiled.profile;
  parked_.emplace(std::move(*mailbox));
  if (client_.notify() != nullptr) {
    parked_notify_.emplace(*client_.notify(), client_.folder(),
                           client_.delimiter(), client_.condstore());
  }
  notify_quiet_ = false;  // the link leaves without a NOTIFY
  lent_->selected_folder = client_.folder();
  lent_->read_only = client_.read_only();
  lent_->qresync_enabled = client_.qresync();
  lent_->highest_modseq = parked_->highest_modseq();
  lent_->profile_applied = true;
  // The client enabled more since the link was lent (CONDSTORE by a FETCH
  // CHANGEDSINCE, say): pooled under its old profile it would surprise the
  // next borrower, so it is closed instead.
  services_.pool->Return(lent_, /*reusable=*/same_profile);
  lent_ = nullptr;
  link_ = nullptr;
  idle_ = IdleState::kParked;
  CounterAdd(counters().relay_parks);
  counters().relay_parked.fetch_add(1, std::memory_order_relaxed);
  PIMAP_LOG(DEBUG).Conn(credentials_.origin).User(user_)
      << "parked folder=" << imap::QuoteForLog(parked_->folder())
      << " messages=" << parked_->view().size();
  std::vector<StoreEvent> early = std::move(early_events_);
  early_events_.clear();
  if (!early.empty()) OnParkedEvents(early);
  // A STATUS round (kParkedStatus) may have started from the early events.
  if (idle_ == IdleState::kParked || idle_ == IdleState::kParkedStatus) {
    ScheduleKeepalive();
  }
}

void RelayDriver::ScheduleKeepalive() {
  if (keepalive_timer_ != 0) services_.timers->Cancel(keepalive_timer_);
  keepalive_timer_ =
      services_.timers->Schedule(park_config_.keepalive_ms, [this] {
        keepalive_timer_ = 0;
        Busy busy(this);
        if ((idle_ != IdleState::kParked &&
             idle_ != IdleState::kParkedStatus) ||
            output() == nullptr) {
          return;
        }
        Write("* OK Still here\r\n");
        ScheduleKeepalive();
      });
}

void RelayDriver::OnParkedEvents(const std::vector<StoreEvent>& events) {
  Busy busy(this);
  if (idle_ == IdleState::kEnding || idle_ == IdleState::kListing) {
    for (const StoreEvent& e : events) {
      if (early_events_.size() >= kMaxEarlyEvents) {
        // Too many to hold: what the store did is listed again.
        moved_after_list_ = true;
        return;
      }
      early_events_.push_back(e);
    }
    return;
  }
  // Until the resync starts (a link is being borrowed) the client still
  // hears from the gateway; from then on the link reports (other mailboxes:
  // the STATUS of its NOTIFY SET, then its NOTIFY; a mailbox name that the
  // watch reports meanwhile is still told, as SET STATUS names none).
  if (!parked_.has_value()) return;
  if (idle_ == IdleState::kResyncing) {
    if (!parked_notify_.has_value()) return;
    for (const StoreEvent& e : events) {
      if (e.kind != EventKind::kFolderCreated &&
          e.kind != EventKind::kFolderDeleted &&
          e.kind != EventKind::kFolderRenamed) {
        continue;
      }
      std::string lines = parked_notify_->Apply(e);
      if (!lines.empty()) Write(std::move(lines));
    }
    return;
  }
  if ((idle_ != IdleState::kParked && idle_ != IdleState::kBorrowing &&
       idle_ != IdleState::kParkedStatus) ||
      parked_->state() != ParkedMailbox::State::kParked) {
    return;
  }
  std::string out;
  for (const StoreEvent& e : events) {
    std::string lines = parked_->Apply(e);
    if (parked_notify_.has_value()) lines += parked_notify_->Apply(e);
    if (!lines.empty()) CounterAdd(counters().relay_parked_events);
    out += lines;
    if (parked_->state() == ParkedMailbox::State::kDisconnect) {
      if (!out.empty()) Write(std::move(out));
      Bye(parked_->bye_reason());
      return;
    }
  }
  if (!out.empty()) Write(std::move(out));
  if (idle_ == IdleState::kParked && parked_notify_.has_value() &&
      parked_notify_->has_pending()) {
    StartStatusFetch();
  }
}

// ---- Unpark -----------------------------------------------------------------

void RelayDriver::StartUnpark() {
  unpark_started_ms_ = MonotonicNowMs();
  idle_ = IdleState::kBorrowing;
  HoldInput();
  if (keepalive_timer_ != 0) services_.timers->Cancel(keepalive_timer_);
  keepalive_timer_ = 0;
  BorrowForClient(&RelayDriver::OnLinkLent);
}

void RelayDriver::BorrowForClient(
    void (RelayDriver::*then)(absl::StatusOr<PooledLink*>)) {
  StoreCredentials profiled = credentials_;
  profiled.profile = client_.LinkProfile();
  std::weak_ptr<bool> alive = alive_;
  StoreLinkPool* pool = services_.pool;
  pool->Borrow(profiled, services_.borrow_timeout_ms,
               [this, alive, pool, then](absl::StatusOr<PooledLink*> lent) {
                 if (alive.expired()) {
                   // The client left meanwhile; the pool outlives its shard's
                   // drivers.
                   if (lent.ok()) pool->Return(*lent, /*reusable=*/true);
                   return;
                 }
                 Busy busy(this);
                 (this->*then)(std::move(lent));
               });
}

void RelayDriver::OnLinkLent(absl::StatusOr<PooledLink*> lent) {
  if (!lent.ok()) {
    if (lent.status().code() != absl::StatusCode::kUnavailable) {
      PIMAP_LOG(INFO)
              .Conn(credentials_.origin)
              .User(user_)
              .Event("store.unavailable")
          << "unpark failed: " << lent.status().message();
    }
    Bye("The message store is not available; reconnect later");
    return;
  }
  if (output() == nullptr || idle_ != IdleState::kBorrowing) {
    services_.pool->Return(*lent, /*reusable=*/true);
    return;
  }
  lent_ = *lent;
  link_ = lent_->link;
  link_->SetClient(this);
  BeginResync();
}

std::string RelayDriver::ApplyProfile() {
  if (lent_->profile_applied) return {};
  // A new login: what the client ENABLEd first, so the link's responses take
  // the forms the client expects (and it is pooled under that profile).
  lent_->profile_applied = true;
  lent_->qresync_enabled = client_.qresync();
  if (client_.enabled().empty()) return {};
  return absl::StrCat("ENABLE ", absl::StrJoin(client_.enabled(), " "));
}

void RelayDriver::BeginResync() {
  link_profile_ = client_.LinkProfile();
  const std::string enable = ApplyProfile();
  ResyncLink link_info;
  link_info.qresync_enabled = client_.qresync();
  link_info.esearch = imap::HasCapability(store_capabilities(), "ESEARCH");
  ResyncPlan plan = parked_->BeginResync(link_info);
  idle_ = IdleState::kResyncing;
  // The client's NOTIFY first: from its answer on, the link reports what
  // happens in other mailboxes (FinishUnpark asks what came before).
  SendResync(enable, plan.commands, NotifySetCommand());
}

void RelayDriver::SendResync(absl::string_view enable,
                             const std::vector<std::string>& commands,
                             absl::string_view notify) {
  std::string out;
  enable_tag_.clear();
  if (!enable.empty()) {
    enable_tag_ = NextTag();
    absl::StrAppend(&out, enable_tag_, " ", enable, "\r\n");
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    own_tag_ = NextTag();
    absl::StrAppend(&out, own_tag_, " ", commands[i], "\r\n");
    if (i == 0 && !notify.empty()) {
      // Right after the SELECT: a pooled link may still have another
      // mailbox selected, whose pending news a command before it would flush
      // into the resync. With STATUS: the store reports every covered
      // mailbox as it stands, which covers what changed while the gateway
      // listened (the watch reports ~500 ms late, after the unpark may be
      // over). From its answer on the link reports the rest.
      notify_tag_ = NextTag();
      absl::StrAppend(&out, notify_tag_, " ", notify, "\r\n");
    }
  }
  own_remaining_ = commands.size();
  link_->Send(out);
  ArmStoreTimer();
}

void RelayDriver::OnResyncResponse(const imap::Response& r,
                                   absl::string_view completed_tag) {
  if (r.kind == imap::Response::Kind::kTagged && r.tag == enable_tag_) {
    enable_tag_.clear();
    if (r.name != "OK")
      Bye("The message store refused the client's extensions");
    return;
  }
  if (r.kind == imap::Response::Kind::kUntagged && r.name == "ENABLED") return;
  parked_->OnResyncResponse(r);
  if (r.kind != imap::Response::Kind::kTagged ||
      !absl::StartsWith(r.tag, "~r")) {
    return;
  }
  if (own_remaining_ > 0) --own_remaining_;
  if (own_remaining_ != 0) return;
  std::string out;
  switch (parked_->FinishResync(&out)) {
    case ParkedMailbox::State::kSynced:
      DisarmStoreTimer();
      Write(std::move(out));
      if (lent_ != nullptr) {
        lent_->selected_folder = parked_->folder();
        lent_->highest_modseq = parked_->highest_modseq();
      }
      FinishUnpark();
      return;
    case ParkedMailbox::State::kNeedUidList:
      SendResync("", {parked_->uid_list_command()});
      return;
    default:
      Bye(parked_->bye_reason().empty() ? "Selected mailbox cannot be reopened"
                                        : parked_->bye_reason());
      return;
  }
}

void RelayDriver::FinishUnpark() {
  HistogramObserve(counters().relay_unpark,
                   MonotonicNowMs() - unpark_started_ms_);
  CounterAdd(counters().relay_unparks);
  LeaveParked();
  EndIdle();
}

void RelayDriver::EndIdle() {
  DisarmStoreTimer();
  std::string out;
  imap::AppendTaggedStatus(&out, idle_tag_, "OK", "", "Idle completed.");
  Write(std::move(out));
  const std::string tag = std::exchange(idle_tag_, std::string());
  idle_ = IdleState::kNone;
  done_early_ = false;
  own_tag_.clear();
  CompleteRelayed(tag);
  ReleaseInput();
}

void RelayDriver::HoldInput() {
  if (engine_holds_) return;
  engine_holds_ = true;
  if (output() != nullptr) output()->SetCommandRunning(true, false);
}

void RelayDriver::ReleaseInput() {
  if (!engine_holds_) return;
  engine_holds_ = false;
  if (!holding() && output() != nullptr) {
    output()->SetCommandRunning(false, true);
  }
}

void RelayDriver::LeaveParked() {
  StopListening();
  parked_notify_.reset();
  if (!parked_.has_value()) return;
  parked_.reset();
  counters().relay_parked.fetch_sub(1, std::memory_order_relaxed);
}

void RelayDriver::ReleaseLink(bool reusable) {
  if (lent_ != nullptr) {
    services_.pool->Return(lent_, reusable);
    lent_ = nullptr;
    link_ = nullptr;
    return;
  }
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
}

void RelayDriver::Bye(absl::string_view reason) {
  // `reason` may live in what LeaveParked() frees (bye_reason()).
  const std::string why(reason);
  CancelParkTimer();
  DisarmStoreTimer();
  LeaveParked();
  ReleaseLink(/*reusable=*/false);
  idle_ = IdleState::kNone;
  if (output() != nullptr) output()->EndSession(why);
}

}  // namespace pimap::session
