// The durable state's files are private to pimapd's user (issue 14): the
// directories SqliteStateStore::Open creates are 0700, the database and its
// -wal / -shm files 0600, whatever the umask; older, wider files are narrowed.
#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "gtest/gtest.h"
#include "store/state/sqlite_state_store.h"
#include "tests/testing/temp_dir.h"

namespace pimap {
namespace {

using pimap::testing::TempDir;
using store::SqliteStateStore;

// The permission bits of `path`, or -1 if it does not exist.
int ModeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Sets the process umask for the scope (a permissive one shows that the modes
// do not come from it).
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(umask(mask)) {}
  ~ScopedUmask() { umask(old_); }

 private:
  mode_t old_;
};

session::DeviceRecord Device() {
  session::DeviceRecord r;
  r.user = "alice";
  r.device = "phone";
  r.session_id = "1";
  return r;
}

TEST(SqliteStateStorePermissionsTest, NewDirectoriesAndFilesArePrivate) {
  ScopedUmask permissive(0);
  TempDir tmp;
  const std::string parent = tmp.path() + "/var";
  const std::string dir = parent + "/state";
  auto store = SqliteStateStore::Open(dir, 0);
  ASSERT_TRUE(store.ok()) << store.status();
  // A write, so that the WAL and its shared-memory index exist.
  ASSERT_TRUE((*store)->PutDevice(Device()).ok());
  const std::string db = (*store)->path();
  EXPECT_EQ(ModeOf(parent), 0700);
  EXPECT_EQ(ModeOf(dir), 0700);
  EXPECT_EQ(ModeOf(db), 0600);
  EXPECT_EQ(ModeOf(db + "-wal"), 0600);
  EXPECT_EQ(ModeOf(db + "-shm"), 0600);
  // The temp dir itself existed before: its mode is the operator's.
  EXPECT_EQ(ModeOf(tmp.path()), 0700);  // mkdtemp's
}

TEST(SqliteStateStorePermissionsTest, WiderFilesOfAnOlderRunAreNarrowed) {
  TempDir tmp;
  const std::string db = SqliteStateStore::PathFor(tmp.path(), 1);
  // Files as an older pimapd left them (0644 minus a 022 umask). The first
  // instance stays open so that its -wal and -shm exist when the second opens
  // (the last connection to close removes them).
  auto first = SqliteStateStore::Open(tmp.path(), 1);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->PutDevice(Device()).ok());
  for (const char* suffix : {"", "-wal", "-shm"}) {
    ASSERT_EQ(chmod((db + suffix).c_str(), 0644), 0) << suffix;
  }
  auto second = SqliteStateStore::Open(tmp.path(), 1);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(ModeOf(db), 0600);
  EXPECT_EQ(ModeOf(db + "-wal"), 0600);
  EXPECT_EQ(ModeOf(db + "-shm"), 0600);
}

}  // namespace
}  // namespace pimap
