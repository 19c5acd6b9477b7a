// Parking a stock client that used NOTIFY (RFC 5465; relay_driver.h). The
// selected mailbox is told as for any parked client (ParkedMailbox, within
// what the NOTIFY asks); other mailboxes through ParkedNotify, whose STATUS
// numbers a pooled link asks the store for.
//
// Hazards and the chosen fixes:
//  * A link pooled with the client's NOTIFY still set would report to the
//    next borrower: the park stops it (NOTIFY NONE, pipelined before the
//    listing) and the unpark sets it again on the lent link.
//  * A park undone after NOTIFY NONE would leave the client deaf: the NOTIFY
//    is set again with STATUS, so what changed meanwhile is reported too.
//  * Between the events the gateway stops serving and the lent link's NOTIFY
//    taking over, a change would fall through (the watch reports ~500 ms
//    late, the unpark may be over by then): the unpark sets the NOTIFY with
//    STATUS, so the store reports every covered mailbox as it stands (a
//    change reported twice is harmless; STATUS states numbers).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/session/relay_driver.h"

namespace pimap::session {

void RelayDriver::QuietNotify() {
  if (client_.notify() == nullptr || notify_quiet_ || !notify_tag_.empty()) {
    return;
  }
  notify_tag_ = NextTag();
  link_->Send(absl::StrCat(notify_tag_, " NOTIFY NONE\r\n"));
}

void RelayDriver::RestoreNotify() {
  notify_quiet_ = false;
  if (link_ == nullptr) {
    Bye("Connection to the message store lost");
    return;
  }
  idle_ = IdleState::kRestoring;
  notify_tag_ = NextTag();
  link_->Send(absl::StrCat(notify_tag_, " ",
                           client_.notify()->SetCommand(/*with_status=*/true),
                           "\r\n"));
  ArmStoreTimer();
}

void RelayDriver::OnRestoreResponse(const imap::Response& r,
                                    absl::string_view raw) {
  if (r.kind == imap::Response::Kind::kUntagged) {
    if (!raw.empty()) Write(std::string(raw));  // the SET's STATUS lines
    return;
  }
  if (r.kind != imap::Response::Kind::kTagged || r.tag != notify_tag_) return;
  notify_tag_.clear();
  DisarmStoreTimer();
  if (r.name != "OK") {
    Bye("The message store refused the client's NOTIFY again");
    return;
  }
  if (done_early_) {
    EndIdle();
    return;
  }
  StartOwnIdle();
}

void RelayDriver::StartStatusFetch() {
  idle_ = IdleState::kParkedStatus;
  BorrowForClient(&RelayDriver::OnStatusLinkLent);
}

void RelayDriver::OnStatusLinkLent(absl::StatusOr<PooledLink*> lent) {
  if (output() == nullptr || idle_ != IdleState::kParkedStatus) {
    if (lent.ok()) services_.pool->Return(*lent, /*reusable=*/true);
    return;
  }
  if (!lent.ok()) {
    // The store is away: the numbers stay queued for the next event or the
    // unpark (which then needs the store anyway).
    PIMAP_LOG(DEBUG).Conn(credentials_.origin).User(user_)
        << "no STATUS for the parked session: " << lent.status().message();
    idle_ = IdleState::kParked;
    if (done_early_) {
      done_early_ = false;
      StartUnpark();
    }
    return;
  }
  lent_ = *lent;
  link_ = lent_->link;
  link_->SetClient(this);
  // STATUS answers the same whatever is ENABLEd, but the link is pooled
  // under the client's profile.
  SendResync(ApplyProfile(), parked_notify_->TakeStatusCommands());
}

void RelayDriver::OnStatusResponse(const imap::Response& r) {
  if (r.kind == imap::Response::Kind::kTagged && r.tag == enable_tag_) {
    enable_tag_.clear();
    // Not the client's profile after all: the next borrower ENABLEs again.
    if (r.name != "OK" && lent_ != nullptr) lent_->profile_applied = false;
    return;
  }
  if (r.kind == imap::Response::Kind::kUntagged) {
    std::string line = parked_notify_->OnResponse(r);
    if (line.empty()) return;
    CounterAdd(counters().relay_parked_events);
    Write(std::move(line));
    return;
  }
  if (r.kind != imap::Response::Kind::kTagged ||
      !absl::StartsWith(r.tag, "~r")) {
    return;
  }
  if (own_remaining_ > 0) --own_remaining_;
  if (own_remaining_ != 0) return;
  DisarmStoreTimer();
  parked_notify_->EndStatusRound();
  if (done_early_) {
    // DONE came meanwhile: this link serves the unpark.
    done_early_ = false;
    unpark_started_ms_ = MonotonicNowMs();
    if (keepalive_timer_ != 0) services_.timers->Cancel(keepalive_timer_);
    keepalive_timer_ = 0;
    idle_ = IdleState::kBorrowing;
    BeginResync();
    return;
  }
  ReleaseLink(/*reusable=*/true);
  idle_ = IdleState::kParked;
  if (parked_notify_->has_pending()) StartStatusFetch();
}

std::string RelayDriver::NotifySetCommand() {
  if (!parked_notify_.has_value()) return {};
  // With STATUS: see SendResync.
  return parked_notify_->spec().SetCommand(/*with_status=*/true);
}

bool RelayDriver::OnResyncNotifyResponse(const imap::Response& r,
                                         absl::string_view raw) {
  if (!parked_notify_.has_value()) return false;
  if (r.kind == imap::Response::Kind::kTagged && r.tag == notify_tag_) {
    notify_tag_.clear();
    if (r.name != "OK") Bye("The message store refused the client's NOTIFY");
    return true;
  }
  if (r.kind == imap::Response::Kind::kUntagged &&
      (r.name == "STATUS" || r.name == "LIST")) {
    Write(std::string(raw));  // the link's NOTIFY reporting other mailboxes
    return true;
  }
  return false;
}

}  // namespace pimap::session
