// The fixture of the DeviceDriver tests in pooled mode (DriverServices::pool
// set): a registry with a fake watch factory, a FakeLinkPool, devices with a
// FakeDeviceOutput and the link they log in with, and the store's side of a
// login and a SELECT. Shared by device_driver_pool_test.cc and
// device_driver_hibernate_test.cc.
#ifndef PIMAP_TESTS_CORE_SESSION_DEVICE_DRIVER_POOL_FIXTURE_H_
#define PIMAP_TESTS_CORE_SESSION_DEVICE_DRIVER_POOL_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "core/session/store_link_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session::testing {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;

inline StoreEvent NewMail(uint32_t uid, absl::string_view folder = "INBOX") {
  StoreEvent e;
  e.kind = EventKind::kNew;
  e.folder = std::string(folder);
  e.uidvalidity = 7;
  e.uid = uid;
  return e;
}

// What the device sees for a SELECT (or EXAMINE) of a folder with UIDs 4, 9
// and 12 (SelectFolder below).
inline std::string Selected(absl::string_view tag = "b", bool examine = false) {
  return absl::StrCat(
      "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
      "* OK [UIDVALIDITY 7] UIDs valid\r\n"
      "* 3 EXISTS\r\n"
      "* 0 RECENT\r\n",
      tag,
      examine ? " OK [READ-ONLY] Examine completed\r\n"
              : " OK [READ-WRITE] Select completed\r\n");
}

// The store's answer to the gateway's own SELECT "INBOX" on a borrowed link
// (kLinkSelect): none of it is the device's business.
inline void AnswerLinkSelect(FakeStoreLink& store, absl::string_view tag) {
  store.Reply("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
  store.Reply(
      "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
      "\\*)] Ok");
  store.Reply("* 3 EXISTS");
  store.Reply("* 0 RECENT");
  store.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  store.Reply("* OK [HIGHESTMODSEQ 12] Highest");
  store.Complete(tag, "OK [READ-WRITE] Select completed");
}

class DeviceDriverPoolTest : public ::testing::Test {
 protected:
  static constexpr int64_t kBorrowTimeoutMs = 2500;

  DeviceDriverPoolTest()
      : timers_(MonotonicNowMs()),
        registry_(&timers_, &counters_, &config_, &watches_, &state_) {}

  void TearDown() override {
    for (auto& d : devices_) {
      if (d->driver != nullptr) d->driver->Release();
      d->driver = nullptr;
    }
    EXPECT_THAT(pool_.violations(), IsEmpty());
  }

  DriverServices services() {
    DriverServices s{&registry_, &counters_, &timers_};
    s.pool = &pool_;
    s.borrow_timeout_ms = kBorrowTimeoutMs;
    return s;
  }

  Device& Connect(const std::string& user = "alice",
                  const std::string& device = "phone") {
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    d.driver = new DeviceDriver(services(), &d.out, user, device);
    return d;
  }

  // The device goes away (the binding releases its driver).
  static void Drop(Device& d) {
    d.driver->Release();
    d.driver = nullptr;
  }

  // A first login with the device's own link: the pool adopts it, ENABLE
  // QRESYNC runs on it, the answer comes and the link goes back. Returns the
  // adopted link (an idle pool link from then on).
  PooledLink* Login(Device& d, const std::string& tag = "a1") {
    d.driver->Start(&d.link, tag, "pw");
    std::vector<std::string> calls = pool_.TakeCalls();
    EXPECT_EQ(calls.size(), 1u);
    if (calls.empty()) return nullptr;
    EXPECT_THAT(calls[0], StartsWith("Adopt(alice) -> L"));
    PooledLink* adopted =
        pool_.pooled(calls[0].substr(calls[0].find("-> ") + 3));
    EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    d.link.Reply("* ENABLED QRESYNC");
    d.link.Complete("~p1", "OK Enabled");
    const std::string got = d.out.Take();
    EXPECT_EQ(got, absl::StrCat("* SESSIONID ", SessionIdIn(got), "\r\n",
                                LoginOk(tag)));
    EXPECT_THAT(pool_.TakeCalls(),
                ElementsAre(absl::StrCat("Return(", pool_.name(adopted),
                                         ", reusable)")));
    return adopted;
  }

  // One command line from the device, as the binding hands it over.
  void Run(Device& d, absl::string_view line) {
    d.driver->OnInputArrived();
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
  // "c IDLE" in a folder no event source covers: relayed as the store's own
  // IDLE on the device's link, whose "+" reaches the device.
  void StartRelayedIdle(Device& d) {
    Run(d, "c IDLE");
    EXPECT_EQ(d.link.TakeSent(), "~p4 IDLE\r\n");
    d.link.Reply("+ idling");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  }
  // The device's DONE goes to the store, whose completion answers it.
  void EndRelayedIdle(Device& d) {
    EXPECT_TRUE(Done(d));
    EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
    d.link.Complete("~p4", "OK Idle completed");
    EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  }
  // The gateway answers DONE from a zero-delay timer.
  void FireTimers() { timers_.Advance(timers_.now_ms()); }

  // "<tag> SELECT <folder>" (or EXAMINE) run on `store` (the link the pool
  // lends for it) with UIDVALIDITY 7 and UIDs 4, 9, 12 in the store; returns
  // what the device got.
  std::string SelectFolder(Device& d, FakeStoreLink& store,
                           absl::string_view folder = "INBOX",
                           absl::string_view tag = "b",
                           absl::string_view verb = "SELECT") {
    Run(d, absl::StrCat(tag, " ", verb, " ", folder));
    testing::AnswerSelect(store, folder, verb);
    return d.out.Take();
  }

  // An idle link's state as another device of the user left it: QRESYNC on,
  // `folder` selected read-write, synchronised with every event so far.
  PooledLink Warm(absl::string_view folder) {
    PooledLink p;
    p.selected_folder = std::string(folder);
    p.qresync_enabled = true;
    p.synced_events = registry_.EventsReceived("alice");
    return p;
  }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  SessionRegistry registry_;
  FakeLinkPool pool_;
  std::vector<std::unique_ptr<Device>> devices_;
};

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_DEVICE_DRIVER_POOL_FIXTURE_H_
