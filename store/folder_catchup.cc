// Folder baselines, the catch-up queue and EXAMINE (QRESYNC) results as events.
#include "store/folder_catchup.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"
#include "core/session/store_text.h"

namespace pimap::store {

namespace {
// A catch-up reporting more than this is cut short: far past any journal's
// limit, so every device journal overflows and rebuilds the folder from the
// store (which is exact) instead of trusting the events.
constexpr size_t kMaxEvents = 1 << 20;

bool IsInbox(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "INBOX");
}

// Only names that go out as a quoted string are tracked: the watch sends whole
// commands and never waits for a literal's continuation.
bool Quotable(absl::string_view name) {
  if (name.empty() || name.size() > 1024) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}
}  // namespace

std::vector<session::StoreEvent> SessionOrder(
    std::vector<session::StoreEvent> events) {
  absl::flat_hash_set<uint32_t> gone;
  for (const session::StoreEvent& e : events) {
    if (e.kind == session::EventKind::kExpunge) gone.insert(e.uid);
  }
  if (!gone.empty()) {
    events.erase(std::remove_if(events.begin(), events.end(),
                                [&gone](const session::StoreEvent& e) {
                                  return e.kind !=
                                             session::EventKind::kExpunge &&
                                         gone.contains(e.uid);
                                }),
                 events.end());
  }
  std::stable_partition(events.begin(), events.end(),
                        [](const session::StoreEvent& e) {
                          return e.kind == session::EventKind::kExpunge;
                        });
  return events;
}

std::vector<uint32_t> TakeUnseen(absl::string_view vanished_set,
                                 uint32_t* unseen_from, size_t max) {
  std::vector<uint32_t> out;
  absl::StatusOr<imap::SequenceSet> set =
      imap::SequenceSet::Parse(vanished_set);
  if (*unseen_from == 0 || !set.ok()) return out;
  for (const imap::SeqRange& range : set->ranges()) {
    if (range.last == imap::kStar) continue;  // not in a VANISHED set
    for (uint64_t uid = std::max<uint64_t>(range.first, *unseen_from);
         uid <= range.last && out.size() < max; ++uid) {
      out.push_back(static_cast<uint32_t>(uid));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (!out.empty()) *unseen_from = std::max(*unseen_from, out.back() + 1);
  return out;
}

bool CodeNumber(absl::string_view code, absl::string_view name, uint64_t* out) {
  if (!absl::StartsWithIgnoreCase(code, name) || code.size() <= name.size() ||
      code[name.size()] != ' ') {
    return false;
  }
  code.remove_prefix(name.size() + 1);
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(code), out);
}

FetchData ParseFetchData(const imap::Response& r) {
  FetchData data;
  if (r.args.empty() || r.args[0].type != imap::Arg::Type::kList) return data;
  const std::vector<imap::Arg>& items = r.args[0].children;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const std::string name = absl::AsciiStrToUpper(items[i].value);
    const imap::Arg& value = items[i + 1];
    if (name == "UID") {
      if (!absl::SimpleAtoi(value.value, &data.uid)) data.uid = 0;
    } else if (name == "FLAGS" && value.type == imap::Arg::Type::kList) {
      data.has_flags = true;
      for (const imap::Arg& flag : value.children) {
        // \Recent is the watch's own session's (RFC 3501 §2.3.2: it SELECTs
        // INBOX), never a device's: pushed on, it would say "(\Seen \Recent)".
        if (absl::EqualsIgnoreCase(flag.value, "\\Recent")) continue;
        data.flags.push_back(flag.value);
      }
    } else if (name == "MODSEQ" && value.type == imap::Arg::Type::kList &&
               !value.children.empty()) {
      if (!absl::SimpleAtoi(value.children[0].value, &data.modseq)) {
        data.modseq = 0;
      }
    }
  }
  return data;
}

void FolderCatchUp::BeginBaseline() {
  rebaseline_ = enabled_;
  baseline_ = true;
  listed_.clear();
  fresh_.clear();
}

