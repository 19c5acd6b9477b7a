// What one user or device may make a shard keep (issue 14, item 4): device
// sessions per user (SessionConfig::max_devices_per_user), folders with their
// own filter and the size of one filter's program, through the engine
// (DeviceDriver + SessionRegistry) on the in-memory StateStore.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/session/device_driver.h"
#include "core/session/filter.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeDeviceOutput;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Device {
  FakeDeviceOutput out;
  FakeStoreLink link;
  DeviceDriver* driver = nullptr;
};

class DeviceLimitsTest : public ::testing::Test {
 protected:
  DeviceLimitsTest() : timers_(MonotonicNowMs()) {
    config_.max_devices_per_user = 3;
    config_.max_filters_per_device = 2;
    config_.max_filter_bytes = 64;
    registry_ = std::make_unique<SessionRegistry>(&timers_, &counters_,
                                                  &config_, &watches_, &state_);
  }
  ~DeviceLimitsTest() override {
    for (auto& d : devices_) {
      if (d->driver != nullptr) d->driver->Release();
    }
  }

  // A device logs in; its first store command (ENABLE) is accepted.
  Device& LogIn(const std::string& user, const std::string& device) {
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    d.driver = new DeviceDriver({registry_.get(), &counters_, &timers_}, &d.out,
                                user, device);
    d.driver->Start(&d.link, "a1", "pw");
    if (d.link.TakeSent() == "~p1 ENABLE QRESYNC\r\n") {
      d.link.Reply("* ENABLED QRESYNC");
      d.link.Complete("~p1", "OK Enabled");
    }
    return d;
  }
  void Drop(Device& d) {
    d.driver->Release();
    d.driver = nullptr;
  }
  void Run(Device& d, absl::string_view line) {
    absl::StatusOr<imap::Command> command =
        imap::testing::ParseCommandBytes(absl::StrCat(line, "\r\n"));
    ASSERT_TRUE(command.ok()) << command.status();
    d.driver->OnInputArrived();
    ASSERT_FALSE(d.driver->OnCommandLine()) << line;
    d.driver->Execute(*command);
  }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  std::unique_ptr<SessionRegistry> registry_;
  std::vector<std::unique_ptr<Device>> devices_;
};

TEST_F(DeviceLimitsTest, DevicePastTheLimitIsRefusedAndLeavesNothing) {
  for (int i = 0; i < 3; ++i) {
    Device& d = LogIn("alice", absl::StrCat("dev", i));
    EXPECT_THAT(d.out.login_done, ElementsAre(true));
  }
  Device& fourth = LogIn("alice", "dev3");
  EXPECT_EQ(fourth.out.Take(),
            "a1 NO [LIMIT] Too many devices for this user\r\n");
  EXPECT_THAT(fourth.out.login_done, ElementsAre(false));
  EXPECT_EQ(registry_->sessions(), 3u);
  // No orphan row: the refused device has no durable record.
  auto rows = state_.ListDevices("alice");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 3u);
  // A known device still resumes, and another user is not affected.
  Device& again = LogIn("alice", "dev1");
  EXPECT_THAT(again.out.login_done, ElementsAre(true));
  Device& bob = LogIn("bob", "dev3");
  EXPECT_THAT(bob.out.login_done, ElementsAre(true));
}

TEST_F(DeviceLimitsTest, DetachedSessionsCountAndLogoutFreesASlot) {
  for (int i = 0; i < 3; ++i) Drop(LogIn("alice", absl::StrCat("dev", i)));
  Device& fourth = LogIn("alice", "dev3");
  EXPECT_THAT(fourth.out.login_done, ElementsAre(false));
  Device& first = LogIn("alice", "dev0");
  ASSERT_THAT(first.out.login_done, ElementsAre(true));
  first.out.Take();
  Run(first, "z LOGOUT");
  Device& fifth = LogIn("alice", "dev3");
  EXPECT_THAT(fifth.out.login_done, ElementsAre(true));
}

TEST_F(DeviceLimitsTest, SessionsOnDiskOnlyCountAfterARestart) {
  for (int i = 0; i < 3; ++i) Drop(LogIn("alice", absl::StrCat("dev", i)));
  // A restart: the sessions are in durable state only.
  registry_ = std::make_unique<SessionRegistry>(&timers_, &counters_, &config_,
                                                &watches_, &state_);
  EXPECT_THAT(LogIn("alice", "dev3").out.login_done, ElementsAre(false));
  EXPECT_THAT(LogIn("alice", "dev2").out.login_done, ElementsAre(true));
}

TEST_F(DeviceLimitsTest, FilterFoldersAndProgramSizeAreBounded) {
  Device& d = LogIn("alice", "phone");
  d.out.Take();
  Run(d, "a XFILTER INBOX N SEEN");
  Run(d, "b XFILTER Work V SEEN");
  Run(d, "c XFILTER INBOX V UNSEEN");  // same folder: no new slot
  EXPECT_EQ(d.out.Take(),
            "a OK XFILTER completed\r\nb OK XFILTER completed\r\n"
            "c OK XFILTER completed\r\n");
  Run(d, "d XFILTER Other N SEEN");
  EXPECT_EQ(d.out.Take(),
            "d NO [LIMIT] Too many folder filters (at most 2 folders)\r\n");
  Run(d, "e XFILTER ALL N SEEN");  // replaces them all
  EXPECT_EQ(d.out.Take(), "e OK XFILTER completed\r\n");
  Run(d,
      absl::StrCat("f XFILTER ALL N SUBJECT \"", std::string(80, 'x'), "\""));
  EXPECT_THAT(d.out.Take(), HasSubstr("f NO [LIMIT] Filter too large"));
  Run(d, "g XFILTER Other N GET");
  EXPECT_EQ(d.out.Take(),
            "* XFILTER Other N SEEN\r\ng OK XFILTER completed\r\n");
}

}  // namespace
}  // namespace pimap::session
