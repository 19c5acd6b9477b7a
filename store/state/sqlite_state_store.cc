// SQLite backend of StateStore for one shard; see sqlite_state_store.h for the
// durability trade-off.
#include "store/state/sqlite_state_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::store {
namespace {

using session::DeviceRecord;
using session::FolderCheckpoint;

// A shard thread is an event loop: waiting long on a lock held by someone else
// (an operator's sqlite3 shell, a second pimapd wrongly pointed at the same
// state-dir) would stall every connection of the shard. Fail fast instead.
constexpr int kBusyTimeoutMs = 50;

// Migration i brings the schema from version i to i + 1; each runs in the same
// transaction as the user_version bump, so a crash mid-migration leaves the old
// version intact. Never edit a shipped step: append a new one.
//
// Keys are TEXT compared bytewise (BINARY); opaque blobs are BLOBs so their
// bytes come back unchanged. Tables are WITHOUT ROWID: every lookup is by
// primary key, and checkpoints' (user, device, folder) key doubles as the index
// the cascade needs.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE devices (
  user            TEXT    NOT NULL,
  device          TEXT    NOT NULL,
  session_id      TEXT    NOT NULL,
  filters         BLOB    NOT NULL,
  prefs           BLOB    NOT NULL,
  selected_folder TEXT    NOT NULL,
  read_only       INTEGER NOT NULL,
  last_activity   INTEGER NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
CREATE INDEX devices_by_last_activity ON devices (last_activity);
CREATE TABLE checkpoints (
  user         TEXT    NOT NULL,
  device       TEXT    NOT NULL,
  folder       TEXT    NOT NULL,
  uidvalidity  INTEGER NOT NULL,
  acked_modseq INTEGER NOT NULL,
  view         BLOB    NOT NULL,
  PRIMARY KEY (user, device, folder),
  FOREIGN KEY (user, device) REFERENCES devices (user, device) ON DELETE CASCADE
) WITHOUT ROWID;
)sql",
    // 1 -> 2: folder events kept for absent devices. IF NOT EXISTS: adding the
    // table is all this step does, so it never touches existing state.
    R"sql(
CREATE TABLE IF NOT EXISTS folder_events (
  user   TEXT    NOT NULL,
  device TEXT    NOT NULL,
  seq    INTEGER NOT NULL,
  line   BLOB    NOT NULL,
  PRIMARY KEY (user, device, seq),
  FOREIGN KEY (user, device) REFERENCES devices (user, device) ON DELETE CASCADE
) WITHOUT ROWID;
)sql",
    // 2 -> 3: the dirty mark of a checkpoint (state_store.h). Checkpoints of
    // an older file were written when there was none: they keep 0, the
    // behaviour they were written under.
    R"sql(
ALTER TABLE checkpoints ADD COLUMN dirty INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(std::size(kMigrations) == SqliteStateStore::kSchemaVersion,
              "one migration per schema version");

