// The durable StateStore of one shard: an SQLite database in WAL mode at
// <state-dir>/shard-<N>.sqlite3, owned and used by that shard's thread only.
//
// Durability trade-off: synchronous=NORMAL in WAL mode fsyncs at checkpoints,
// not at every commit. A commit has written its pages to the WAL file with
// write(2) when it returns, so a crash of pimapd alone (SIGKILL, abort) loses
// nothing: the kernel has the bytes. A power loss or OS crash may lose the last
// few hundred milliseconds of commits (never corrupt the file). For most state
// that is safe: a lost checkpoint is merely stale, and a stale clean checkpoint
// only makes the resume rebuild more from the message store via CONDSTORE; a
// lost device registration makes the device log in again; a lost folder event
// is only a missed notice (the device's next LIST shows the folders as they
// are). A lost dirty mark (MarkCheckpointDirty) is not: the resume would
// rebuild exactly from a view the device has already moved away from, instead
// of a RESYNC. So the mark holds across a pimapd crash, not across a power loss
// of the host (that would need an fsync on the shard thread before every first
// write of a dirty period). In exchange a checkpoint burst or a mark costs no
// fsync on the shard thread.
#ifndef PIMAP_STORE_STATE_SQLITE_STATE_STORE_H_
#define PIMAP_STORE_STATE_SQLITE_STATE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/session/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace pimap::store {

class SqliteStateStore final : public session::StateStore {
 public:
  // The schema version this build writes (PRAGMA user_version). Open migrates
  // older files up to it and refuses newer ones (a downgrade must not misread
  // state).
  static constexpr int kSchemaVersion = 3;

  // Opens (creating the directory and file if needed)
  // <dir>/shard-<shard>.sqlite3. Directories it creates are 0700, the database
  // and its -wal/-shm files 0600 whatever the umask (wider ones are narrowed):
  // they hold every device's session. Errors name the path and the cause and
  // never crash: a directory that cannot be created or a path that cannot be
  // opened is FailedPrecondition (PermissionDenied for a write-protected file),
  // a file that is not a database is DataLoss, a newer schema is
  // FailedPrecondition, a file system without WAL support is
  // FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(
      const std::string& dir, int shard);
  // The file Open(dir, shard) uses.
  static std::string PathFor(const std::string& dir, int shard);

  // Commits a batch left open (its writes are individually valid checkpoints)
  // and closes the database.
  ~SqliteStateStore() override;
  SqliteStateStore(const SqliteStateStore&) = delete;
  SqliteStateStore& operator=(const SqliteStateStore&) = delete;

  const std::string& path() const { return path_; }

  absl::Status PutDevice(const session::DeviceRecord& record) override;
  absl::StatusOr<std::optional<session::DeviceRecord>> GetDevice(
      absl::string_view user, absl::string_view device) override;
  absl::StatusOr<std::vector<session::DeviceRecord>> ListDevices(
      absl::string_view user) override;
  absl::Status DeleteDevice(absl::string_view user,
                            absl::string_view device) override;
  absl::Status PutCheckpoint(
      absl::string_view user, absl::string_view device,
      const session::FolderCheckpoint& checkpoint) override;
  absl::StatusOr<std::optional<session::FolderCheckpoint>> GetCheckpoint(
      absl::string_view user, absl::string_view device,
      absl::string_view folder) override;
  absl::StatusOr<std::vector<session::FolderCheckpoint>> ListCheckpoints(
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
  // The outermost BeginBatch opens a transaction, the matching CommitBatch
  // commits it. If COMMIT fails the transaction is rolled back (the connection
  // must not stay inside a transaction) and the error is returned.
  absl::Status BeginBatch() override;
  absl::Status CommitBatch() override;

 private:
  // Prepared once at Open and reused for the life of the connection.
  enum Stmt : int {
    kPutDevice,
    kGetDevice,
    kListDevices,
    kDeleteDevice,
    kPutCheckpoint,
    kGetCheckpoint,
    kListCheckpoints,
    kMarkCheckpointDirty,
    kExpire,
    kAppendFolderEvent,
    kTrimFolderEvents,
    kListFolderEvents,
    kBegin,
    kCommit,
    kRollback,
    kStmtCount,
  };

  SqliteStateStore(std::string path, sqlite3* db);
  absl::Status Configure();
  absl::Status Migrate();
  absl::Status PrepareAll();
  absl::Status Exec(const char* sql, const char* what);
  absl::Status RunSimple(Stmt stmt, const char* what);
  absl::Status Error(int rc, absl::string_view what) const;
  // Deletes the device's folder events but the newest `keep`.
  absl::Status TrimFolderEvents(absl::string_view user,
                                absl::string_view device, size_t keep);

  std::string path_;
  sqlite3* db_;
  sqlite3_stmt* stmts_[kStmtCount] = {};
  int batch_depth_ = 0;
};

}  // namespace pimap::store

#endif  // PIMAP_STORE_STATE_SQLITE_STATE_STORE_H_
