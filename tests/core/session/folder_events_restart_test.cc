// Folder events kept for an absent device across a restart of pimapd: the
// session engine (DeviceDriver + SessionRegistry) on a StateStore that outlives
// the registry, as the SQLite file outlives the process. Run on both backends.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "gtest/gtest.h"
#include "store/state/sqlite_state_store.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeDeviceOutput;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::SessionIdIn;

StoreEvent FolderCreated(const std::string& name) {
  StoreEvent e;
  e.kind = EventKind::kFolderCreated;
  e.folder = name;
  e.raw = absl::StrCat("* LIST () \"/\" ", name);
  return e;
}

struct Backend {
  std::string name;
  std::function<std::unique_ptr<StateStore>(const std::string& dir)> open;
};
void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

struct Device {
  FakeDeviceOutput out;
  FakeStoreLink link;
  DeviceDriver* driver = nullptr;
};

class FolderEventsRestartTest : public ::testing::TestWithParam<Backend> {
 protected:
  FolderEventsRestartTest() : timers_(MonotonicNowMs()) {
    std::string tmpl = ::testing::TempDir() + "folder_events_restart.XXXXXX";
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    state_ = GetParam().open(dir_);
    StartRegistry();
  }
  ~FolderEventsRestartTest() override {
    StopRegistry();
    state_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void StartRegistry() {
    registry_ = std::make_unique<SessionRegistry>(
        &timers_, &counters_, &config_, &watches_, state_.get());
  }
  // Connections end (as at shutdown), then the registry and its memory go; the
  // state store stays.
  void StopRegistry() {
    for (auto& d : devices_) {
      if (d->driver != nullptr) d->driver->Release();
      d->driver = nullptr;
    }
    if (registry_ != nullptr) registry_->Stop();
    registry_.reset();
  }
  void Restart() {
    StopRegistry();
    // The SQLite file is reopened, as by a new process.
    if (GetParam().name == "Sqlite") state_ = GetParam().open(dir_);
    StartRegistry();
  }

  Device& Connect() {
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    d.driver = new DeviceDriver({registry_.get(), &counters_, &timers_}, &d.out,
                                "alice", "phone");
    return d;
  }
  void Drop(Device& d) {
    d.driver->Release();
    d.driver = nullptr;
  }
  // A login answered after ENABLE QRESYNC: what the device got.
  std::string Login(Device& d, const std::string& tag) {
    d.driver->Start(&d.link, tag, "pw");
    EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    d.link.Complete("~p1", "OK Enabled");
    return d.out.Take();
  }
  void Run(Device& d, const std::string& line) {
    auto command = imap::testing::ParseCommandBytes(absl::StrCat(line, "\r\n"));
    ASSERT_TRUE(command.ok()) << command.status();
    d.driver->OnInputArrived();
    ASSERT_FALSE(d.driver->OnCommandLine()) << line;
    d.driver->Execute(*command);
  }
  // The resume of an AUTHENTICATED session with `lines` replayed.
  static std::string Resumed(uint64_t id, const std::string& tag,
                             const std::vector<std::string>& lines) {
    std::string out = "* SESSION AUTHENTICATED\r\n";
    for (const std::string& line : lines) absl::StrAppend(&out, line, "\r\n");
    return absl::StrCat(out, "* SESSIONID ", id, "\r\n", LoginOk(tag));
  }
  // A first login and the device goes away without LOGOUT.
  uint64_t LoginAndLeave() {
    Device& d = Connect();
    const uint64_t id = SessionIdIn(Login(d, "a1"));
    EXPECT_NE(id, 0u);
    Drop(d);
    return id;
  }

  std::string dir_;
  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  std::unique_ptr<StateStore> state_;
  std::unique_ptr<SessionRegistry> registry_;
  std::vector<std::unique_ptr<Device>> devices_;
};

TEST_P(FolderEventsRestartTest, EventsWhileAwayAreReplayedAfterARestart) {
  const uint64_t id = LoginAndLeave();
  registry_->OnStoreEvents("alice", {FolderCreated("Work")});
  registry_->OnStoreEvents("alice", {FolderCreated("Play")});
  Restart();
  Device& d = Connect();
  EXPECT_EQ(
      Login(d, "a2"),
      Resumed(id, "a2", {"* LIST () \"/\" Work", "* LIST () \"/\" Play"}));
}

TEST_P(FolderEventsRestartTest, WrittenButUnacknowledgedEventsSurviveARestart) {
  const uint64_t id = LoginAndLeave();
  registry_->OnStoreEvents("alice", {FolderCreated("Work")});
  Device& d = Connect();
  EXPECT_EQ(Login(d, "a2"), Resumed(id, "a2", {"* LIST () \"/\" Work"}));
  Drop(d);  // gone before any command acknowledged them
  Restart();
  Device& again = Connect();
  EXPECT_EQ(Login(again, "a3"), Resumed(id, "a3", {"* LIST () \"/\" Work"}));
}

TEST_P(FolderEventsRestartTest, AcknowledgedEventsAreNotReplayedAfterARestart) {
  const uint64_t id = LoginAndLeave();
  registry_->OnStoreEvents("alice", {FolderCreated("Work")});
  Device& d = Connect();
  EXPECT_EQ(Login(d, "a2"), Resumed(id, "a2", {"* LIST () \"/\" Work"}));
  Run(d, "x XGETPIMAPPREFS");  // any command acknowledges them
  d.out.Take();
  Drop(d);
  // Another event after the acknowledged one: only it comes back.
  registry_->OnStoreEvents("alice", {FolderCreated("Later")});
  Restart();
  Device& again = Connect();
  EXPECT_EQ(Login(again, "a3"), Resumed(id, "a3", {"* LIST () \"/\" Later"}));
}

TEST_P(FolderEventsRestartTest, TheBoundHoldsAcrossARestart) {
  const uint64_t id = LoginAndLeave();
  std::vector<StoreEvent> many;
  for (int i = 0; i < 300; ++i) {
    many.push_back(FolderCreated(absl::StrCat("F", i)));
  }
  registry_->OnStoreEvents("alice", many);
  Restart();
  std::vector<std::string> newest;
  for (int i = 300 - static_cast<int>(DeviceSession::kMaxFolderEvents); i < 300;
       ++i) {
    newest.push_back(absl::StrCat("* LIST () \"/\" F", i));
  }
  Device& d = Connect();
  EXPECT_EQ(Login(d, "a2"), Resumed(id, "a2", newest));
}

TEST_P(FolderEventsRestartTest, LogoutDropsTheEvents) {
  LoginAndLeave();
  registry_->OnStoreEvents("alice", {FolderCreated("Work")});
  Device& d = Connect();
  Login(d, "a2");
  Run(d, "z LOGOUT");
  d.out.Take();
  Drop(d);
  auto kept = state_->ListFolderEvents("alice", "phone");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->empty());
}

std::unique_ptr<StateStore> OpenMemory(const std::string&) {
  return std::make_unique<MemoryStateStore>();
}

std::unique_ptr<StateStore> OpenSqlite(const std::string& dir) {
  auto store = store::SqliteStateStore::Open(dir, 0);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  return *std::move(store);
}

INSTANTIATE_TEST_SUITE_P(Backends, FolderEventsRestartTest,
                         ::testing::Values(Backend{"Memory", OpenMemory},
                                           Backend{"Sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace pimap::session