// Upserts rather than INSERT OR REPLACE: REPLACE deletes the old row first,
// which would cascade to (and lose) the device's checkpoints.
constexpr const char* kSql[] = {
    /* kPutDevice */
    "INSERT INTO devices (user, device, session_id, filters, prefs,"
    " selected_folder, read_only, last_activity)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (user, device) DO UPDATE SET"
    " session_id = excluded.session_id, filters = excluded.filters,"
    " prefs = excluded.prefs, selected_folder = excluded.selected_folder,"
    " read_only = excluded.read_only, last_activity = excluded.last_activity",
    /* kGetDevice */
    "SELECT device, session_id, filters, prefs, selected_folder, read_only,"
    " last_activity FROM devices WHERE user = ?1 AND device = ?2",
    /* kListDevices */
    "SELECT device, session_id, filters, prefs, selected_folder, read_only,"
    " last_activity FROM devices WHERE user = ?1 ORDER BY device",
    /* kDeleteDevice */
    "DELETE FROM devices WHERE user = ?1 AND device = ?2",
    /* kPutCheckpoint */
    "INSERT INTO checkpoints (user, device, folder, uidvalidity, acked_modseq,"
    " view, dirty) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (user, device, folder)"
    " DO UPDATE SET uidvalidity = excluded.uidvalidity,"
    " acked_modseq = excluded.acked_modseq, view = excluded.view,"
    " dirty = excluded.dirty",
    /* kGetCheckpoint */
    "SELECT folder, uidvalidity, acked_modseq, view, dirty FROM checkpoints"
    " WHERE user = ?1 AND device = ?2 AND folder = ?3",
    /* kListCheckpoints */
    "SELECT folder, uidvalidity, acked_modseq, view, dirty FROM checkpoints"
    " WHERE user = ?1 AND device = ?2 ORDER BY folder",
    // Only the mark: the view may be large, and this runs before a write to
    // the device.
    /* kMarkCheckpointDirty */
    "INSERT INTO checkpoints (user, device, folder, uidvalidity, acked_modseq,"
    " view, dirty) VALUES (?1, ?2, ?3, 0, 0, X'', 1)"
    " ON CONFLICT (user, device, folder) DO UPDATE SET dirty = 1",
    /* kExpire */
    "DELETE FROM devices WHERE last_activity < ?1",
    // seq grows per device; an aggregate without GROUP BY always yields one
    // row, so the first event gets 1.
    /* kAppendFolderEvent */
    "INSERT INTO folder_events (user, device, seq, line)"
    " SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3 FROM folder_events"
    " WHERE user = ?1 AND device = ?2",
    // Everything up to the newest event past the ?3 newest ones (none when
    // there are not more than ?3: the subquery is then NULL).
    /* kTrimFolderEvents */
    "DELETE FROM folder_events WHERE user = ?1 AND device = ?2 AND seq <="
    " (SELECT seq FROM folder_events WHERE user = ?1 AND device = ?2"
    " ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
    /* kListFolderEvents */
    "SELECT line FROM folder_events WHERE user = ?1 AND device = ?2"
    " ORDER BY seq",
    // IMMEDIATE takes the write lock up front, so a batch cannot fail half-way
    // on a lock upgrade.
    /* kBegin */ "BEGIN IMMEDIATE",
    /* kCommit */ "COMMIT",
    /* kRollback */ "ROLLBACK",
};

// Resets a cached statement when the call using it returns, and drops its
// bindings (they point at the caller's strings, bound SQLITE_STATIC).
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtScope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Binds parameters ?1, ?2, ... in order and keeps the first error.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Binder& Text(absl::string_view v) {
    // A null data pointer would bind SQL NULL, not "".
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(stmt_, next_, v.data() ? v.data() : "",
                                v.size(), SQLITE_STATIC, SQLITE_UTF8);
    }
    ++next_;
    return *this;
  }
  Binder& Blob(absl::string_view v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_blob64(stmt_, next_, v.data() ? v.data() : "",
                                v.size(), SQLITE_STATIC);
    }
    ++next_;
    return *this;
  }
  Binder& Int(int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, next_, v);
    ++next_;
    return *this;
  }
  int rc() const { return rc_; }

 private:
  sqlite3_stmt* stmt_;
  int next_ = 1;
  int rc_ = SQLITE_OK;
};

