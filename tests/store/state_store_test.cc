// Tests for the StateStore contract (core/session/state_store.h): one
// parameterised suite run against every implementation, then SQLite-only tests
// of what only a durable backend can do (reopen, schema version, bad files,
// batch throughput).
#include "core/session/state_store.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/session/memory_state_store.h"
#include "gtest/gtest.h"
#include "store/state/sqlite_state_store.h"
#include "tests/testing/temp_dir.h"

namespace pimap {
namespace {

using session::DeviceRecord;
using session::FolderCheckpoint;
using session::MemoryStateStore;
using session::StateStore;
using store::SqliteStateStore;

using pimap::testing::TempDir;

DeviceRecord MakeDevice(const std::string& user, const std::string& device,
                        int64_t last_activity = 1000) {
  DeviceRecord r;
  r.user = user;
  r.device = device;
  r.session_id = "123456789";
  r.filters = "filters-of-" + device;
  r.prefs = "prefs-of-" + device;
  r.selected_folder = "INBOX";
  r.read_only = false;
  r.last_activity_unix = last_activity;
  return r;
}

FolderCheckpoint MakeCheckpoint(const std::string& folder,
                                uint64_t modseq = 7) {
  FolderCheckpoint c;
  c.folder = folder;
  c.uidvalidity = 1700000000;
  c.acked_modseq = modseq;
  c.view = "1:5,7";
  return c;
}

// ---------------------------------------------------------------------------
// The shared contract, once per implementation.

struct Backend {
  std::string name;
  std::function<std::unique_ptr<StateStore>(const std::string& dir)> open;
};

// Keeps test names readable: gtest would otherwise print the parameter's bytes.
void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

class StateStoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    store_ = GetParam().open(dir_.path());
    ASSERT_NE(store_, nullptr);
  }

  TempDir dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_P(StateStoreContractTest, PutThenGetDeviceRoundTripsEveryField) {
  DeviceRecord r = MakeDevice("alice@example.org", "phone-1");
  r.filters =
      std::string("opaque\0bytes\xff", 13);  // NUL and non-UTF-8 survive
  r.selected_folder = "Archive/2024";
  r.read_only = true;
  r.last_activity_unix = 1'700'000'123;
  ASSERT_TRUE(store_->PutDevice(r).ok());

  auto got = store_->GetDevice("alice@example.org", "phone-1");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, r);
}

TEST_P(StateStoreContractTest, EmptyOptionalFieldsRoundTrip) {
  DeviceRecord r;
  r.user = "u";
  r.device = "d";
  ASSERT_TRUE(store_->PutDevice(r).ok());
  auto got = store_->GetDevice("u", "d");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, r);
}

TEST_P(StateStoreContractTest, MissingDeviceIsNullopt) {
  auto got = store_->GetDevice("nobody", "none");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->has_value());
}

TEST_P(StateStoreContractTest, PutDeviceReplacesInPlaceAndKeepsCheckpoints) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("INBOX")).ok());

  DeviceRecord updated = MakeDevice("alice", "phone", 2000);
  updated.session_id = "42";
  updated.selected_folder = "";
  updated.prefs = "new prefs";
  ASSERT_TRUE(store_->PutDevice(updated).ok());

  auto got = store_->GetDevice("alice", "phone");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, updated);
  auto devices = store_->ListDevices("alice");
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(devices->size(), 1u);
  auto cp = store_->GetCheckpoint("alice", "phone", "INBOX");
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_EQ(**cp, MakeCheckpoint("INBOX"));
}

