// The user's watch (user_watcher.h): folder events. Its NOTIFY reports
// mailbox names as LIST lines (RFC 5465 section 5.4), and its periodic
// listing compares what the store has with what it last saw; both become
// kFolderCreated/Deleted/Renamed events with the store's own LIST line.
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/session/store_text.h"
#include "store/user_watcher.h"

namespace pimap::store {

void UserWatcher::OnList(const imap::Response& r) {
  // "* LIST () "." Name", "* LIST (\NonExistent) "." Old",
  // "* LIST () "." New ("OLDNAME" ("Old"))".
  if (r.args.size() < 3) return;
  session::StoreEvent event;
  event.folder = r.args[2].value;
  // What devices are told, rendered from the parsed response: the store's
  // text may carry the name as a literal on lines of its own.
  event.raw = absl::StrCat("* LIST ", session::RenderArgs(r.args, 0,
                                                          /*to_device=*/true));
  event.kind = session::EventKind::kFolderCreated;
  if (r.args[0].type == imap::Arg::Type::kList) {
    for (const imap::Arg& attr : r.args[0].children) {
      if (absl::EqualsIgnoreCase(attr.value, "\\NonExistent")) {
        event.kind = session::EventKind::kFolderDeleted;
      }
    }
  }
  // The extended data is tag-value pairs: ("OLDNAME" ("Old")) (RFC 5465 §5.4).
  if (r.args.size() >= 4 && r.args[3].type == imap::Arg::Type::kList) {
    const std::vector<imap::Arg>& ext = r.args[3].children;
    for (size_t i = 0; i + 1 < ext.size(); i += 2) {
      if (absl::EqualsIgnoreCase(ext[i].value, "OLDNAME") &&
          ext[i + 1].type == imap::Arg::Type::kList &&
          !ext[i + 1].children.empty()) {
        event.kind = session::EventKind::kFolderRenamed;
        event.new_folder = event.folder;
        event.folder = ext[i + 1].children[0].value;
        break;
      }
    }
  }
  // Shared and public folders are not the user's to be told of here: NOTIFY
  // `personal` covers none of them. (This also skips a public namespace's
  // root, which Dovecot's listing shows as "* LIST (\NonExistent) "." Public"
  // for a namespace "Public.": not a deletion.)
  if (config_.namespaces != nullptr &&
      (!config_.namespaces->IsPersonal(event.folder) ||
       (!event.new_folder.empty() &&
        !config_.namespaces->IsPersonal(event.new_folder)))) {
    return;
  }
  // While the baseline lists, a "* LIST" is the listing, not news: a creation
  // or deletion at that very moment is found by the listing's comparison. A
  // "\NonExistent" entry there is a parent that does not exist ("a" of "a.b"
  // created alone): taken for a deletion, it set off another listing, which
  // listed it again, without end (66,000 LISTs in 6 s, found in review).
  if (state_ == State::kList &&
      event.kind != session::EventKind::kFolderRenamed) {
    if (event.kind == session::EventKind::kFolderCreated) {
      delimiter_ = r.args[1];  // how devices are told of folder changes
    }
    return;
  }
  switch (event.kind) {
    case session::EventKind::kFolderCreated:
      folders_.OnCreated(event.folder);
      break;
    case session::EventKind::kFolderDeleted:
      folders_.OnDeleted(event.folder);
      break;
    default:
      folders_.OnRenamed(event.folder, event.new_folder);
      break;
  }
  sink_->OnStoreEvents(user_, {event});
  relist_due_ = true;
  // A new name is covered once its first look has taken a baseline; and the
  // listing that checks the store's mailbox events runs.
  if (state_ == State::kIdle) LeaveIdle();
}

void UserWatcher::ReportFolderChanges(
    const std::vector<FolderCatchUp::FolderChange>& changes) {
  if (changes.empty()) return;
  std::vector<session::StoreEvent> events =
      FolderChangeEvents(changes, delimiter_);
  for (const session::StoreEvent& event : events) {
    PIMAP_LOG(DEBUG) << "watch " << imap::QuoteForLog(user_)
                     << " found by listing: " << imap::QuoteForLog(event.raw);
  }
  sink_->OnStoreEvents(user_, events);
}

void UserWatcher::OnFolderLooked(bool ok, absl::string_view text) {
  OnSelectDone(ok);
  const std::string looked_at = folders_.current();
  if (!ok) {
    PIMAP_LOG(INFO) << "store watch for " << imap::QuoteForLog(user_)
                    << ": stops covering " << imap::QuoteForLog(looked_at)
                    << " (" << text << ")";
  }
  // A covered folder's first look: a device that began to idle there before
  // it (on its own link) may now leave its IDLE to the gateway.
  const bool first_cover = ok && folders_.current_first_look() &&
                           absl::c_binary_search(folders_.covered(), looked_at);
  std::vector<session::StoreEvent> events = folders_.Finish(ok);
  if (!events.empty()) sink_->OnStoreEvents(user_, events);
  if (first_cover && uidvalidity(looked_at) != 0) {
    sink_->OnFolderCovered(user_, looked_at);
  }
  if (FetchHeadlines()) return;  // while the folder is still open
  NextFolder();
}

}  // namespace pimap::store