std::string ColumnString(sqlite3_stmt* stmt, int column) {
  // column_blob on a TEXT value returns its bytes unconverted; the length comes
  // from column_bytes, so embedded NULs survive.
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

// Columns as selected by kGetDevice / kListDevices.
DeviceRecord ReadDevice(sqlite3_stmt* stmt, absl::string_view user) {
  DeviceRecord r;
  r.user = std::string(user);
  r.device = ColumnString(stmt, 0);
  r.session_id = ColumnString(stmt, 1);
  r.filters = ColumnString(stmt, 2);
  r.prefs = ColumnString(stmt, 3);
  r.selected_folder = ColumnString(stmt, 4);
  r.read_only = sqlite3_column_int64(stmt, 5) != 0;
  r.last_activity_unix = sqlite3_column_int64(stmt, 6);
  return r;
}

// Columns as selected by kGetCheckpoint / kListCheckpoints.
FolderCheckpoint ReadCheckpoint(sqlite3_stmt* stmt) {
  FolderCheckpoint c;
  c.folder = ColumnString(stmt, 0);
  c.uidvalidity = static_cast<uint32_t>(sqlite3_column_int64(stmt, 1));
  // SQLite integers are signed 64-bit; the MODSEQ is stored as its
  // two's-complement bit pattern so that every uint64_t round-trips.
  c.acked_modseq = static_cast<uint64_t>(sqlite3_column_int64(stmt, 2));
  c.view = ColumnString(stmt, 3);
  c.dirty = sqlite3_column_int64(stmt, 4) != 0;
  return c;
}

absl::Status CheckKey(absl::string_view user, absl::string_view device) {
  if (user.empty() || device.empty()) {
    return absl::InvalidArgumentError("state store: empty user or device id");
  }
  return absl::OkStatus();
}

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:  // a path problem: configuration, not a transient
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CONSTRAINT:
      return rc == SQLITE_CONSTRAINT_FOREIGNKEY
                 ? absl::StatusCode::kNotFound
                 : absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

// The state holds every device's registration and session: only pimapd's user
// may read it, whatever the umask. Directories this creates are 0700 (one that
// exists keeps its mode: the operator chose it).
absl::Status MakePrivateDirectories(const std::string& dir) {
  std::filesystem::path partial;
  for (const std::filesystem::path& part : std::filesystem::path(dir)) {
    partial /= part;
    if (mkdir(partial.c_str(), 0700) == 0) {
      // mkdir's mode is masked by the umask: set it as meant (only widened
      // bits could be missing, but a umask like 0077 leaves 0700 anyway).
      chmod(partial.c_str(), 0700);
      continue;
    }
    if (errno == EEXIST) continue;
    const int err = errno;
    return absl::Status(err == EACCES || err == EPERM
                            ? absl::StatusCode::kPermissionDenied
                            : absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("state store: cannot create directory ",
                                     partial.string(), ": ", strerror(err)));
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store: ", dir, " is not a directory"));
  }
  return absl::OkStatus();
}

// The database file is created 0600 before SQLite opens it: SQLite gives its
// -wal and -shm files the mode of the database file, and would otherwise
// create all three 0644 minus the umask. Files an older pimapd left with
// wider modes are narrowed.
absl::Status MakePrivateFiles(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    // Not fatal here: sqlite3_open_v2 reports the cause (a read-only file
    // is PermissionDenied there, with the path).
    return absl::OkStatus();
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) fchmod(fd, 0600);
  close(fd);
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    const std::string side = path + suffix;
    if (stat(side.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      chmod(side.c_str(), 0600);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string SqliteStateStore::PathFor(const std::string& dir, int shard) {
  return (std::filesystem::path(dir) /
          absl::StrCat("shard-", shard, ".sqlite3"))
      .string();
}

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(
    const std::string& dir, int shard) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("state store: empty state directory");
  }
  if (shard < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("state store: negative shard index ", shard));
  }
  if (absl::Status s = MakePrivateDirectories(dir); !s.ok()) return s;
  std::string path = PathFor(dir, shard);
  if (absl::Status s = MakePrivateFiles(path); !s.ok()) return s;
  sqlite3* db = nullptr;
  // NOMUTEX: the instance lives on one shard thread, so SQLite's per-connection
  // mutex would be pure overhead.
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status(
        CodeFor(rc),
        absl::StrCat("state store ", path,
                     ": open: ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close_v2(db);  // a handle is usually returned even on failure
    return status;
  }
  // From here the destructor owns `db` (and closes it on every error path).
  std::unique_ptr<SqliteStateStore> store(
      new SqliteStateStore(std::move(path), db));
  if (absl::Status s = store->Configure(); !s.ok()) return s;
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  if (absl::Status s = store->PrepareAll(); !s.ok()) return s;
  return store;
}

SqliteStateStore::SqliteStateStore(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db) {}

SqliteStateStore::~SqliteStateStore() {
  if (batch_depth_ > 0 && stmts_[kCommit] != nullptr &&
      sqlite3_get_autocommit(db_) == 0) {
    sqlite3_step(stmts_[kCommit]);
    sqlite3_reset(stmts_[kCommit]);
  }
  for (sqlite3_stmt* stmt : stmts_) sqlite3_finalize(stmt);  // null is a no-op
  // The last connection to close checkpoints the WAL into the main file.
  sqlite3_close_v2(db_);
}

absl::Status SqliteStateStore::Error(int rc, absl::string_view what) const {
  return absl::Status(CodeFor(rc),
                      absl::StrCat("state store ", path_, ": ", what, ": ",
                                   sqlite3_errmsg(db_)));
}

absl::Status SqliteStateStore::Exec(const char* sql, const char* what) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, what);
}

