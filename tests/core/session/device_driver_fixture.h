// The fixture of the DeviceDriver tests in which each device logs in and runs
// its commands on its own fake store link (device_driver_*_test.cc): the
// transport-free P-IMAP session engine driven through a fake store link and a
// fake device output. Each test plays the store's side of the conversation
// line by line and checks the exact bytes both sides get. The pooled-link
// fixture is device_driver_pool_fixture.h.
#ifndef PIMAP_TESTS_CORE_SESSION_DEVICE_DRIVER_FIXTURE_H_
#define PIMAP_TESTS_CORE_SESSION_DEVICE_DRIVER_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session::testing {

inline StoreEvent NewMail(uint32_t uid, uint32_t uidvalidity = 7,
                          absl::string_view folder = "INBOX") {
  StoreEvent e;
  e.kind = EventKind::kNew;
  e.folder = std::string(folder);
  e.uidvalidity = uidvalidity;
  e.uid = uid;
  return e;
}

inline StoreEvent Expunged(uint32_t uid, uint32_t uidvalidity = 7) {
  StoreEvent e;
  e.kind = EventKind::kExpunge;
  e.folder = "INBOX";
  e.uidvalidity = uidvalidity;
  e.uid = uid;
  return e;
}

class DeviceDriverTest : public ::testing::Test {
 protected:
  DeviceDriverTest()
      : timers_(MonotonicNowMs()),
        registry_(&timers_, &counters_, &config_, &watches_, &state_) {}

  ~DeviceDriverTest() override {
    for (auto& d : devices_) {
      if (d->driver != nullptr) d->driver->Release();
    }
  }

  DriverServices services() { return {&registry_, &counters_, &timers_}; }

  Device& Connect(const std::string& user = "alice",
                  const std::string& device = "phone") {
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    d.driver = new DeviceDriver(services(), &d.out, user, device);
    return d;
  }

  // The device goes away (the binding releases its driver).
  void Drop(Device& d) {
    d.driver->Release();
    d.driver = nullptr;
  }

  // A first login: ENABLE QRESYNC accepted. Returns the session id.
  uint64_t Login(Device& d, const std::string& tag = "a1") {
    d.driver->Start(&d.link, tag, "pw");
    EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    d.link.Reply("* ENABLED QRESYNC");
    d.link.Complete("~p1", "OK Enabled");
    const std::string got = d.out.Take();
    const uint64_t id = SessionIdIn(got);
    EXPECT_EQ(got, absl::StrCat("* SESSIONID ", id, "\r\n", LoginOk(tag)));
    EXPECT_THAT(d.out.login_done, ::testing::ElementsAre(true));
    return id;
  }

  // One command line from the device, as the binding hands it over: first
  // OnCommandLine() (not the end of an IDLE here), then Execute().
  // A command line that arrived now (after everything written so far).
  void Run(Device& d, absl::string_view line) {
    d.driver->OnInputArrived();
    RunPipelined(d, line);
  }
  // A command line that arrived earlier, with the previous one (pipelining).
  void RunPipelined(Device& d, absl::string_view line) {
    absl::StatusOr<imap::Command> command =
        imap::testing::ParseCommandBytes(absl::StrCat(line, "\r\n"));
    ASSERT_TRUE(command.ok()) << command.status();
    ASSERT_FALSE(d.driver->OnCommandLine()) << line;
    d.driver->Execute(*command);
  }
  // The line that ends IDLE arrives now.
  static bool Done(Device& d) {
    d.driver->OnInputArrived();
    return d.driver->OnCommandLine();
  }

  // SELECT INBOX (or `folder`) with UIDVALIDITY 7, HIGHESTMODSEQ 10 and UIDs 4,
  // 9, 12 in the store; returns what the device got.
  std::string SelectInbox(Device& d, absl::string_view tag = "b",
                          absl::string_view folder = "INBOX") {
    Run(d, absl::StrCat(tag, " SELECT ", folder));
    testing::AnswerSelect(d.link, folder);
    return d.out.Take();
  }

  // What SelectInbox's device sees.
  static std::string SelectedInbox(absl::string_view tag = "b") {
    return absl::StrCat(
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        "* OK [UIDVALIDITY 7] UIDs valid\r\n"
        "* 3 EXISTS\r\n"
        "* 0 RECENT\r\n",
        tag, " OK [READ-WRITE] Select completed\r\n");
  }

  // "<tag> IDLE" accepted by the store: the device got the continuation.
  void EnterIdle(Device& d, absl::string_view tag = "c") {
    Run(d, absl::StrCat(tag, " IDLE"));
    const std::string idle_tag = d.link.last_tag();
    EXPECT_EQ(d.link.TakeSent(), absl::StrCat(idle_tag, " IDLE\r\n"));
    d.link.Reply("+ idling");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  SessionRegistry registry_;
  std::vector<std::unique_ptr<Device>> devices_;
};

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_DEVICE_DRIVER_FIXTURE_H_
