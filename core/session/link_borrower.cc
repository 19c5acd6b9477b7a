// LinkBorrower (link_borrower.h): a device's store link, its own or borrowed
// from the shard's pool, and the lent link's store-side state.
#include "core/session/link_borrower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/session/store_text.h"

namespace pimap::session {

void LinkBorrower::Adopt(StoreLinkPool* pool,
                         const StoreCredentials& credentials, StoreLink* link,
                         Host* host) {
  if (pool != nullptr) lent_ = pool->Adopt(credentials, link);
  link_ = link;
  link_->SetClient(host);
}

void LinkBorrower::Acquire(Host* host, StoreLinkPool* pool, int64_t timeout_ms,
                           std::weak_ptr<bool> alive) {
  if (acquiring_) return;
  if (pool == nullptr) {
    host->OnNoLink(absl::OkStatus(),
                   "The connection to the message store is gone");
    return;
  }
  const StoreCredentials credentials = host->LinkCredentials();
  if (PooledLink* warm = pool->TryBorrow(credentials); warm != nullptr) {
    Lend(host, warm);  // no round trip for a warm link
    return;
  }
  if (host->StorePasswordRejected()) {
    host->OnNoLink(absl::OkStatus(),
                   "The message store rejected the password; log in again");
    return;
  }
  acquiring_ = true;
  pool->Borrow(
      credentials, timeout_ms,
      [this, host, alive = std::move(alive), pool,
       password = credentials.password](absl::StatusOr<PooledLink*> link) {
        if (alive.expired()) {  // the device went away meanwhile
          if (link.ok()) pool->Return(*link, true);
          return;
        }
        host->FromOutside([&] {
          acquiring_ = false;
          if (link.ok()) {
            Lend(host, *link);
            return;
          }
          if (absl::IsUnauthenticated(link.status())) {
            host->OnStoreLoginRejected(password);
          }
          host->OnNoLink(link.status(),
                         "The message store is not available; try again "
                         "later");
        });
      });
}

void LinkBorrower::Lend(Host* host, PooledLink* lent) {
  lent_ = lent;
  link_ = lent_->link;
  link_->SetClient(host);
  link_->SetReading(true);
  reading_paused_ = false;
  host->OnLinkBorrowed();
}

bool LinkBorrower::Behind(const LinkNeed& need) const {
  if (lent_ == nullptr) return false;  // a link of its own is always in state
  if (need.qresync && !lent_->qresync_enabled) return true;
  if (need.folder.empty()) return false;
  if (lent_->selected_folder != need.folder ||
      lent_->read_only != need.read_only)
    return true;
  return need.synced && lent_->synced_events < need.events;
}

LinkStep LinkBorrower::NextStep(const LinkNeed& need) {
  if (lent_ == nullptr) return {};
  if (need.qresync && !lent_->qresync_enabled) {
    return {DeviceJob::kLinkEnable, "ENABLE QRESYNC", ""};
  }
  if (!need.folder.empty() && (lent_->selected_folder != need.folder ||
                               lent_->read_only != need.read_only)) {
    lent_->selected_folder.clear();  // known again once the SELECT completed
    return {DeviceJob::kLinkSelect,
            absl::StrCat(need.read_only ? "EXAMINE " : "SELECT ",
                         QuotedMailbox(need.folder), need.select_qresync),
            need.folder};
  }
  if (Behind(need)) {
    // The store reported events (the journal has them); this link must show
    // them before it answers for the device (a FETCH of the new message).
    return {DeviceJob::kLinkSync, "NOOP", ""};
  }
  return {};
}

void LinkBorrower::StepDone(DeviceJob step, const std::string& folder,
                            bool read_only) {
  if (lent_ == nullptr) return;
  if (step == DeviceJob::kLinkEnable) lent_->qresync_enabled = true;
  if (step == DeviceJob::kLinkSelect) {
    lent_->selected_folder = folder;
    lent_->read_only = read_only;
  }
}

void LinkBorrower::OnCompleted() {
  if (lent_ == nullptr) return;
  lent_->synced_events = std::max(lent_->synced_events, sent_events_);
}

void LinkBorrower::QresyncEnabled() {
  if (lent_ != nullptr) lent_->qresync_enabled = true;
}

void LinkBorrower::Selected(std::string folder, bool read_only) {
  if (lent_ == nullptr) return;
  lent_->selected_folder = std::move(folder);
  lent_->read_only = read_only;
}

void LinkBorrower::ForgetSelected() {
  if (lent_ != nullptr) lent_->selected_folder.clear();
}

bool LinkBorrower::PauseReading() {
  if (reading_paused_ || link_ == nullptr) return false;
  reading_paused_ = true;
  link_->SetReading(false);
  return true;
}

bool LinkBorrower::ResumeReading() {
  if (!reading_paused_ || link_ == nullptr) return false;
  reading_paused_ = false;
  link_->SetReading(true);
  return true;
}

void LinkBorrower::Return(StoreLinkPool* pool, bool reusable) {
  if (lent_ == nullptr) return;
  reading_paused_ = false;
  pool->Return(lent_, reusable);
  lent_ = nullptr;
  link_ = nullptr;
}

void LinkBorrower::OnLinkClosed(StoreLinkPool* pool) {
  link_ = nullptr;
  // Nothing is read any more: a device paused for output may hibernate.
  reading_paused_ = false;
  if (lent_ != nullptr) {
    pool->Lost(lent_);
    lent_ = nullptr;
  }
}

void LinkBorrower::CloseLink(StoreLinkPool* pool) {
  if (lent_ != nullptr) {
    // The pool closes it and forgets it. Closed here, the pool's entry would
    // point at a freed link, which the driver's Detach would then give back
    // as reusable, for the pool to hand to the next borrower.
    Return(pool, /*reusable=*/false);
    return;
  }
  if (link_ == nullptr) return;
  link_->Close();
  link_ = nullptr;
}

void LinkBorrower::Detach(StoreLinkPool* pool, bool reusable) {
  if (lent_ != nullptr) {
    Return(pool, reusable);
    return;
  }
  CloseLink(pool);
}

}  // namespace pimap::session