absl::Status SqliteStateStore::Configure() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // SQLite opens a write-protected file read-only without complaint; every
  // write would then fail later, far from the cause.
  if (sqlite3_db_readonly(db_, "main") == 1) {
    return absl::PermissionDeniedError(
        absl::StrCat("state store ", path_, ": file is not writable"));
  }
  // journal_mode answers with the mode in force; a file system without shared
  // memory support (some network mounts) silently keeps the rollback journal.
  // This is also the first statement that reads the file, so a file that is not
  // a database fails here (DataLoss).
  sqlite3_stmt* stmt = nullptr;
  int rc =
      sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "PRAGMA journal_mode");
  rc = sqlite3_step(stmt);
  std::string mode;
  if (rc == SQLITE_ROW) mode = ColumnString(stmt, 0);
  absl::Status status =
      rc == SQLITE_ROW ? absl::OkStatus() : Error(rc, "PRAGMA journal_mode");
  sqlite3_finalize(stmt);
  if (!status.ok()) return status;
  if (mode != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "state store ", path_, ": WAL journal mode unavailable (got '", mode,
        "'); put --state-dir on a local file system"));
  }
  // NORMAL: see the durability note in the header. foreign_keys is per
  // connection and carries the DeleteDevice/ExpireBefore cascade.
  // journal_size_limit truncates the WAL back after a large burst instead of
  // keeping its high-water size.
  return Exec(
      "PRAGMA synchronous = NORMAL;"
      "PRAGMA foreign_keys = ON;"
      "PRAGMA journal_size_limit = 4194304;",
      "configure");
}

absl::Status SqliteStateStore::Migrate() {
  // IMMEDIATE before reading the version: two processes opening one new file
  // must not both run migration 0.
  if (absl::Status s = Exec("BEGIN IMMEDIATE", "begin migration"); !s.ok()) {
    return s;
  }
  auto fail = [this](absl::Status status) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  };
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return fail(Error(rc, "PRAGMA user_version"));
  rc = sqlite3_step(stmt);
  const int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  absl::Status status =
      rc == SQLITE_ROW ? absl::OkStatus() : Error(rc, "PRAGMA user_version");
  sqlite3_finalize(stmt);
  if (!status.ok()) return fail(status);
  if (version > kSchemaVersion || version < 0) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("state store ", path_, ": schema version ", version,
                     " is not one this build understands (it writes ",
                     kSchemaVersion, "); was it written by a newer pimapd?")));
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    if (absl::Status s = Exec(kMigrations[v], "migrate schema"); !s.ok()) {
      return fail(s);
    }
  }
  if (version != kSchemaVersion) {
    const std::string bump =
        absl::StrCat("PRAGMA user_version = ", kSchemaVersion);
    if (absl::Status s = Exec(bump.c_str(), "set schema version"); !s.ok()) {
      return fail(s);
    }
  }
  if (absl::Status s = Exec("COMMIT", "commit migration"); !s.ok()) {
    return fail(s);
  }
  return absl::OkStatus();
}

absl::Status SqliteStateStore::PrepareAll() {
  static_assert(std::size(kSql) == kStmtCount, "one SQL text per Stmt");
  for (int i = 0; i < kStmtCount; ++i) {
    // PERSISTENT: these live as long as the connection.
    const int rc = sqlite3_prepare_v3(
        db_, kSql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts_[i], nullptr);
    if (rc != SQLITE_OK) return Error(rc, "prepare");
  }
  return absl::OkStatus();
}