std::vector<FolderCatchUp::FolderChange> FolderCatchUp::EndBaseline(bool ok) {
  baseline_ = false;
  std::vector<FolderChange> changes;
  if (!ok) {
    Disable();
    return changes;
  }
  enabled_ = true;
  // Tracked but not listed: deleted or renamed while no event said so.
  std::vector<std::string> gone;
  std::vector<std::string> unlisted_covered;
  for (const auto& [name, folder] : folders_) {
    if (listed_.contains(name)) continue;
    // A covered folder the listing did not show (another user's, listed or
    // not as the store likes, or covered while the listing ran) is not a
    // change of the user's folders: its own look says whether it is still
    // there.
    (Personal(name) ? gone : unlisted_covered).push_back(name);
  }
  std::sort(gone.begin(), gone.end());
  for (const std::string& name : unlisted_covered) Queue(name);
  // A store keeps a folder's UIDVALIDITY across a rename (RFC 3501 §6.3.5
  // lets it, Dovecot does): a new name with a gone one's is that folder.
  absl::flat_hash_map<uint32_t, std::string> fresh_by_uidvalidity;
  for (const std::string& name : fresh_) {
    const uint32_t uidvalidity = folders_[name].uidvalidity;
    if (uidvalidity != 0) fresh_by_uidvalidity.emplace(uidvalidity, name);
  }
  for (const std::string& name : gone) {
    const Folder moved = folders_[name];
    Drop(name);
    auto to = moved.uidvalidity == 0
                  ? fresh_by_uidvalidity.end()
                  : fresh_by_uidvalidity.find(moved.uidvalidity);
    if (to == fresh_by_uidvalidity.end()) {
      changes.push_back({session::EventKind::kFolderDeleted, name, ""});
      continue;
    }
    const std::string new_name = to->second;
    fresh_by_uidvalidity.erase(to);
    fresh_.erase(new_name);
    changes.push_back({session::EventKind::kFolderRenamed, name, new_name});
    // Caught up from where the old name stood, as OnRenamed does.
    Folder& folder = folders_[new_name];
    if (folder.modseq > moved.modseq) {
      folder = moved;
      Queue(new_name);
    }
  }
  std::vector<std::string> created(fresh_.begin(), fresh_.end());
  std::sort(created.begin(), created.end());
  for (std::string& name : created) {
    changes.push_back(
        {session::EventKind::kFolderCreated, std::move(name), ""});
  }
  listed_.clear();
  fresh_.clear();
  // Covered before the first listing: tracked from now on.
  TrackCovered();
  if (!rebaseline_) changes.clear();  // the first listing is the start
  return changes;
}

bool FolderCatchUp::SetCovered(const std::vector<std::string>& folders) {
  std::vector<std::string> covered;
  for (const std::string& name : folders) {
    if (IsInbox(name) || !Quotable(name) || Personal(name)) continue;
    covered.push_back(name);
  }
  std::sort(covered.begin(), covered.end());
  covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
  if (covered.size() > kMaxCovered) covered.resize(kMaxCovered);
  if (covered == covered_) return false;
  covered_ = std::move(covered);
  // No longer named by the NOTIFY: its baseline would claim a coverage the
  // store no longer gives.
  std::vector<std::string> uncovered;
  for (const auto& [name, folder] : folders_) {
    if (!Personal(name) &&
        !std::binary_search(covered_.begin(), covered_.end(), name)) {
      uncovered.push_back(name);
    }
  }
  // One being examined right now finishes as if deleted meanwhile (Finish).
  for (const std::string& name : uncovered) Drop(name);
  TrackCovered();
  return true;
}

void FolderCatchUp::TrackCovered() {
  if (!active()) return;  // tracked when a baseline succeeds
  for (const std::string& name : covered_) {
    if (Find(name) != nullptr) continue;
    // Its first look takes the baseline (no LIST-STATUS entry is trusted for
    // it: the listing may not show other users' folders).
    if (Track(name) != nullptr) Queue(name);
  }
}

void FolderCatchUp::EnableCoveredOnly() {
  covered_only_ = true;
  enabled_ = true;
  baseline_ = false;
  TrackCovered();
  // After a reconnect: what changed while the watch was away is caught up
  // from where each folder stood (a listing does that for a full watch).
  for (const auto& [name, folder] : folders_) Queue(name);
}

void FolderCatchUp::Disable() {
  enabled_ = false;
  baseline_ = false;
  folders_.clear();
  listed_.clear();
  fresh_.clear();
  queued_.clear();
  order_.clear();
  current_.clear();
  pending_.clear();
}

