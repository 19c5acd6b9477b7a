// The dirty mark of a checkpoint (StateStore::MarkCheckpointDirty, issue 14
// "crash consistency"): its contract on every backend, that it survives a
// reopen of the SQLite file, and the schema 2 -> 3 migration that adds it.
#include <sqlite3.h>

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "core/session/memory_state_store.h"
#include "core/session/state_store.h"
#include "gtest/gtest.h"
#include "store/state/sqlite_state_store.h"
#include "tests/testing/temp_dir.h"

namespace pimap {
namespace {

using session::DeviceRecord;
using session::FolderCheckpoint;
using session::StateStore;
using store::SqliteStateStore;
using testing::TempDir;

DeviceRecord Phone() {
  DeviceRecord r;
  r.user = "alice";
  r.device = "phone";
  r.session_id = "42";
  r.selected_folder = "INBOX";
  r.last_activity_unix = 1000;
  return r;
}

FolderCheckpoint Inbox() {
  FolderCheckpoint c;
  c.folder = "INBOX";
  c.uidvalidity = 1700000000;
  c.acked_modseq = 99;
  c.view = "1:5,7";
  return c;
}

std::optional<FolderCheckpoint> Get(StateStore& store,
                                    const std::string& folder = "INBOX") {
  auto got = store.GetCheckpoint("alice", "phone", folder);
  EXPECT_TRUE(got.ok()) << got.status();
  return got.ok() ? *got : std::nullopt;
}

struct Backend {
  std::string name;
  std::function<std::unique_ptr<StateStore>(const std::string& dir)> open;
};
void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

class CheckpointDirtyTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    store_ = GetParam().open(dir_.path());
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->PutDevice(Phone()).ok());
  }

  TempDir dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_P(CheckpointDirtyTest, MarkSetsOnlyTheMarkAndPutClearsIt) {
  ASSERT_TRUE(store_->PutCheckpoint("alice", "phone", Inbox()).ok());
  EXPECT_FALSE(Get(*store_)->dirty);

  ASSERT_TRUE(store_->MarkCheckpointDirty("alice", "phone", "INBOX").ok());
  FolderCheckpoint dirty = Inbox();
  dirty.dirty = true;
  EXPECT_EQ(Get(*store_), dirty);
  // Marking twice is marking once.
  ASSERT_TRUE(store_->MarkCheckpointDirty("alice", "phone", "INBOX").ok());
  EXPECT_EQ(Get(*store_), dirty);
  auto listed = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].dirty);

  // A clean checkpoint of a new view replaces it (the dirty period ends).
  FolderCheckpoint clean = Inbox();
  clean.view = "1:9";
  clean.acked_modseq = 120;
  ASSERT_TRUE(store_->PutCheckpoint("alice", "phone", clean).ok());
  EXPECT_EQ(Get(*store_), clean);
  // And a dirty one can be put whole.
  ASSERT_TRUE(store_->PutCheckpoint("alice", "phone", dirty).ok());
  EXPECT_EQ(Get(*store_), dirty);
}

TEST_P(CheckpointDirtyTest, MarkWithoutACheckpointLeavesADirtyOneWithNoView) {
  ASSERT_TRUE(store_->MarkCheckpointDirty("alice", "phone", "Work").ok());
  FolderCheckpoint expected;
  expected.folder = "Work";
  expected.dirty = true;
  EXPECT_EQ(Get(*store_, "Work"), expected);
}

TEST_P(CheckpointDirtyTest, MarkIsPerFolderAndBelongsToTheDevice) {
  ASSERT_TRUE(store_->PutCheckpoint("alice", "phone", Inbox()).ok());
  FolderCheckpoint work = Inbox();
  work.folder = "Work";
  ASSERT_TRUE(store_->PutCheckpoint("alice", "phone", work).ok());
  ASSERT_TRUE(store_->MarkCheckpointDirty("alice", "phone", "Work").ok());
  EXPECT_FALSE(Get(*store_)->dirty);
  EXPECT_TRUE(Get(*store_, "Work")->dirty);

  EXPECT_EQ(store_->MarkCheckpointDirty("alice", "tablet", "INBOX").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->MarkCheckpointDirty("", "phone", "INBOX").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->MarkCheckpointDirty("alice", "phone", "").code(),
            absl::StatusCode::kInvalidArgument);
  // LOGOUT (DeleteDevice) takes the mark with the checkpoint.
  ASSERT_TRUE(store_->DeleteDevice("alice", "phone").ok());
  ASSERT_TRUE(store_->PutDevice(Phone()).ok());
  EXPECT_EQ(Get(*store_, "Work"), std::nullopt);
}

std::unique_ptr<StateStore> OpenMemory(const std::string&) {
  return std::make_unique<session::MemoryStateStore>();
}

std::unique_ptr<StateStore> OpenSqlite(const std::string& dir) {
  auto store = SqliteStateStore::Open(dir, 0);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  return *std::move(store);
}

INSTANTIATE_TEST_SUITE_P(Backends, CheckpointDirtyTest,
                         ::testing::Values(Backend{"Memory", OpenMemory},
                                           Backend{"Sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

// The mark is on disk when the call returns: a second connection (another
// process after a SIGKILL) sees it while the first is still open.
TEST(SqliteCheckpointDirtyTest, MarkIsCommittedWhenTheCallReturns) {
  TempDir dir;
  auto first = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->PutDevice(Phone()).ok());
  ASSERT_TRUE((*first)->PutCheckpoint("alice", "phone", Inbox()).ok());
  ASSERT_TRUE((*first)->MarkCheckpointDirty("alice", "phone", "INBOX").ok());
  auto second = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(Get(**second)->dirty);
}

void ExecRaw(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
}

int64_t UserVersion(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) ==
          SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return value;
}

// A state file written by the build before the mark (schema version 2) opens
// with its state intact; its checkpoints are clean, and can be marked.
TEST(SqliteCheckpointDirtyTest, MigratesAVersion2FileWithoutLosingState) {
  TempDir dir;
  const std::string path = SqliteStateStore::PathFor(dir.path(), 0);
  ExecRaw(path, R"sql(
PRAGMA journal_mode = WAL;
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
CREATE TABLE folder_events (
  user   TEXT    NOT NULL,
  device TEXT    NOT NULL,
  seq    INTEGER NOT NULL,
  line   BLOB    NOT NULL,
  PRIMARY KEY (user, device, seq),
  FOREIGN KEY (user, device) REFERENCES devices (user, device) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO devices VALUES ('alice', 'phone', '42', 'f', 'p', 'INBOX', 0, 1234);
INSERT INTO checkpoints VALUES ('alice', 'phone', 'INBOX', 77, 99, '1:5');
INSERT INTO folder_events VALUES ('alice', 'phone', 1, '* LIST () "/" Work');
PRAGMA user_version = 2;
)sql");
  ASSERT_EQ(UserVersion(path), 2);

  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(UserVersion(path), SqliteStateStore::kSchemaVersion);
  FolderCheckpoint expected;
  expected.folder = "INBOX";
  expected.uidvalidity = 77;
  expected.acked_modseq = 99;
  expected.view = "1:5";
  EXPECT_EQ(Get(**store), expected);
  auto events = (*store)->ListFolderEvents("alice", "phone");
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(*events, std::vector<std::string>{"* LIST () \"/\" Work"});

  ASSERT_TRUE((*store)->MarkCheckpointDirty("alice", "phone", "INBOX").ok());
  store->reset();
  auto reopened = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  expected.dirty = true;
  EXPECT_EQ(Get(**reopened), expected);
}

}  // namespace
}  // namespace pimap
