// Journal: per-folder queues with a delivered prefix; see journal.h for the
// delivery contract.
#include "core/session/journal.h"

#include <utility>

namespace pimap::session {

uint64_t Journal::Append(StoreEvent event) {
  FolderLog& log = folders_[event.folder];
  if ((log.overflowed || log.uncertain) && !log.snapshot_sent) return 0;
  if (size_ >= limit_) {
    // Dropping the folder's own events (rather than the oldest of any
    // folder) keeps every other folder exactly replayable; this folder is
    // rebuilt from the store instead.
    Clear(log);
    log.overflowed = true;
    // An overflow while a snapshot is on its way is not covered by it: the
    // mark outlives that rebuild's ClearRebuild().
    log.overflow_after_snapshot = log.snapshot_sent;
    log.snapshot_sent = false;
    return 0;
  }
  const uint64_t seq = ++last_seq_;
  log.entries.push_back(JournalEntry{seq, std::move(event)});
  ++size_;
  return seq;
}

std::vector<const StoreEvent*> Journal::Undelivered(
    absl::string_view folder) const {
  std::vector<const StoreEvent*> out;
  auto it = folders_.find(folder);
  if (it == folders_.end()) return out;
  const FolderLog& log = it->second;
  out.reserve(log.live() - log.delivered);
  for (size_t i = log.head + log.delivered; i < log.entries.size(); ++i) {
    out.push_back(&log.entries[i].event);
  }
  return out;
}

std::vector<const JournalEntry*> Journal::UndeliveredEntries(
    absl::string_view folder) const {
  std::vector<const JournalEntry*> out;
  auto it = folders_.find(folder);
  if (it == folders_.end()) return out;
  const FolderLog& log = it->second;
  out.reserve(log.live() - log.delivered);
  for (size_t i = log.head + log.delivered; i < log.entries.size(); ++i) {
    out.push_back(&log.entries[i]);
  }
  return out;
}

std::vector<std::string> Journal::FoldersWithEvents() const {
  std::vector<std::string> out;
  for (const auto& [name, log] : folders_) {
    if (log.live() > 0) out.push_back(name);
  }
  return out;
}

void Journal::MarkDelivered(absl::string_view folder, uint64_t up_to_seq) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  FolderLog& log = it->second;
  while (log.head + log.delivered < log.entries.size() &&
         log.entries[log.head + log.delivered].seq <= up_to_seq) {
    ++log.delivered;
  }
}

void Journal::DropDelivered(FolderLog& log) {
  log.head += log.delivered;
  size_ -= log.delivered;
  log.delivered = 0;
  if (log.head == log.entries.size()) {
    log.entries.clear();
    log.head = 0;
    // A burst may have grown the vector; a quiet folder should not keep it.
    if (log.entries.capacity() > 64) log.entries.shrink_to_fit();
  } else if (log.head > 32 && log.head * 2 > log.entries.size()) {
    log.entries.erase(log.entries.begin(),
                      log.entries.begin() + static_cast<ptrdiff_t>(log.head));
    log.head = 0;
  }
}

void Journal::AckDelivered(absl::string_view folder) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  DropDelivered(it->second);
  MaybeErase(folder);
}

void Journal::AckDelivered(absl::string_view folder, uint64_t up_to_seq) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  FolderLog& log = it->second;
  size_t acked = 0;
  while (acked < log.delivered && log.entries[log.head + acked].seq <= up_to_seq) ++acked;
  if (acked == log.delivered) {
    DropDelivered(log);
  } else {
    // Keep the rest delivered-but-unacknowledged; drop the prefix.
    const size_t rest = log.delivered - acked;
    log.delivered = acked;
    DropDelivered(log);
    log.delivered = rest;
  }
  MaybeErase(folder);
}

