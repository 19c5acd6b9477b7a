// The fixture of the parking tests (relay_driver_park_test.cc,
// relay_driver_notify_test.cc): a relay driven through a framer over the
// device's bytes (FakeBinding) against a fake store link, a fake link pool and
// a real SessionRegistry, with helpers that take a client from SELECT to
// parked and back.
#ifndef PIMAP_TESTS_CORE_SESSION_RELAY_PARK_FIXTURE_H_
#define PIMAP_TESTS_CORE_SESSION_RELAY_PARK_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/limits.h"
#include "core/session/memory_state_store.h"
#include "core/session/relay_driver.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {

using ::pimap::session::testing::FakeBinding;
using ::pimap::session::testing::FakeLinkPool;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

inline constexpr int64_t kParkAfterMs = 5000;
inline constexpr int64_t kKeepaliveMs = 120000;

inline StoreEvent Event(EventKind kind, uint32_t uid,
                        std::vector<std::string> flags = {},
                        uint32_t uidvalidity = 7) {
  StoreEvent e;
  e.kind = kind;
  e.folder = "INBOX";
  e.uidvalidity = uidvalidity;
  e.uid = uid;
  e.flags = std::move(flags);
  return e;
}

class RelayParkTest : public ::testing::Test {
 protected:
  explicit RelayParkTest(int64_t park_after_ms = kParkAfterMs)
      : timers_(now_),
        registry_(&timers_, &counters_, &config_, &watches_, &state_) {
    DriverServices services{&registry_, &counters_, &timers_};
    services.pool = &pool_;
    services.borrow_timeout_ms = 2500;
    RelayParkConfig park;
    park.park_after_ms = park_after_ms;
    park.keepalive_ms = kKeepaliveMs;
    driver_ = new RelayDriver(services, &device_, imap::ParserLimits{}, "alice",
                              StoreCredentials{"alice", "pw", ""}, park);
    device_.Attach(driver_);
    driver_->Start(&store_, "a1");
    device_.Take();
  }

  void TearDown() override {
    device_.ReleaseDriver();
    EXPECT_THAT(pool_.violations(), IsEmpty());
    EXPECT_EQ(registry_.parked(), 0u);
    EXPECT_EQ(counters_.relay_parked.load(), 0);
  }

  void Advance(int64_t ms) {
    now_ += ms;
    timers_.Advance(now_);
  }

  // SELECT INBOX: UIDVALIDITY 7, UIDs 4 9 12.
  void SelectInbox() {
    device_.Type("s SELECT INBOX\r\n");
    EXPECT_EQ(store_.TakeSent(), "s SELECT INBOX\r\n");
    store_.Reply("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
    store_.Reply(
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
        "\\Draft \\*)] Flags permitted.");
    store_.Reply("* 3 EXISTS");
    store_.Reply("* 0 RECENT");
    store_.Reply("* OK [UIDVALIDITY 7] UIDs valid");
    store_.Reply("* OK [UIDNEXT 13] Predicted next UID");
    store_.Reply("* OK [HIGHESTMODSEQ 20] Highest");
    store_.Complete("s", "OK [READ-WRITE] Select completed.");
    device_.Take();
  }

  void Idle() {
    device_.Type("i IDLE\r\n");
    EXPECT_EQ(store_.TakeSent(), "i IDLE\r\n");
    store_.Reply("+ idling");
    EXPECT_EQ(device_.Take(), "+ idling\r\n");
  }

  // The park timer fires; the user's watch (started by it) takes its
  // baseline of INBOX, and the park goes ahead a retry later.
  void StartParking() {
    Advance(kParkAfterMs);
    ASSERT_FALSE(watches_.watches.empty());
    watches_.watches.back()->uidvalidity_value = 7;
    Advance(1000);
  }

  // From IDLE to parked: the store's IDLE ends, the map is listed, the link
  // goes to the pool.
  void Park(absl::string_view uids = "4 9 12") {
    StartParking();
    EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
    store_.Complete("i", "OK Idle completed.");
    EXPECT_EQ(store_.TakeSent(), "~r1 UID SEARCH ALL\r\n");
    store_.Reply(absl::StrCat("* SEARCH ", uids));
    store_.Complete("~r1", "OK Search completed.");
    EXPECT_EQ(device_.Take(), "");  // none of it is the client's business
    ASSERT_TRUE(driver_->parked());
    EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Adopt(alice [relay:]) -> L1",
                                               "Return(L1, reusable)"));
    EXPECT_EQ(store_.client(), nullptr);  // the pool's now
  }

  // DONE: a pooled link is borrowed and resynchronised with a listing of the
  // mailbox (a plain client), answered by `answer` (untagged lines).
  void Unpark(const std::vector<std::string>& select,
              const std::vector<std::string>& fetch) {
    device_.Type("DONE\r\n");
    EXPECT_TRUE(device_.input_held);
    EXPECT_THAT(pool_.TakeCalls(),
                ElementsAre("Borrow(alice [relay:], 2500ms)"));
    PooledLink* lent = pool_.CompleteBorrow();
    ASSERT_NE(lent, nullptr);
    FakeStoreLink* link = pool_.fake(lent);
    const std::string sent = link->TakeSent();
    EXPECT_THAT(sent, HasSubstr(" SELECT \"INBOX\"\r\n"));
    EXPECT_THAT(sent, HasSubstr(" UID FETCH 1:* (FLAGS)\r\n"));
    const std::string select_tag = sent.substr(0, sent.find(' '));
    const std::string fetch_tag =
        sent.substr(sent.find("\r\n") + 2,
                    sent.find(' ', sent.find("\r\n")) - sent.find("\r\n") - 2);
    for (const std::string& l : select) link->Reply(l);
    link->Complete(select_tag, "OK [READ-WRITE] Select completed.");
    for (const std::string& l : fetch) link->Reply(l);
    link->Complete(fetch_tag, "OK Fetch completed.");
  }

  size_t parked_messages() const { return driver_->parked_messages(); }

  int64_t now_ = 1000000;
  ShardCounters counters_;
  TimerWheel timers_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  SessionRegistry registry_;
  FakeLinkPool pool_;
  FakeStoreLink store_;
  FakeBinding device_;
  RelayDriver* driver_;
};

}  // namespace pimap::session

#endif  // PIMAP_TESTS_CORE_SESSION_RELAY_PARK_FIXTURE_H_