TEST_P(StateStoreContractTest, ListDevicesIsPerUserAndOrderedByDevice) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "tablet")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "laptop")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice2", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alic", "phone")).ok());

  auto devices = store_->ListDevices("alice");
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(devices->size(), 3u);
  EXPECT_EQ((*devices)[0], MakeDevice("alice", "laptop"));
  EXPECT_EQ((*devices)[1], MakeDevice("alice", "phone"));
  EXPECT_EQ((*devices)[2], MakeDevice("alice", "tablet"));

  auto none = store_->ListDevices("bob");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(StateStoreContractTest, CheckpointCrudAndOrder) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("Sent")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("INBOX")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("Archive")).ok());

  // Replace one; extreme values must round-trip (MODSEQ is unsigned 64-bit).
  FolderCheckpoint inbox = MakeCheckpoint("INBOX");
  inbox.uidvalidity = std::numeric_limits<uint32_t>::max();
  inbox.acked_modseq = std::numeric_limits<uint64_t>::max();
  inbox.view = std::string("1:*\0x", 5);
  ASSERT_TRUE(store_->PutCheckpoint("alice", "phone", inbox).ok());

  auto got = store_->GetCheckpoint("alice", "phone", "INBOX");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, inbox);

  auto missing = store_->GetCheckpoint("alice", "phone", "Drafts");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto other_device = store_->GetCheckpoint("alice", "laptop", "INBOX");
  ASSERT_TRUE(other_device.ok());
  EXPECT_FALSE(other_device->has_value());

  auto list = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0], MakeCheckpoint("Archive"));
  EXPECT_EQ((*list)[1], inbox);
  EXPECT_EQ((*list)[2], MakeCheckpoint("Sent"));

  auto empty = store_->ListCheckpoints("bob", "phone");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_P(StateStoreContractTest, CheckpointForUnregisteredDeviceIsNotFound) {
  absl::Status s =
      store_->PutCheckpoint("alice", "ghost", MakeCheckpoint("INBOX"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  auto list = store_->ListCheckpoints("alice", "ghost");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_P(StateStoreContractTest, DeleteDeviceCascadesToItsCheckpointsOnly) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "laptop")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("INBOX")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("Sent")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "laptop", MakeCheckpoint("INBOX")).ok());

  ASSERT_TRUE(store_->DeleteDevice("alice", "phone").ok());

  auto gone = store_->GetDevice("alice", "phone");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto cps = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(cps.ok());
  EXPECT_TRUE(cps->empty());
  auto kept = store_->ListCheckpoints("alice", "laptop");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);

  // Re-registering the same device id starts clean: no stale checkpoints
  // return.
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  auto fresh = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->empty());

  // Deleting an unknown device is not an error (LOGOUT may race expiry).
  EXPECT_TRUE(store_->DeleteDevice("alice", "never-was").ok());
}

TEST_P(StateStoreContractTest, ExpireBeforeRemovesStrictlyOlderDevices) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "old", 100)).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("bob", "older", 50)).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "edge", 200)).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "new", 300)).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "old", MakeCheckpoint("INBOX")).ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "new", MakeCheckpoint("INBOX")).ok());

  auto removed = store_->ExpireBefore(200);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);  // "old" and "older"; "edge" is at the cutoff, kept

  auto alice = store_->ListDevices("alice");
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->size(), 2u);
  EXPECT_EQ((*alice)[0].device, "edge");
  EXPECT_EQ((*alice)[1].device, "new");
  auto bob = store_->ListDevices("bob");
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(bob->empty());

  // The expired device's checkpoints went with it; the live one's stayed.
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "old", 400)).ok());
  auto old_cps = store_->ListCheckpoints("alice", "old");
  ASSERT_TRUE(old_cps.ok());
  EXPECT_TRUE(old_cps->empty());
  auto new_cps = store_->ListCheckpoints("alice", "new");
  ASSERT_TRUE(new_cps.ok());
  EXPECT_EQ(new_cps->size(), 1u);

  auto none = store_->ExpireBefore(0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

TEST_P(StateStoreContractTest, BatchesNestAndWritesAreVisibleInside) {
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->BeginBatch().ok());  // flattened into the outer batch
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store_
                    ->PutCheckpoint("alice", "phone",
                                    MakeCheckpoint(absl::StrCat("F", i), i))
                    .ok());
  }
  ASSERT_TRUE(store_->CommitBatch().ok());
  // Reads inside the batch see its writes.
  auto inside = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(inside->size(), 20u);
  ASSERT_TRUE(store_->CommitBatch().ok());

  auto after = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 20u);

  absl::Status unmatched = store_->CommitBatch();
  EXPECT_EQ(unmatched.code(), absl::StatusCode::kFailedPrecondition)
      << unmatched;
  // The store is still usable, and a new batch can start.
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->DeleteDevice("alice", "phone").ok());
  ASSERT_TRUE(store_->CommitBatch().ok());
}