void Journal::AckAllDelivered() {
  for (auto it = folders_.begin(); it != folders_.end();) {
    DropDelivered(it->second);
    const FolderLog& log = it->second;
    if (log.live() == 0 && !log.overflowed && !log.uncertain) {
      folders_.erase(it++);
    } else {
      ++it;
    }
  }
}

void Journal::RenderedAs(absl::string_view folder, uint64_t seq,
                         EventKind kind) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  FolderLog& log = it->second;
  for (size_t i = log.head + log.delivered; i < log.entries.size(); ++i) {
    if (log.entries[i].seq == seq) {
      log.entries[i].event.kind = kind;
      return;
    }
  }
}

void Journal::OnDisconnect() {
  for (auto& [name, log] : folders_) {
    if (log.overflowed || log.uncertain) {
      // A rebuild left unfinished: its next snapshot is taken anew.
      Clear(log);
      log.snapshot_sent = false;
      log.overflow_after_snapshot = false;
      continue;
    }
    bool unsafe = false;
    for (size_t i = log.head; i < log.head + log.delivered; ++i) {
      if (!IsIdempotent(log.entries[i].event.kind)) {
        unsafe = true;
        break;
      }
    }
    if (unsafe) {
      Clear(log);
      log.uncertain = true;
    } else {
      log.delivered = 0;  // replay from the first unacknowledged event
    }
  }
}

void Journal::MarkUncertain(absl::string_view folder) {
  FolderLog& log = folders_[folder];
  Clear(log);
  log.uncertain = true;
  log.snapshot_sent = false;
}

void Journal::MarkIncomplete(absl::string_view folder) {
  FolderLog& log = folders_[folder];
  Clear(log);
  log.overflowed = true;
  log.snapshot_sent = false;
}

void Journal::Clear(FolderLog& log) {
  size_ -= log.live();
  log.entries.clear();
  log.entries.shrink_to_fit();
  log.head = 0;
  log.delivered = 0;
}

bool Journal::NeedsRebuild(absl::string_view folder) const {
  auto it = folders_.find(folder);
  return it != folders_.end() &&
         (it->second.overflowed || it->second.uncertain);
}

bool Journal::Uncertain(absl::string_view folder) const {
  auto it = folders_.find(folder);
  return it != folders_.end() && it->second.uncertain;
}

std::vector<std::string> Journal::FoldersNeedingRebuild() const {
  std::vector<std::string> out;
  for (const auto& [name, log] : folders_) {
    if (log.overflowed || log.uncertain) out.push_back(name);
  }
  return out;
}

void Journal::SnapshotSent(absl::string_view folder) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  it->second.snapshot_sent = true;
}

void Journal::ClearRebuild(absl::string_view folder) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  FolderLog& log = it->second;
  log.overflowed = log.overflow_after_snapshot;
  log.uncertain = false;
  log.snapshot_sent = false;
  log.overflow_after_snapshot = false;
  MaybeErase(folder);
}

void Journal::MaybeErase(absl::string_view folder) {
  auto it = folders_.find(folder);
  if (it == folders_.end()) return;
  const FolderLog& log = it->second;
  if (log.live() == 0 && !log.overflowed && !log.uncertain) folders_.erase(it);
}

size_t Journal::MemoryBytes() const {
  size_t bytes =
      sizeof(*this) +
      folders_.capacity() * (sizeof(std::pair<std::string, FolderLog>) + 1);
  auto heap = [](const std::string& s) {
    return s.capacity() > 15 ? s.capacity() + 1 : 0;  // beyond libstdc++ SSO
  };
  for (const auto& [name, log] : folders_) {
    bytes += heap(name) + log.entries.capacity() * sizeof(JournalEntry);
    for (size_t i = log.head; i < log.entries.size(); ++i) {
      const StoreEvent& e = log.entries[i].event;
      bytes += heap(e.folder) + heap(e.new_folder) +
               e.flags.capacity() * sizeof(std::string);
      for (const std::string& f : e.flags) bytes += heap(f);
    }
  }
  return bytes;
}

}  // namespace pimap::session