absl::Status SqliteStateStore::RunSimple(Stmt stmt, const char* what) {
  StmtScope scope(stmts_[stmt]);
  const int rc = sqlite3_step(stmts_[stmt]);
  return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, what);
}

absl::Status SqliteStateStore::PutDevice(const DeviceRecord& r) {
  if (absl::Status s = CheckKey(r.user, r.device); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kPutDevice];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(r.user)
      .Text(r.device)
      .Text(r.session_id)
      .Blob(r.filters)
      .Blob(r.prefs)
      .Text(r.selected_folder)
      .Int(r.read_only ? 1 : 0)
      .Int(r.last_activity_unix);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "PutDevice bind");
  const int rc = sqlite3_step(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "PutDevice");
}

absl::StatusOr<std::optional<DeviceRecord>> SqliteStateStore::GetDevice(
    absl::string_view user, absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kGetDevice];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "GetDevice bind");
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    return std::optional<DeviceRecord>(ReadDevice(stmt, user));
  if (rc == SQLITE_DONE) return std::optional<DeviceRecord>();
  return Error(rc, "GetDevice");
}

absl::StatusOr<std::vector<DeviceRecord>> SqliteStateStore::ListDevices(
    absl::string_view user) {
  if (user.empty()) {
    return absl::InvalidArgumentError("state store: empty user");
  }
  sqlite3_stmt* stmt = stmts_[kListDevices];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "ListDevices bind");
  std::vector<DeviceRecord> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back(ReadDevice(stmt, user));
  }
  if (rc != SQLITE_DONE) return Error(rc, "ListDevices");
  return out;
}

absl::Status SqliteStateStore::DeleteDevice(absl::string_view user,
                                            absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kDeleteDevice];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "DeleteDevice bind");
  // The checkpoints go with it through ON DELETE CASCADE, in the same
  // statement.
  const int rc = sqlite3_step(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "DeleteDevice");
}

absl::Status SqliteStateStore::PutCheckpoint(absl::string_view user,
                                             absl::string_view device,
                                             const FolderCheckpoint& c) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  if (c.folder.empty()) {
    return absl::InvalidArgumentError("state store: empty checkpoint folder");
  }
  sqlite3_stmt* stmt = stmts_[kPutCheckpoint];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user)
      .Text(device)
      .Text(c.folder)
      .Int(static_cast<int64_t>(c.uidvalidity))
      .Int(static_cast<int64_t>(
          c.acked_modseq))  // bit pattern; see ReadCheckpoint
      .Blob(c.view)
      .Int(c.dirty ? 1 : 0);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "PutCheckpoint bind");
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return absl::OkStatus();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return absl::NotFoundError(
        "state store: checkpoint for unregistered device");
  }
  return Error(rc, "PutCheckpoint");
}

absl::StatusOr<std::optional<FolderCheckpoint>> SqliteStateStore::GetCheckpoint(
    absl::string_view user, absl::string_view device,
    absl::string_view folder) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kGetCheckpoint];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device).Text(folder);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "GetCheckpoint bind");
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    return std::optional<FolderCheckpoint>(ReadCheckpoint(stmt));
  }
  if (rc == SQLITE_DONE) return std::optional<FolderCheckpoint>();
  return Error(rc, "GetCheckpoint");
}

absl::StatusOr<std::vector<FolderCheckpoint>> SqliteStateStore::ListCheckpoints(
    absl::string_view user, absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kListCheckpoints];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "ListCheckpoints bind");
  std::vector<FolderCheckpoint> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back(ReadCheckpoint(stmt));
  }
  if (rc != SQLITE_DONE) return Error(rc, "ListCheckpoints");
  return out;
}

absl::Status SqliteStateStore::MarkCheckpointDirty(absl::string_view user,
                                                   absl::string_view device,
                                                   absl::string_view folder) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  if (folder.empty()) {
    return absl::InvalidArgumentError("state store: empty checkpoint folder");
  }
  sqlite3_stmt* stmt = stmts_[kMarkCheckpointDirty];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device).Text(folder);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "MarkCheckpointDirty bind");
  // Outside a batch this statement is its own transaction: committed (in the
  // WAL, see the header) when it returns.
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return absl::OkStatus();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return absl::NotFoundError(
        "state store: checkpoint for unregistered device");
  }
  return Error(rc, "MarkCheckpointDirty");
}