void FolderCatchUp::OnStatus(const imap::Response& r) {
  if (!active()) return;
  if (r.args.size() < 2 || r.args[1].type != imap::Arg::Type::kList) return;
  const std::string& name = r.args[0].value;
  if (IsInbox(name)) return;  // the watch's own selected-mailbox path
  uint64_t uidvalidity = 0, modseq = 0, uidnext = 0;
  bool has_uidvalidity = false, has_modseq = false;
  const std::vector<imap::Arg>& items = r.args[1].children;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const std::string item = absl::AsciiStrToUpper(items[i].value);
    uint64_t n = 0;
    if (!absl::SimpleAtoi(items[i + 1].value, &n)) continue;
    if (item == "UIDVALIDITY") {
      uidvalidity = n;
      has_uidvalidity = true;
    } else if (item == "HIGHESTMODSEQ") {
      modseq = n;
      has_modseq = true;
    } else if (item == "UIDNEXT") {
      uidnext = n;
    }
  }
  auto it = folders_.find(name);
  if (baseline_ && has_uidvalidity) {
    // LIST-STATUS data (a NOTIFY STATUS may carry UIDVALIDITY too; read as a
    // baseline it is merged the same way, so nothing is lost either way).
    if (it == folders_.end()) {
      // Never seen, or created while the watch was away: its state now is
      // the baseline. A mailbox without MODSEQs cannot be caught up.
      if (uidvalidity == 0 || modseq == 0 || uidnext == 0) return;
      // A covered folder is tracked by SetCovered, never found by a listing.
      if (!Personal(name)) return;
      Folder* folder = Track(name);
      if (folder == nullptr) return;
      *folder = {static_cast<uint32_t>(uidvalidity), modseq,
                 static_cast<uint32_t>(uidnext)};
      listed_.insert(name);
      fresh_.insert(name);
      return;
    }
    listed_.insert(name);
    Folder& folder = it->second;
    if (folder.uidvalidity == 0) {
      if (modseq == 0 || uidnext == 0) return;  // left to its first look
      folder = {static_cast<uint32_t>(uidvalidity), modseq,
                static_cast<uint32_t>(uidnext)};
      return;
    }
    // Known: what changed since the last catch-up (a store restart, a link
    // lost) is caught up from the folder's own MODSEQ, never skipped.
    if (uidvalidity != folder.uidvalidity || modseq > folder.modseq ||
        modseq == 0) {
      Queue(name);
    }
    return;
  }
  if (it == folders_.end()) {
    // A folder the watch does not know yet (created while it listed): its
    // first catch-up takes the baseline.
    if (Track(name) == nullptr) return;
    if (baseline_ && Personal(name)) {
      listed_.insert(name);
      fresh_.insert(name);
    }
    Queue(name);
    return;
  }
  const Folder& folder = it->second;
  if (has_modseq && folder.uidvalidity != 0 && modseq <= folder.modseq &&
      (!has_uidvalidity || uidvalidity == folder.uidvalidity)) {
    return;  // reported already (a STATUS of a change the watch has caught up)
  }
  Queue(name);
}

void FolderCatchUp::OnCreated(absl::string_view name) {
  if (!active() || IsInbox(name)) return;
  if (Track(name) != nullptr) Queue(name);  // its first look takes the baseline
}

void FolderCatchUp::OnDeleted(absl::string_view name) { Drop(name); }

void FolderCatchUp::OnRenamed(absl::string_view from, absl::string_view to) {
  auto it = folders_.find(from);
  if (it == folders_.end()) {
    OnCreated(to);
    return;
  }
  const Folder moved = it->second;
  Drop(from);
  if (!Personal(to)) {
    OnCreated(to);  // covered: its own first look, as another user's folder
    return;
  }
  if (!active() || IsInbox(to)) return;
  Folder* folder = Track(to);
  if (folder == nullptr) return;
  // Same messages under a new name: caught up from where the old name stood
  // (a store that gives the new name another UIDVALIDITY is re-baselined).
  *folder = moved;
  Queue(to);
}

void FolderCatchUp::Queue(absl::string_view name) {
  if (!active() || !folders_.contains(name)) return;
  if (!queued_.insert(std::string(name)).second) return;
  order_.emplace_back(name);
  if (order_.size() > 2 * max_folders_ + 16) {
    // Names dropped while queued linger in the order; keep it bounded.
    std::deque<std::string> compact;
    absl::flat_hash_set<std::string> kept;
    for (std::string& n : order_) {
      if (queued_.contains(n) && kept.insert(n).second) {
        compact.push_back(std::move(n));
      }
    }
    order_ = std::move(compact);
  }
}