TEST_P(StateStoreContractTest, FailedWriteInsideBatchDoesNotUndoOthers) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("A")).ok());
  EXPECT_EQ(store_->PutCheckpoint("alice", "ghost", MakeCheckpoint("A")).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(
      store_->PutCheckpoint("alice", "phone", MakeCheckpoint("B")).ok());
  ASSERT_TRUE(store_->CommitBatch().ok());
  auto list = store_->ListCheckpoints("alice", "phone");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST_P(StateStoreContractTest, EmptyKeysAreInvalidArgument) {
  EXPECT_EQ(store_->PutDevice(MakeDevice("", "phone")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutDevice(MakeDevice("alice", "")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetDevice("", "phone").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListDevices("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->DeleteDevice("alice", "").code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  EXPECT_EQ(store_->PutCheckpoint("alice", "phone", MakeCheckpoint("")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListCheckpoints("", "phone").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Folder events kept for an absent device

std::vector<std::string> FolderEvents(StateStore& store,
                                      const std::string& user = "alice",
                                      const std::string& device = "phone") {
  auto events = store.ListFolderEvents(user, device);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *events : std::vector<std::string>{"<error>"};
}

TEST_P(StateStoreContractTest, FolderEventsRoundTripOldestFirstPerDevice) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "tablet")).ok());
  const std::vector<std::string> lines = {
      "* LIST () \"/\" Work", "* LIST (\\NonExistent) \"/\" Old",
      "* LIST () \"/\" \"New name\" (\"OLDNAME\" (\"Old\"))",
      std::string("* LIST () \"/\" \"caf\xc3\xa9\0x\"", 23),  // bytes survive
  };
  for (const std::string& line : lines) {
    ASSERT_TRUE(store_->AppendFolderEvent("alice", "phone", line, 256).ok());
  }
  ASSERT_TRUE(
      store_->AppendFolderEvent("alice", "tablet", "* LIST () \"/\" T", 256)
          .ok());
  EXPECT_EQ(FolderEvents(*store_), lines);
  EXPECT_EQ(FolderEvents(*store_, "alice", "tablet"),
            std::vector<std::string>{"* LIST () \"/\" T"});
  EXPECT_TRUE(FolderEvents(*store_, "bob", "phone").empty());

  // PutDevice updates in place: the events stay.
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone", 5000)).ok());
  EXPECT_EQ(FolderEvents(*store_), lines);
}

TEST_P(StateStoreContractTest, FolderEventsAreBoundedOldestGo) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_
                    ->AppendFolderEvent("alice", "phone",
                                        absl::StrCat("* LIST () \"/\" F", i), 3)
                    .ok());
  }
  EXPECT_EQ(
      FolderEvents(*store_),
      (std::vector<std::string>{"* LIST () \"/\" F2", "* LIST () \"/\" F3",
                                "* LIST () \"/\" F4"}));

  // The session's bound (256) over 300 appends in one batch: the newest 256.
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "laptop")).ok());
  ASSERT_TRUE(store_->BeginBatch().ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(
        store_->AppendFolderEvent("alice", "laptop", absl::StrCat("E", i), 256)
            .ok());
  }
  ASSERT_TRUE(store_->CommitBatch().ok());
  std::vector<std::string> events = FolderEvents(*store_, "alice", "laptop");
  ASSERT_EQ(events.size(), 256u);
  EXPECT_EQ(events.front(), "E44");
  EXPECT_EQ(events.back(), "E299");
}

TEST_P(StateStoreContractTest, AcknowledgementRemovesTheOldestFolderEvents) {
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "tablet")).ok());
  for (const char* line : {"A", "B", "C", "D"}) {
    ASSERT_TRUE(store_->AppendFolderEvent("alice", "phone", line, 256).ok());
    ASSERT_TRUE(store_->AppendFolderEvent("alice", "tablet", line, 256).ok());
  }
  // Nothing acknowledged yet: all stay.
  ASSERT_TRUE(store_->AckFolderEvents("alice", "phone", 4).ok());
  ASSERT_TRUE(store_->AckFolderEvents("alice", "phone", 10).ok());
  EXPECT_EQ(FolderEvents(*store_),
            (std::vector<std::string>{"A", "B", "C", "D"}));
  // The device acknowledged the first three: the newest stays.
  ASSERT_TRUE(store_->AckFolderEvents("alice", "phone", 1).ok());
  EXPECT_EQ(FolderEvents(*store_), std::vector<std::string>{"D"});
  // Later events follow the ones left, in order.
  ASSERT_TRUE(store_->AppendFolderEvent("alice", "phone", "E", 256).ok());
  EXPECT_EQ(FolderEvents(*store_), (std::vector<std::string>{"D", "E"}));
  ASSERT_TRUE(store_->AckFolderEvents("alice", "phone", 0).ok());
  EXPECT_TRUE(FolderEvents(*store_).empty());
  // Another device's events are its own.
  EXPECT_EQ(FolderEvents(*store_, "alice", "tablet"),
            (std::vector<std::string>{"A", "B", "C", "D"}));
  // Acknowledging for an unknown device is not an error.
  EXPECT_TRUE(store_->AckFolderEvents("alice", "never-was", 0).ok());
}

