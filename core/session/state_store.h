// The durable per-(user, device) state seam: device registrations, filters,
// prefs, per-device per-folder checkpoints and the folder events kept for an
// absent device, all of which must survive a pimapd restart (architecture
// §5). Declared in core so that the session model never depends on a storage
// library; store/state/ provides the SQLite backend, memory_state_store.h an
// in-memory one, and a cluster backend can implement the same interface
// later.
//
// Contract shared by every implementation (the typed tests in
// tests/store/state_store_test.cc hold each backend to it):
//  - An instance is used from one thread only (its shard); no internal locking.
//  - `user` and `device` must be non-empty, and so must a checkpoint's `folder`
//    (InvalidArgument otherwise).
//  - PutDevice inserts or updates in place: an existing device keeps its
//    checkpoints.
//  - A checkpoint belongs to a registered device: PutCheckpoint for an unknown
//    (user, device) is NotFound, so that expiry and LOGOUT can never leave
//    orphans.
//  - DeleteDevice of an unknown device is OK (LOGOUT may race expiry).
//  - Lists are ordered: devices by device id, checkpoints by folder (bytewise).
//  - Filters, prefs and views are opaque byte strings owned by other code;
//    they are stored and returned unchanged, embedded NULs included.
//  - Folder events (the "* LIST" lines of mailboxes created, deleted or
//    renamed while the device was away) belong to the device's session like
//    its checkpoints: appending for an unknown device is NotFound, and
//    DeleteDevice / ExpireBefore remove them. They are kept oldest first.
//  - A checkpoint's dirty mark (MarkCheckpointDirty) is durable when the call
//    returns outside a batch: the caller writes to the device only after it.
//    PutCheckpoint sets or clears it with the rest of the checkpoint.
#ifndef PIMAP_CORE_SESSION_STATE_STORE_H_
#define PIMAP_CORE_SESSION_STATE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::session {

struct DeviceRecord {
  std::string user;        // user key (username[@domain])
  std::string device;      // device id
  std::string session_id;  // the SESSIONID given to the device (decimal text)
  std::string filters;     // opaque serialized DeviceFilters
  std::string prefs;       // opaque serialized DevicePrefs
  std::string
      selected_folder;  // "" when the session was AUTHENTICATED (not SELECTED)
  bool read_only = false;  // selected with EXAMINE
  int64_t last_activity_unix =
      0;  // seconds; sessions expire --session-lifetime after this

  friend bool operator==(const DeviceRecord&, const DeviceRecord&) = default;
};

struct FolderCheckpoint {
  std::string folder;
  uint32_t uidvalidity = 0;
  uint64_t acked_modseq =
      0;             // the device's last acknowledged MODSEQ for this folder
  std::string view;  // opaque serialized UidView ("1:5,7")
  // The device may hold a view this checkpoint does not reflect (an EXISTS or
  // EXPUNGE was written to it after the checkpoint): its MSN map cannot be
  // rebuilt from `view`, and its resume is a RESYNC (session_registry.h).
  bool dirty = false;

  friend bool operator==(const FolderCheckpoint&,
                         const FolderCheckpoint&) = default;
};

// Durable state behind an interface that a cluster backend can implement later.
class StateStore {
 public:
  virtual ~StateStore() = default;

  // Insert or replace (in place: the device's checkpoints are kept).
  virtual absl::Status PutDevice(const DeviceRecord& record) = 0;
  virtual absl::StatusOr<std::optional<DeviceRecord>> GetDevice(
      absl::string_view user, absl::string_view device) = 0;
  virtual absl::StatusOr<std::vector<DeviceRecord>> ListDevices(
      absl::string_view user) = 0;
  // Also deletes its checkpoints and folder events (LOGOUT ends the session).
  virtual absl::Status DeleteDevice(absl::string_view user,
                                    absl::string_view device) = 0;

  // Insert or replace the checkpoint for checkpoint.folder.
  virtual absl::Status PutCheckpoint(absl::string_view user,
                                     absl::string_view device,
                                     const FolderCheckpoint& checkpoint) = 0;
  virtual absl::StatusOr<std::optional<FolderCheckpoint>> GetCheckpoint(
      absl::string_view user, absl::string_view device,
      absl::string_view folder) = 0;
  virtual absl::StatusOr<std::vector<FolderCheckpoint>> ListCheckpoints(
      absl::string_view user, absl::string_view device) = 0;
  // Sets the dirty mark of the checkpoint of `folder` and nothing else (one
  // small write, however large the view). Without a checkpoint of the folder
  // a dirty one with no view is made: the mark must hold either way. An
  // unknown device is NotFound, an empty folder InvalidArgument.
  virtual absl::Status MarkCheckpointDirty(absl::string_view user,
                                           absl::string_view device,
                                           absl::string_view folder) = 0;

  // Removes devices whose last_activity_unix < cutoff (expired sessions) and
  // their checkpoints and folder events; returns how many devices.
  virtual absl::StatusOr<int> ExpireBefore(int64_t cutoff_unix) = 0;

  // Appends `line` after the device's other folder events; past `max_kept`
  // the oldest go (the device's in-memory list has the same bound).
  virtual absl::Status AppendFolderEvent(absl::string_view user,
                                         absl::string_view device,
                                         absl::string_view line,
                                         size_t max_kept) = 0;
  // The device acknowledged all but its newest `remaining` folder events: the
  // older ones go. An unknown device is OK (nothing to acknowledge).
  virtual absl::Status AckFolderEvents(absl::string_view user,
                                       absl::string_view device,
                                       size_t remaining) = 0;
  // Oldest first; empty for an unknown device.
  virtual absl::StatusOr<std::vector<std::string>> ListFolderEvents(
      absl::string_view user, absl::string_view device) = 0;

  // Groups many writes into one transaction (checkpoint bursts): Begin/Commit;
  // nested calls are flattened (only the outermost Commit commits). CommitBatch
  // without a matching BeginBatch is FailedPrecondition. A batch is for
  // throughput: a write that fails inside it is reported by that call and does
  // not undo the others, unless the backend had to abandon the whole batch
  // (disk full, I/O error), which the outermost CommitBatch then reports as
  // Aborted.
  virtual absl::Status BeginBatch() = 0;
  virtual absl::Status CommitBatch() = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_STATE_STORE_H_
