// The user's watch (user_watcher.h) in WatchScope::kCoveredOnly: with the
// store's pushes reporting the user's own folders, a watch runs only to cover
// the shared and public folders the user's devices have selected. It asks the
// store for those alone (a NOTIFY with their `mailboxes` filter, no INBOX
// SELECT, no `personal`), so the store keeps no INBOX open and sends nothing
// of the user's own folders to be thrown away, and it idles with nothing
// selected: the store reports a covered folder's change as "* STATUS", and
// the excursion that looks at it ends with UNSELECT.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "store/user_watcher.h"

namespace pimap::store {

std::string UserWatcher::NotifyCommand() const {
  return covered_only() ? CoveredOnlyNotifyCommand(folders_.covered())
                        : WatchNotifyCommand(folders_.covered());
}

void UserWatcher::StartCoveredOnly(bool notify_ok) {
  notify_full_ = notify_ok;
  if (notify_ok) {
    folders_.EnableCoveredOnly();
  } else {
    // Even NOTIFY NONE refused: a store without NOTIFY, where nothing can be
    // covered (the devices keep their own links). The watch idles unused
    // until the registry closes it.
    PIMAP_LOG(INFO) << "store watch for " << imap::QuoteForLog(user_)
                    << ": the store has no NOTIFY; shared and public folders "
                       "not covered";
    folders_.Disable();
  }
  Settle();
}

void UserWatcher::LeaveFolder() {
  if (selected_.empty()) {
    // (The last look failed: nothing stayed selected.) What came meanwhile,
    // another folder's STATUS or a new covered set, is for Settle.
    Settle();
    return;
  }
  state_ = State::kUnselect;
  Send("W11 UNSELECT");
}

}  // namespace pimap::store