TEST_P(StateStoreContractTest, FolderEventsBelongToTheDeviceSession) {
  absl::Status s = store_->AppendFolderEvent("alice", "ghost", "X", 256);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_TRUE(FolderEvents(*store_, "alice", "ghost").empty());

  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "old", 100)).ok());
  ASSERT_TRUE(store_->AppendFolderEvent("alice", "phone", "P", 256).ok());
  ASSERT_TRUE(store_->AppendFolderEvent("alice", "old", "O", 256).ok());
  // LOGOUT (DeleteDevice) and expiry take them along; re-registering starts
  // clean.
  ASSERT_TRUE(store_->DeleteDevice("alice", "phone").ok());
  auto expired = store_->ExpireBefore(500);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 1);
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "phone")).ok());
  ASSERT_TRUE(store_->PutDevice(MakeDevice("alice", "old")).ok());
  EXPECT_TRUE(FolderEvents(*store_, "alice", "phone").empty());
  EXPECT_TRUE(FolderEvents(*store_, "alice", "old").empty());

  EXPECT_EQ(store_->AppendFolderEvent("", "phone", "X", 256).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AckFolderEvents("alice", "", 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListFolderEvents("", "phone").status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::unique_ptr<StateStore> OpenMemory(const std::string&) {
  return std::make_unique<MemoryStateStore>();
}

std::unique_ptr<StateStore> OpenSqlite(const std::string& dir) {
  auto store = SqliteStateStore::Open(dir, 0);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  return *std::move(store);
}

INSTANTIATE_TEST_SUITE_P(Backends, StateStoreContractTest,
                         ::testing::Values(Backend{"Memory", OpenMemory},
                                           Backend{"Sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------
// SQLite only.

// Reads one integer with a raw connection, behind the store's back.
int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return value;
}

void ExecRaw(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
}

TEST(SqliteStateStoreTest, PathIsPerShard) {
  EXPECT_EQ(SqliteStateStore::PathFor("/var/lib/pimap", 3),
            "/var/lib/pimap/shard-3.sqlite3");
  TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/nested/state", 2);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->path(), dir.path() + "/nested/state/shard-2.sqlite3");
  EXPECT_TRUE(std::filesystem::exists((*store)->path()));
}

TEST(SqliteStateStoreTest, DataSurvivesCloseAndReopen) {
  TempDir dir;
  DeviceRecord phone = MakeDevice("alice", "phone", 1234);
  FolderCheckpoint inbox = MakeCheckpoint("INBOX", 99);
  {
    auto store = SqliteStateStore::Open(dir.path(), 0);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutDevice(phone).ok());
    ASSERT_TRUE((*store)->PutCheckpoint("alice", "phone", inbox).ok());
  }
  {
    auto store = SqliteStateStore::Open(dir.path(), 0);
    ASSERT_TRUE(store.ok()) << store.status();
    auto got = (*store)->GetDevice("alice", "phone");
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, phone);
    auto cp = (*store)->GetCheckpoint("alice", "phone", "INBOX");
    ASSERT_TRUE(cp.ok() && cp->has_value());
    EXPECT_EQ(**cp, inbox);
  }
  // Shards do not share files.
  auto other = SqliteStateStore::Open(dir.path(), 1);
  ASSERT_TRUE(other.ok()) << other.status();
  auto devices = (*other)->ListDevices("alice");
  ASSERT_TRUE(devices.ok());
  EXPECT_TRUE(devices->empty());
}

TEST(SqliteStateStoreTest, FolderEventsSurviveCloseAndReopen) {
  TempDir dir;
  {
    auto store = SqliteStateStore::Open(dir.path(), 0);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutDevice(MakeDevice("alice", "phone")).ok());
    for (const char* line : {"A", "B", "C"}) {
      ASSERT_TRUE(
          (*store)->AppendFolderEvent("alice", "phone", line, 256).ok());
    }
    ASSERT_TRUE((*store)->AckFolderEvents("alice", "phone", 2).ok());
  }
  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(FolderEvents(**store), (std::vector<std::string>{"B", "C"}));
  // Sequence numbers continue after the reopen: a new event comes last.
  ASSERT_TRUE((*store)->AppendFolderEvent("alice", "phone", "D", 256).ok());
  EXPECT_EQ(FolderEvents(**store), (std::vector<std::string>{"B", "C", "D"}));
}

// A state file written by the build before folder events (schema version 1)
// opens with its state intact and gains the table.
TEST(SqliteStateStoreTest, MigratesAVersion1FileWithoutLosingState) {
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
INSERT INTO devices VALUES ('alice', 'phone', '42', 'f', 'p', 'INBOX', 0, 1234);
INSERT INTO checkpoints VALUES ('alice', 'phone', 'INBOX', 77, 99, '1:5');
PRAGMA user_version = 1;
)sql");
  ASSERT_EQ(QueryInt(path, "PRAGMA user_version"), 1);

  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"),
            SqliteStateStore::kSchemaVersion);
  auto device = (*store)->GetDevice("alice", "phone");
  ASSERT_TRUE(device.ok() && device->has_value());
  EXPECT_EQ((*device)->session_id, "42");
  EXPECT_EQ((*device)->selected_folder, "INBOX");
  EXPECT_EQ((*device)->last_activity_unix, 1234);
  auto cp = (*store)->GetCheckpoint("alice", "phone", "INBOX");
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_EQ((*cp)->uidvalidity, 77u);
  EXPECT_EQ((*cp)->acked_modseq, 99u);
  EXPECT_EQ((*cp)->view, "1:5");
  EXPECT_TRUE(FolderEvents(**store).empty());
  ASSERT_TRUE((*store)->AppendFolderEvent("alice", "phone", "X", 256).ok());
  EXPECT_EQ(FolderEvents(**store), std::vector<std::string>{"X"});
  // The cascade holds for the new table in a migrated file too.
  ASSERT_TRUE((*store)->DeleteDevice("alice", "phone").ok());
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM folder_events"), 0);
}