absl::StatusOr<int> SqliteStateStore::ExpireBefore(int64_t cutoff_unix) {
  sqlite3_stmt* stmt = stmts_[kExpire];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Int(cutoff_unix);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "ExpireBefore bind");
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return Error(rc, "ExpireBefore");
  // sqlite3_changes counts the devices rows only, not the cascaded checkpoints
  // and folder events.
  return sqlite3_changes(db_);
}

absl::Status SqliteStateStore::TrimFolderEvents(absl::string_view user,
                                                absl::string_view device,
                                                size_t keep) {
  sqlite3_stmt* stmt = stmts_[kTrimFolderEvents];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device).Int(static_cast<int64_t>(
      std::min<size_t>(keep, std::numeric_limits<int64_t>::max())));
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "TrimFolderEvents bind");
  const int rc = sqlite3_step(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "TrimFolderEvents");
}

absl::Status SqliteStateStore::AppendFolderEvent(absl::string_view user,
                                                 absl::string_view device,
                                                 absl::string_view line,
                                                 size_t max_kept) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  // The insert and the trim together: the bound holds after a crash too.
  if (absl::Status s = BeginBatch(); !s.ok()) return s;
  absl::Status status;
  {
    sqlite3_stmt* stmt = stmts_[kAppendFolderEvent];
    StmtScope scope(stmt);
    Binder b(stmt);
    b.Text(user).Text(device).Blob(line);
    const int rc = b.rc() != SQLITE_OK ? b.rc() : sqlite3_step(stmt);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
      status = absl::NotFoundError(
          "state store: folder event for unregistered device");
    } else if (rc != SQLITE_DONE) {
      status = Error(rc, "AppendFolderEvent");
    }
  }
  if (status.ok()) status = TrimFolderEvents(user, device, max_kept);
  absl::Status commit = CommitBatch();
  return status.ok() ? commit : status;
}

absl::Status SqliteStateStore::AckFolderEvents(absl::string_view user,
                                               absl::string_view device,
                                               size_t remaining) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  return TrimFolderEvents(user, device, remaining);
}

absl::StatusOr<std::vector<std::string>> SqliteStateStore::ListFolderEvents(
    absl::string_view user, absl::string_view device) {
  if (absl::Status s = CheckKey(user, device); !s.ok()) return s;
  sqlite3_stmt* stmt = stmts_[kListFolderEvents];
  StmtScope scope(stmt);
  Binder b(stmt);
  b.Text(user).Text(device);
  if (b.rc() != SQLITE_OK) return Error(b.rc(), "ListFolderEvents bind");
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back(ColumnString(stmt, 0));
  }
  if (rc != SQLITE_DONE) return Error(rc, "ListFolderEvents");
  return out;
}

absl::Status SqliteStateStore::BeginBatch() {
  if (batch_depth_ == 0) {
    if (absl::Status s = RunSimple(kBegin, "BeginBatch"); !s.ok()) return s;
  }
  ++batch_depth_;
  return absl::OkStatus();
}

absl::Status SqliteStateStore::CommitBatch() {
  if (batch_depth_ == 0) {
    return absl::FailedPreconditionError(
        "state store: CommitBatch without BeginBatch");
  }
  if (--batch_depth_ > 0) return absl::OkStatus();
  // SQLite rolls the whole transaction back by itself after some errors (disk
  // full, I/O error); the writes since BeginBatch are then gone.
  if (sqlite3_get_autocommit(db_) != 0) {
    return absl::AbortedError(
        absl::StrCat("state store ", path_,
                     ": batch was rolled back after an earlier write error"));
  }
  absl::Status status = RunSimple(kCommit, "CommitBatch");
  if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
    // Never leave the connection inside a transaction: every later write would
    // silently join it.
    RunSimple(kRollback, "rollback").IgnoreError();
  }
  return status;
}

}  // namespace pimap::store