std::string FolderCatchUp::StartNext() {
  while (!order_.empty()) {
    std::string name = std::move(order_.front());
    order_.pop_front();
    if (queued_.erase(name) == 0) {
      continue;  // dropped meanwhile, or a stale repeat
    }
    auto it = folders_.find(name);
    if (it == folders_.end()) continue;
    Folder& folder = it->second;
    current_first_look_ = folder.uidvalidity == 0;
    if (folder.uidvalidity == 0 && !Personal(name) && view_source_) {
      const session::ViewStart view = view_source_(name);
      if (view.modseq != 0 && view.uidvalidity != 0) {
        // As if baselined where the device's view was taken (a UIDVALIDITY
        // changed meanwhile re-baselines without events, as ever).
        folder = {view.uidvalidity, view.modseq, view.top_uid + 1};
      }
    }
    current_ = std::move(name);
    base_uidnext_ = folder.uidnext;
    got_uidvalidity_ = 0;
    got_modseq_ = 0;
    got_uidnext_ = 0;
    max_modseq_ = 0;
    pending_.clear();
    std::string command = "EXAMINE ";
    imap::AppendString(&command, current_);
    if (folder.uidvalidity != 0 && folder.modseq != 0) {
      absl::StrAppend(&command, " (QRESYNC (", folder.uidvalidity, " ",
                      folder.modseq, "))");
    }
    return command;
  }
  return "";
}

void FolderCatchUp::OnCode(absl::string_view code) {
  if (current_.empty()) return;
  uint64_t n = 0;
  if (CodeNumber(code, "UIDVALIDITY", &n)) {
    got_uidvalidity_ = static_cast<uint32_t>(n);
  }
  if (CodeNumber(code, "HIGHESTMODSEQ", &n)) got_modseq_ = n;
  if (CodeNumber(code, "UIDNEXT", &n)) got_uidnext_ = static_cast<uint32_t>(n);
}

void FolderCatchUp::OnFetch(const imap::Response& r) {
  const Folder* folder = Find(current_);
  if (folder == nullptr || folder->uidvalidity == 0) {
    return;  // a first look: no QRESYNC
  }
  FetchData data = ParseFetchData(r);
  if (data.uid == 0) return;
  max_modseq_ = std::max(max_modseq_, data.modseq);
  if (pending_.size() >= kMaxEvents) return;
  session::StoreEvent event;
  event.folder = current_;
  event.uidvalidity = folder->uidvalidity;
  event.uid = data.uid;
  event.flags = std::move(data.flags);
  event.flags_known = data.has_flags;
  event.modseq = data.modseq;
  // QRESYNC reports every message changed since the MODSEQ, new ones included:
  // a UID at or past the last UIDNEXT was never reported, so it is new mail.
  event.kind = data.uid >= base_uidnext_ ? session::EventKind::kNew
                                         : session::EventKind::kFlags;
  // A FETCH without FLAGS says nothing of them: not "no flags".
  if (event.kind == session::EventKind::kFlags && !event.flags_known) return;
  pending_.push_back(std::move(event));
}

void FolderCatchUp::OnVanished(const imap::Response& r) {
  const Folder* folder = Find(current_);
  if (folder == nullptr || folder->uidvalidity == 0 || base_uidnext_ <= 1) {
    return;
  }
  // "* VANISHED (EARLIER) 3:5,9". UIDs at or past the last UIDNEXT came and
  // went between two looks: never announced, so not news either.
  for (const imap::Arg& arg : r.args) {
    if (arg.type != imap::Arg::Type::kAtom) continue;
    absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(arg.value);
    if (!set.ok()) continue;
    for (const imap::SeqRange& range : set->ranges()) {
      const uint64_t last = std::min<uint64_t>(range.last, base_uidnext_ - 1);
      for (uint64_t uid = range.first;
           uid <= last && pending_.size() < kMaxEvents; ++uid) {
        session::StoreEvent event;
        event.kind = session::EventKind::kExpunge;
        event.folder = current_;
        event.uidvalidity = folder->uidvalidity;
        event.uid = static_cast<uint32_t>(uid);
        pending_.push_back(std::move(event));
      }
    }
  }
}

