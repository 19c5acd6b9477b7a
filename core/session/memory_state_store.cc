// In-memory StateStore; see memory_state_store.h.
#include "core/session/memory_state_store.h"

#include <string>
#include <utility>

namespace pimap::session {
namespace {

absl::Status CheckKey(absl::string_view user, absl::string_view device) {
  if (user.empty() || device.empty()) {
    return absl::InvalidArgumentError("state store: empty user or device id");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MemoryStateStore::PutDevice(const DeviceRecord& record) {
  if (absl::Status s = CheckKey(record.user, record.device); !s.ok()) return s;
  // Update in place so that the device keeps its checkpoints.
  devices_[Key(record.user, record.device)].record = record;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<DeviceRecord>> MemoryStateStore::GetDevice(
    absl::string_view user, absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) return std::optional<DeviceRecord>();
  return std::optional<DeviceRecord>(it->second.record);
}

absl::StatusOr<std::vector<DeviceRecord>> MemoryStateStore::ListDevices(
    absl::string_view user) {
  if (user.empty()) {
    return absl::InvalidArgumentError("state store: empty user");
  }
  std::vector<DeviceRecord> out;
  const std::string key(user);
  for (auto it = devices_.lower_bound(Key(key, std::string()));
       it != devices_.end() && it->first.first == key; ++it) {
    out.push_back(it->second.record);
  }
  return out;
}

absl::Status MemoryStateStore::DeleteDevice(absl::string_view user,
                                            absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  devices_.erase(Key(std::string(user), std::string(device)));
  return absl::OkStatus();
}

absl::Status MemoryStateStore::PutCheckpoint(
    absl::string_view user, absl::string_view device,
    const FolderCheckpoint& checkpoint) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  if (checkpoint.folder.empty()) {
    return absl::InvalidArgumentError("state store: empty checkpoint folder");
  }
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) {
    return absl::NotFoundError(
        "state store: checkpoint for unregistered device");
  }
  it->second.checkpoints[checkpoint.folder] = checkpoint;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<FolderCheckpoint>> MemoryStateStore::GetCheckpoint(
    absl::string_view user, absl::string_view device,
    absl::string_view folder) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) return std::optional<FolderCheckpoint>();
  auto cp = it->second.checkpoints.find(std::string(folder));
  if (cp == it->second.checkpoints.end()) {
    return std::optional<FolderCheckpoint>();
  }
  return std::optional<FolderCheckpoint>(cp->second);
}

absl::StatusOr<std::vector<FolderCheckpoint>> MemoryStateStore::ListCheckpoints(
    absl::string_view user, absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  std::vector<FolderCheckpoint> out;
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) return out;
  out.reserve(it->second.checkpoints.size());
  for (const auto& [folder, checkpoint] : it->second.checkpoints) {
    out.push_back(checkpoint);
  }
  return out;
}

absl::Status MemoryStateStore::MarkCheckpointDirty(absl::string_view user,
                                                   absl::string_view device,
                                                   absl::string_view folder) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  if (folder.empty()) {
    return absl::InvalidArgumentError("state store: empty checkpoint folder");
  }
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) {
    return absl::NotFoundError(
        "state store: checkpoint for unregistered device");
  }
  FolderCheckpoint& checkpoint = it->second.checkpoints[std::string(folder)];
  checkpoint.folder = std::string(folder);
  checkpoint.dirty = true;
  return absl::OkStatus();
}

absl::StatusOr<int> MemoryStateStore::ExpireBefore(int64_t cutoff_unix) {
  int removed = 0;
  for (auto it = devices_.begin(); it != devices_.end();) {
    if (it->second.record.last_activity_unix < cutoff_unix) {
      it = devices_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

absl::Status MemoryStateStore::AppendFolderEvent(absl::string_view user,
                                                 absl::string_view device,
                                                 absl::string_view line,
                                                 size_t max_kept) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) {
    return absl::NotFoundError(
        "state store: folder event for unregistered device");
  }
  std::deque<std::string>& events = it->second.folder_events;
  events.emplace_back(line);
  while (events.size() > max_kept) events.pop_front();
  return absl::OkStatus();
}

absl::Status MemoryStateStore::AckFolderEvents(absl::string_view user,
                                               absl::string_view device,
                                               size_t remaining) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) return absl::OkStatus();
  std::deque<std::string>& events = it->second.folder_events;
  while (events.size() > remaining) events.pop_front();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryStateStore::ListFolderEvents(
    absl::string_view user, absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  auto it = devices_.find(Key(std::string(user), std::string(device)));
  if (it == devices_.end()) return std::vector<std::string>();
  return std::vector<std::string>(it->second.folder_events.begin(),
                                  it->second.folder_events.end());
}

absl::Status MemoryStateStore::BeginBatch() {
  ++batch_depth_;
  return absl::OkStatus();
}

absl::Status MemoryStateStore::CommitBatch() {
  if (batch_depth_ == 0) {
    return absl::FailedPreconditionError(
        "state store: CommitBatch without BeginBatch");
  }
  --batch_depth_;
  return absl::OkStatus();
}

}  // namespace pimap::session
