// PimapSessionDriver tests: a P-IMAP device's commands routed into its
// DeviceDriver, driven through a framer as the TCP binding does, against a
// fake store link. What is checked here is the routing around the engine:
// APPEND streamed in command order, CAPABILITY, and the one input switch the
// router and the engine share.
#include "core/session/pimap_session_driver.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/limits.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeBinding;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::SessionIdIn;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class PimapSessionDriverTest : public ::testing::Test {
 protected:
  PimapSessionDriverTest()
      : timers_(MonotonicNowMs()),
        registry_(&timers_, &counters_, &config_, &watches_, &state_) {
    driver_ =
        new PimapSessionDriver({&registry_, &counters_, &timers_}, &device_,
                               imap::ParserLimits{}, "alice", "phone");
    device_.Attach(driver_);
  }

  // A first login: the engine enables QRESYNC, then answers.
  void Login() {
    driver_->Start(&store_, "a1", "pw");
    EXPECT_EQ(store_.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    EXPECT_TRUE(device_.input_held);  // the engine holds input meanwhile
    store_.Reply("* ENABLED QRESYNC");
    store_.Complete("~p1", "OK Enabled");
    const std::string got = device_.Take();
    EXPECT_EQ(got, absl::StrCat("* SESSIONID ", SessionIdIn(got), "\r\n",
                                LoginOk("a1")));
    EXPECT_THAT(device_.login_done, ElementsAre(true));
    EXPECT_FALSE(device_.input_held);
  }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  SessionRegistry registry_;
  FakeStoreLink store_;
  FakeBinding device_;
  PimapSessionDriver* driver_;
};

TEST_F(PimapSessionDriverTest, CapabilityIsTheSessionsOwn) {
  Login();
  device_.Type("c CAPABILITY\r\n");
  EXPECT_EQ(device_.Take(), absl::StrCat("* CAPABILITY ", testing::kCaps,
                                         "\r\nc OK CAPABILITY completed\r\n"));
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(PimapSessionDriverTest, AppendStreamsAndLaterCommandsWaitInOrder) {
  Login();
  device_.Type("b APPEND INBOX {5}\r\n");
  // The device's own tag and literal go to the store as they come.
  EXPECT_EQ(device_.Take(), "+ Ready for literal data\r\n");
  device_.Type("hello\r\nc NOOP\r\nd NOOP\r\n");
  EXPECT_EQ(store_.TakeSent(), "b APPEND INBOX {5+}\r\nhello\r\n");
  // NOOP is the engine's: it waits for the APPEND, and so does the input.
  EXPECT_TRUE(device_.input_held);
  EXPECT_EQ(device_.pending_input(), "d NOOP\r\n");

  store_.Complete("b", "OK [APPENDUID 7 20] Append completed");
  EXPECT_EQ(device_.Take(), "b OK [APPENDUID 7 20] Append completed\r\n");
  // The NOOP runs now; the router lets go of input but the engine holds it.
  const std::string noop_tag = store_.last_tag();
  EXPECT_EQ(store_.TakeSent(), absl::StrCat(noop_tag, " NOOP\r\n"));
  EXPECT_TRUE(device_.input_held);
  EXPECT_EQ(device_.pending_input(), "d NOOP\r\n");

  store_.Complete(noop_tag, "OK NOOP completed");
  EXPECT_EQ(device_.Take(), "c OK NOOP completed\r\n");
  // Both let go: the next command is read.
  EXPECT_EQ(device_.pending_input(), "");
  EXPECT_EQ(store_.TakeSent(), absl::StrCat(store_.last_tag(), " NOOP\r\n"));
  EXPECT_THAT(device_.unexpected, IsEmpty());
}

TEST_F(PimapSessionDriverTest, TerseFromBeforeLoginAndThroughTheEngine) {
  // XTERSE was on before login (the binding carries it): the login's answer
  // is terse already, its code kept.
  driver_->SetTerse(true);
  driver_->Start(&store_, "a1", "pw");
  store_.TakeSent();
  store_.Reply("* ENABLED QRESYNC");
  store_.Complete("~p1", "OK Enabled");
  const std::string got = device_.Take();
  EXPECT_EQ(got,
            absl::StrCat("* SESSIONID ", SessionIdIn(got),
                         "\r\na1 OK [CAPABILITY ", testing::kCaps, "]\r\n"));
  // The engine's own answers and a streamed APPEND's completion.
  device_.Type("g XSETPIMAPPREF PIMAP_EVENT_FILTER new\r\n");
  EXPECT_EQ(device_.Take(), "g OK\r\n");
  device_.Type("b APPEND INBOX {5+}\r\nhello\r\n");
  store_.Complete("b", "OK [APPENDUID 7 20] Append completed");
  EXPECT_EQ(device_.Take(), "b OK [APPENDUID 7 20]\r\n");
  device_.Type("t XTERSE OFF\r\ng XSETPIMAPPREF PIMAP_EVENT_FILTER all\r\n");
  EXPECT_EQ(device_.Take(),
            "t OK XTERSE OFF\r\ng OK XSETPIMAPPREF completed\r\n");
}

TEST_F(PimapSessionDriverTest, ExtensionCommandsGoToTheEngine) {
  Login();
  device_.Type("g XSETPIMAPPREF PIMAP_EVENT_FILTER new\r\n");
  EXPECT_EQ(device_.Take(), "g OK XSETPIMAPPREF completed\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(PimapSessionDriverTest, LogoutClosesTheDeviceAndReleasesSafely) {
  Login();
  device_.release_on_close = true;
  device_.Type("z LOGOUT\r\n");
  EXPECT_EQ(store_.TakeSent(), "z LOGOUT\r\n");
  store_.Reply("* BYE Logging out");
  // The binding frees the connection from inside the engine's call.
  store_.Complete("z", "OK Logout completed.");
  EXPECT_EQ(device_.Take(), "* BYE Logging out\r\nz OK Logout completed.\r\n");
  EXPECT_EQ(device_.closes, 1);
  EXPECT_TRUE(store_.closed());
}

}  // namespace
}  // namespace pimap::session