TEST(SqliteStateStoreTest, SchemaVersionAndJournalModeAreSet) {
  TempDir dir;
  std::string path;
  {
    auto store = SqliteStateStore::Open(dir.path(), 0);
    ASSERT_TRUE(store.ok()) << store.status();
    path = (*store)->path();
    EXPECT_EQ(QueryInt(path, "PRAGMA user_version"),
              SqliteStateStore::kSchemaVersion);
  }
  // WAL is persistent in the file, so a raw reader sees it after close too.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
               "wal");
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
}

TEST(SqliteStateStoreTest, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = SqliteStateStore::PathFor(dir.path(), 0);
  { ASSERT_TRUE(SqliteStateStore::Open(dir.path(), 0).ok()); }
  ExecRaw(path, "PRAGMA user_version = 99");
  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version 99"),
            std::string::npos)
      << store.status();
  // Refusing must not have touched the version.
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"), 99);
}

TEST(SqliteStateStoreTest, CorruptFileIsAClearError) {
  TempDir dir;
  const std::string path = SqliteStateStore::PathFor(dir.path(), 0);
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 256; ++i) out << "this is not an SQLite database\n";
  }
  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss)
      << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos)
      << store.status();
  std::cout << "corrupt file: " << store.status() << "\n";
}

TEST(SqliteStateStoreTest, UnusablePathsAreClearErrors) {
  TempDir dir;
  // A directory that cannot be created: its parent is a regular file (this
  // holds even when the tests run as root, unlike a chmod).
  const std::string file = dir.path() + "/a-file";
  { std::ofstream(file) << "x"; }
  auto under_file = SqliteStateStore::Open(file + "/state", 0);
  ASSERT_FALSE(under_file.ok());
  EXPECT_NE(under_file.status().message().find(file), std::string::npos)
      << under_file.status();

  // The database path is a directory.
  std::filesystem::create_directories(SqliteStateStore::PathFor(dir.path(), 5));
  auto is_dir = SqliteStateStore::Open(dir.path(), 5);
  ASSERT_FALSE(is_dir.ok());
  EXPECT_NE(is_dir.status().message().find("shard-5.sqlite3"),
            std::string::npos)
      << is_dir.status();
  std::cout << "directory under a file: " << under_file.status() << "\n"
            << "database path is a directory: " << is_dir.status() << "\n";

  EXPECT_EQ(SqliteStateStore::Open("", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SqliteStateStore::Open(dir.path(), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SqliteStateStoreTest, SecondInstanceOpensAfterFirstCloses) {
  TempDir dir;
  auto first = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->PutDevice(MakeDevice("alice", "phone")).ok());
  first->reset();

  auto second = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*second)->PutDevice(MakeDevice("alice", "laptop")).ok());
  auto devices = (*second)->ListDevices("alice");
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(devices->size(), 2u);
}