std::vector<session::StoreEvent> FolderCatchUp::Finish(bool ok) {
  const std::string name = std::move(current_);
  current_.clear();
  std::vector<session::StoreEvent> events = std::move(pending_);
  pending_.clear();
  auto it = folders_.find(name);
  if (it == folders_.end()) return {};  // deleted while it was being examined
  if (!ok || got_uidvalidity_ == 0 || got_modseq_ == 0 || got_uidnext_ == 0) {
    // Gone (or renamed) meanwhile, or without MODSEQs: no longer covered.
    Drop(name);
    return {};
  }
  Folder& folder = it->second;
  if (folder.uidvalidity != got_uidvalidity_) {
    // First look, or a new UIDVALIDITY: as for INBOX, the folder's state now is
    // the baseline; devices holding the old UIDVALIDITY resynchronise.
    if (folder.uidvalidity != 0) {
      PIMAP_LOG(WARNING) << "UIDVALIDITY of " << imap::QuoteForLog(name)
                         << " changed under the store watch";
    }
    folder = {got_uidvalidity_, got_modseq_, got_uidnext_};
    return {};
  }
  // QRESYNC reported every change up to the HIGHESTMODSEQ of the EXAMINE.
  folder.modseq = std::max({folder.modseq, got_modseq_, max_modseq_});
  folder.uidnext = std::max(folder.uidnext, got_uidnext_);
  for (const session::StoreEvent& e : events) {
    if (e.kind == session::EventKind::kNew) {
      folder.uidnext = std::max(folder.uidnext, e.uid + 1);
    }
  }
  // Expunges first, as on INBOX: MSNs stay simple for devices.
  return SessionOrder(std::move(events));
}

void FolderCatchUp::Abort() {
  if (current_.empty()) return;
  const std::string name = std::move(current_);
  current_.clear();
  pending_.clear();
  Queue(name);
}

const FolderCatchUp::Folder* FolderCatchUp::Find(absl::string_view name) const {
  auto it = folders_.find(name);
  return it == folders_.end() ? nullptr : &it->second;
}

FolderCatchUp::Folder* FolderCatchUp::Track(absl::string_view name) {
  auto it = folders_.find(name);
  if (it != folders_.end()) return &it->second;
  if (IsInbox(name) || !Quotable(name)) return nullptr;
  if (Personal(name)) {
    // A watch of the covered folders alone hears nothing of the user's own.
    if (covered_only_ || folders_.size() >= max_folders_) return nullptr;
  } else if (!std::binary_search(covered_.begin(), covered_.end(), name)) {
    return nullptr;
  }
  // Covered folders are bounded by kMaxCovered, not by max_folders_: a user
  // with that many folders of their own still has the shared ones covered.
  return &folders_[name];
}

void FolderCatchUp::Drop(absl::string_view name) {
  auto it = folders_.find(name);
  if (it != folders_.end()) folders_.erase(it);
  auto f = fresh_.find(name);
  if (f != fresh_.end()) fresh_.erase(f);
  auto q = queued_.find(name);
  if (q != queued_.end()) queued_.erase(q);
}

namespace {
// " (mailboxes (<names>) (MessageNew MessageExpunge FlagChange))"; one-or-more-
// mailbox: a parenthesised list names several.
void AppendMailboxesFilter(std::string* command,
                           const std::vector<std::string>& covered) {
  *command += " (mailboxes (";
  for (size_t i = 0; i < covered.size(); ++i) {
    if (i > 0) *command += ' ';
    imap::AppendString(command, covered[i]);
  }
  *command += ") (MessageNew MessageExpunge FlagChange))";
}
}  // namespace

std::string WatchNotifyCommand(const std::vector<std::string>& covered) {
  std::string command =
      "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
      "(personal (MessageNew MessageExpunge FlagChange MailboxName))";
  if (!covered.empty()) AppendMailboxesFilter(&command, covered);
  return command;
}

std::string CoveredOnlyNotifyCommand(const std::vector<std::string>& covered) {
  if (covered.empty()) return "NOTIFY NONE";
  std::string command = "NOTIFY SET";
  AppendMailboxesFilter(&command, covered);
  return command;
}

std::vector<session::StoreEvent> FolderChangeEvents(
    const std::vector<FolderCatchUp::FolderChange>& changes,
    const imap::Arg& delimiter) {
  std::vector<session::StoreEvent> events;
  events.reserve(changes.size());
  for (const FolderCatchUp::FolderChange& change : changes) {
    const bool renamed = change.kind == session::EventKind::kFolderRenamed;
    session::StoreEvent event;
    event.kind = change.kind;
    event.folder = change.name;
    if (renamed) event.new_folder = change.new_name;
    std::string raw = change.kind == session::EventKind::kFolderDeleted
                          ? "* LIST (\\NonExistent) "
                          : "* LIST () ";
    session::RenderArg(&raw, delimiter, /*to_device=*/true);
    raw += ' ';
    imap::Arg name;
    name.type = imap::Arg::Type::kQuoted;
    name.value = renamed ? change.new_name : change.name;
    session::RenderArg(&raw, name, /*to_device=*/true);
    if (renamed) {
      name.value = change.name;
      raw += " (\"OLDNAME\" (";
      session::RenderArg(&raw, name, /*to_device=*/true);
      raw += "))";
    }
    event.raw = std::move(raw);
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace pimap::store
