// An in-memory StateStore: nothing survives the process. Used by unit tests of
// other components and when pimapd runs without --state-dir (sessions then end
// with the process, which is the documented behaviour of that mode).
#ifndef PIMAP_CORE_SESSION_MEMORY_STATE_STORE_H_
#define PIMAP_CORE_SESSION_MEMORY_STATE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/session/state_store.h"

namespace pimap::session {

class MemoryStateStore final : public StateStore {
 public:
  MemoryStateStore() = default;
  MemoryStateStore(const MemoryStateStore&) = delete;
  MemoryStateStore& operator=(const MemoryStateStore&) = delete;

  absl::Status PutDevice(const DeviceRecord& record) override;
  absl::StatusOr<std::optional<DeviceRecord>> GetDevice(
      absl::string_view user, absl::string_view device) override;
  absl::StatusOr<std::vector<DeviceRecord>> ListDevices(
      absl::string_view user) override;
  absl::Status DeleteDevice(absl::string_view user,
                            absl::string_view device) override;
  absl::Status PutCheckpoint(absl::string_view user, absl::string_view device,
                             const FolderCheckpoint& checkpoint) override;
  absl::StatusOr<std::optional<FolderCheckpoint>> GetCheckpoint(
      absl::string_view user, absl::string_view device,
      absl::string_view folder) override;
  absl::StatusOr<std::vector<FolderCheckpoint>> ListCheckpoints(
      absl::string_view user, absl::string_view device) override;
  absl::Status MarkCheckpointDirty(absl::string_view user,
                                   absl::string_view device,
                                   absl::string_view folder) override;
  absl::StatusOr<int> ExpireBefore(int64_t cutoff_unix) override;
  absl::Status AppendFolderEvent(absl::string_view user,
                                 absl::string_view device,
                                 absl::string_view line,
                                 size_t max_kept) override;
  absl::Status AckFolderEvents(absl::string_view user, absl::string_view device,
                               size_t remaining) override;
  absl::StatusOr<std::vector<std::string>> ListFolderEvents(
      absl::string_view user, absl::string_view device) override;
  // Writes are applied immediately; batches only track nesting so that misuse
  // (an unmatched Commit) is reported exactly as the durable backends report
  // it.
  absl::Status BeginBatch() override;
  absl::Status CommitBatch() override;

 private:
  using Key = std::pair<std::string, std::string>;  // (user, device)
  struct Entry {
    DeviceRecord record;
    std::map<std::string, FolderCheckpoint> checkpoints;  // by folder
    std::deque<std::string> folder_events;                // oldest first
  };

  // Ordered so that ListDevices is a range scan in device order, as in SQL.
  std::map<Key, Entry> devices_;
  int batch_depth_ = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_MEMORY_STATE_STORE_H_