TEST(SqliteStateStoreTest, OnlyTheOutermostCommitMakesABatchVisible) {
  TempDir dir;
  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(store.ok()) << store.status();
  StateStore& s = **store;
  const std::string& path = (*store)->path();
  ASSERT_TRUE(s.PutDevice(MakeDevice("alice", "phone")).ok());

  ASSERT_TRUE(s.BeginBatch().ok());
  ASSERT_TRUE(s.BeginBatch().ok());
  ASSERT_TRUE(s.PutCheckpoint("alice", "phone", MakeCheckpoint("INBOX")).ok());
  ASSERT_TRUE(s.CommitBatch().ok());
  // Another connection (a reader in WAL mode) sees only committed data.
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM checkpoints"), 0);
  ASSERT_TRUE(s.CommitBatch().ok());
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM checkpoints"), 1);
}

TEST(SqliteStateStoreTest, ClosingWithAnOpenBatchCommitsIt) {
  TempDir dir;
  {
    auto store = SqliteStateStore::Open(dir.path(), 0);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->BeginBatch().ok());
    ASSERT_TRUE((*store)->PutDevice(MakeDevice("alice", "phone")).ok());
  }
  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(store.ok()) << store.status();
  auto got = (*store)->GetDevice("alice", "phone");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->has_value());
}

TEST(SqliteStateStoreTest, TenThousandCheckpointBatch) {
  TempDir dir;
  auto store = SqliteStateStore::Open(dir.path(), 0);
  ASSERT_TRUE(store.ok()) << store.status();
  StateStore& s = **store;
  // 100 devices x 100 folders, as a burst after a reconnect storm might write.
  constexpr int kDevices = 100;
  constexpr int kFolders = 100;
  for (int d = 0; d < kDevices; ++d) {
    ASSERT_TRUE(s.PutDevice(MakeDevice("user", absl::StrCat("dev", d))).ok());
  }
  FolderCheckpoint cp = MakeCheckpoint("");
  cp.view = "1:5000,5002:9000,9005";

  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(s.BeginBatch().ok());
  for (int d = 0; d < kDevices; ++d) {
    const std::string device = absl::StrCat("dev", d);
    for (int f = 0; f < kFolders; ++f) {
      cp.folder = absl::StrCat("Folder/", f);
      cp.acked_modseq = static_cast<uint64_t>(d * kFolders + f);
      ASSERT_TRUE(s.PutCheckpoint("user", device, cp).ok());
    }
  }
  ASSERT_TRUE(s.CommitBatch().ok());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  const int total = kDevices * kFolders;
  // Reported, not asserted: wall-clock varies with the machine.
  std::cout << "10000-checkpoint batch: " << seconds * 1000 << " ms ("
            << static_cast<int64_t>(total / seconds) << " checkpoints/s)\n";
  RecordProperty("batch_ms", static_cast<int>(seconds * 1000));
  RecordProperty("checkpoints_per_second", static_cast<int>(total / seconds));

  EXPECT_EQ(QueryInt((*store)->path(), "SELECT count(*) FROM checkpoints"),
            total);
  auto expired = s.ExpireBefore(std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, kDevices);
  EXPECT_EQ(QueryInt((*store)->path(), "SELECT count(*) FROM checkpoints"), 0);
}

}  // namespace
}  // namespace pimap
