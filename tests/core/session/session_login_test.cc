// Issue 14 on the shared login path (core/session/session_login.h): ID before
// login (client_id.h), what is advertised before and after login
// (capabilities.h), the login throttle (login_throttle.h) on its own and in
// StartSessionLogin, against a fake store connector that counts the store
// connections a login costs.
#include "core/session/session_login.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/session/capabilities.h"
#include "core/session/client_id.h"
#include "core/session/login_throttle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"

namespace pimap::session {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A whole command as the binding's router would parse it.
imap::Command Parse(absl::string_view text) {
  imap::CommandAssembler assembler(imap::ParserLimits{}, 1 << 20);
  imap::Framer framer(imap::Framer::Mode::kCommands, imap::ParserLimits{});
  struct Visitor : imap::Framer::Visitor {
    imap::CommandAssembler* a;
    bool OnLine(absl::string_view line,
                const imap::LiteralHeader* literal) override {
      EXPECT_TRUE(a->AddLine(line, literal).ok());
      return true;
    }
    bool OnLiteralData(absl::string_view chunk) override {
      EXPECT_TRUE(a->AddLiteralData(chunk).ok());
      return true;
    }
    bool OnEnd() override { return true; }
    bool OnError(const imap::FrameError&) override { return true; }
  } visitor;
  visitor.a = &assembler;
  framer.Feed(text, visitor);
  absl::StatusOr<imap::Command> command = assembler.Finish();
  EXPECT_TRUE(command.ok()) << command.status();
  return command.ok() ? *command : imap::Command{};
}

// pimapd's default rule (--user-name-format %Lu).
const imap::UserNameFormat kDefaultRule;

PreAuthStep PreAuth(absl::string_view text) {
  return ExecutePreAuth(Parse(text), {false, true, true, &kDefaultRule});
}

// ---- The user name under the store's rule
// ----------------------------------------

TEST(UserNameCaseTest, FoldedByDefaultTheDeviceKeepsItsCase) {
  PreAuthStep login = PreAuth("a LOGIN Alice#Phone@Example.ORG pw\r\n");
  ASSERT_EQ(login.action, PreAuthStep::Action::kLogin);
  EXPECT_EQ(login.login.name.user, "alice@example.org");
  EXPECT_EQ(login.login.name.device, "Phone");
  // AUTHENTICATE PLAIN (SASL-IR): "\0ALICE\0pw".
  PreAuthStep sasl = PreAuth("b AUTHENTICATE PLAIN AEFMSUNFAHB3\r\n");
  ASSERT_EQ(sasl.action, PreAuthStep::Action::kLogin);
  EXPECT_EQ(sasl.login.name.user, "alice");
}

TEST(UserNameCaseTest, KeptWithoutARule) {
  PreAuthStep login = ExecutePreAuth(Parse("a LOGIN Alice pw\r\n"),
                                     {false, true, true, nullptr});
  ASSERT_EQ(login.action, PreAuthStep::Action::kLogin);
  EXPECT_EQ(login.login.name.user, "Alice");
}

TEST(UserNameCaseTest, AStoreThatStripsTheDomain) {
  const imap::UserNameFormat rule = *imap::UserNameFormat::Parse("%Ln");
  PreAuthStep login =
      ExecutePreAuth(Parse("a LOGIN Alice#Phone@Example.ORG pw\r\n"),
                     {false, true, true, &rule});
  ASSERT_EQ(login.action, PreAuthStep::Action::kLogin);
  EXPECT_EQ(login.login.name.user, "alice");
  EXPECT_EQ(login.login.name.device, "Phone");
  // SASL PLAIN takes the same way: "\0Bob@x\0pw".
  PreAuthStep sasl =
      ExecutePreAuth(Parse("b AUTHENTICATE PLAIN AEJvYkB4AHB3\r\n"),
                     {false, true, true, &rule});
  ASSERT_EQ(sasl.action, PreAuthStep::Action::kLogin);
  EXPECT_EQ(sasl.login.name.user, "bob");
}

// ---- ID ---------------------------------------------------------------------

// A login name that does not parse is a failed login like a wrong password:
// counted and logged (event=login.fail, for fail2ban), by LOGIN and by
// AUTHENTICATE PLAIN alike.
TEST(BadLoginNameTest, CountedAsAFailedLogin) {
  PreAuthStep step = PreAuth("a1 LOGIN \"alice#\" pw\r\n");
  EXPECT_THAT(step.response, StartsWith("a1 NO [AUTHENTICATIONFAILED]"));
  EXPECT_TRUE(step.auth_failure);
  EXPECT_EQ(step.auth_failure_reason, "bad_login_name");
  EXPECT_EQ(step.auth_failure_user, "alice#");
  // "\0#phone\0pw": an empty user before the device.
  step = PreAuth("a2 AUTHENTICATE PLAIN ACNwaG9uZQBwdw==\r\n");
  EXPECT_THAT(step.response, StartsWith("a2 NO [AUTHENTICATIONFAILED]"));
  EXPECT_TRUE(step.auth_failure);
  EXPECT_EQ(step.auth_failure_reason, "bad_login_name");
  // What is logged of it is cut short.
  step =
      PreAuth(absl::StrCat("a3 LOGIN \"", std::string(300, 'x'), "#\" pw\r\n"));
  EXPECT_TRUE(step.auth_failure);
  EXPECT_EQ(step.auth_failure_user.size(), 64u);
}

TEST(IdTest, AnsweredBeforeLoginAndTheFieldsKept) {
  PreAuthStep step = PreAuth(
      "a ID (\"name\" \"iOS Mail\" \"version\" \"17.1\" \"os\" NIL)\r\n");
  EXPECT_EQ(step.action, PreAuthStep::Action::kRespond);
  EXPECT_THAT(step.response,
              StartsWith("* ID (\"name\" \"pimap\" \"version\" "));
  EXPECT_THAT(step.response, HasSubstr("\r\na OK ID completed\r\n"));
  ASSERT_TRUE(step.client_id.has_value());
  EXPECT_EQ(*step.client_id,
            "\"name\" \"iOS Mail\" \"version\" \"17.1\" \"os\" NIL");
  step = PreAuth("b ID NIL\r\n");
  EXPECT_THAT(step.response, HasSubstr("b OK ID completed"));
  EXPECT_EQ(step.client_id, std::string());
}

TEST(IdTest, TheRfcLimitsAreEnforcedWithBad) {
  std::string pairs;
  for (int i = 0; i < 31; ++i) absl::StrAppend(&pairs, " \"f", i, "\" \"v\"");
  const std::string too_many = absl::StrCat("a ID (", pairs.substr(1), ")\r\n");
  const std::string long_field =
      absl::StrCat("b ID (\"", std::string(31, 'f'), "\" \"v\")\r\n");
  const std::string long_value = absl::StrCat("c ID (\"name\" {1025+}\r\n",
                                              std::string(1025, 'v'), ")\r\n");
  for (const std::string& bad :
       {too_many, long_field, long_value, std::string("d ID (\"name\")\r\n"),
        std::string("e ID \"name\"\r\n"), std::string("f ID\r\n"),
        std::string("g ID (\"name\" (\"x\"))\r\n")}) {
    PreAuthStep step = PreAuth(bad);
    EXPECT_THAT(step.response, HasSubstr(" BAD ")) << bad;
    EXPECT_FALSE(step.client_id.has_value()) << bad;
  }
  // Right at the limits is fine.
  std::string thirty;
  for (int i = 0; i < 30; ++i) absl::StrAppend(&thirty, " \"f", i, "\" \"v\"");
  EXPECT_THAT(
      PreAuth(absl::StrCat("h ID (", thirty.substr(1), ")\r\n")).response,
      HasSubstr("h OK"));
  EXPECT_THAT(
      PreAuth(absl::StrCat("i ID (\"", std::string(30, 'f'), "\" {1024+}\r\n",
                           std::string(1024, 'v'), ")\r\n"))
          .response,
      HasSubstr("i OK"));
}

TEST(IdTest, ProxyFieldsOfTheClientAreNeverPassedOn) {
  PreAuthStep step = PreAuth(
      "a ID (\"X-Originating-IP\" \"10.9.9.9\" \"name\" \"mail\" "
      "\"x-connected-ip\" \"10.0.0.1\" \"x-session-id\" \"s\" "
      "\"x-forward-user\" \"root\")\r\n");
  EXPECT_THAT(step.response, HasSubstr("a OK"));
  EXPECT_EQ(step.client_id, "\"name\" \"mail\"");
}

TEST(IdTest, ValuesAreSentOnAsQuotedStrings) {
  // 8-bit and CR/LF cannot be quoted: they become '?' (the store only logs
  // them); quotes and backslashes are escaped.
  PreAuthStep step = PreAuth(
      "a ID (\"name\" {9+}\r\nJos\xc3\xa9\r\nA\\ \"q\" \"a\\\"b\\\\\")\r\n");
  ASSERT_TRUE(step.client_id.has_value()) << step.response;
  EXPECT_EQ(*step.client_id, "\"name\" \"Jos????A\\\\\" \"q\" \"a\\\"b\\\\\"");
}

// ---- Capabilities -----------------------------------------------------------

TEST(CapabilitiesTest, LiteralMinusAndIdBeforeLogin) {
  const std::string caps = PreAuthCapabilities(true, false, true);
  EXPECT_THAT(caps, HasSubstr(" LITERAL- "));
  EXPECT_THAT(caps, Not(HasSubstr("LITERAL+")));
  EXPECT_THAT(caps, HasSubstr(" ID"));
}

TEST(CapabilitiesTest, PimapTokensOnlyInPimapSessions) {
  const std::vector<std::string> store = {"IMAP4rev1", "LITERAL+", "ID",
                                          "IDLE"};
  const std::string plain = PostAuthCapabilities(store, /*pimap=*/false);
  EXPECT_THAT(plain, Not(HasSubstr("XFILTER")));
  EXPECT_THAT(plain, Not(HasSubstr("XPIMAPPREF")));
  // XPROVISION is allowed in a regular session (protocol.md §2.2).
  EXPECT_THAT(plain, HasSubstr(" XZIP"));
  EXPECT_EQ(plain,
            "IMAP4rev1 LITERAL+ IDLE XPROVISION XZIP ID XTERSE XSYNC "
            "COMPRESS=DEFLATE");
  const std::string pimap = PostAuthCapabilities(store, /*pimap=*/true);
  EXPECT_THAT(pimap, HasSubstr(" XFILTER XPIMAPPREF XPROVISION XZIP ID"));
  // XCONVERT only in a P-IMAP session (device_driver_convert.cc).
  EXPECT_THAT(pimap, HasSubstr(" XCONVERT"));
  EXPECT_THAT(plain, Not(HasSubstr("XCONVERT")));
  // ID is the gateway's own: listed even when the store lacks it.
  EXPECT_THAT(PostAuthCapabilities({"IMAP4rev1"}), HasSubstr(" ID"));
}

// ---- LoginThrottle on its own
// -------------------------------------------------

Endpoint Ip(uint8_t last) {
  Endpoint e;
  e.family = 4;
  e.ip = {127, 0, 0, last};
  e.port = 40000;
  return e;
}

LoginThrottleConfig Config() {
  LoginThrottleConfig c;
  c.base_delay_ms = 100;
  c.max_failures = 4;
  c.window_ms = 10000;
  return c;
}

using Kind = LoginThrottle::Verdict::Kind;

TEST(LoginThrottleTest, DelaysDoubleThenAttemptsAreRefused) {
  LoginThrottle t(Config());
  int64_t now = 1000;
  EXPECT_EQ(t.Check("alice", Ip(2), now).kind, Kind::kGo);
  t.Failed("alice", Ip(2), now);
  // 100 ms after the first failure, 200 after the second, 400 after the third.
  for (int64_t delay : {100, 200, 400}) {
    LoginThrottle::Verdict v = t.Check("alice", Ip(2), now);
    EXPECT_EQ(v.kind, Kind::kWait);
    EXPECT_EQ(v.wait_ms, delay);
    now += v.wait_ms;
    t.Failed("alice", Ip(2), now);
  }
  // The fourth failure is the threshold: refused, whatever the wait.
  EXPECT_EQ(t.Check("alice", Ip(2), now + 5000).kind, Kind::kRefuse);
  // ... until the window has passed since the last failure.
  EXPECT_EQ(t.Check("alice", Ip(2), now + 10000).kind, Kind::kGo);
}

TEST(LoginThrottleTest, SuccessStartsOver) {
  LoginThrottle t(Config());
  t.Failed("alice", Ip(2), 0);
  t.Failed("alice", Ip(2), 0);
  EXPECT_EQ(t.failures("alice", Ip(2), 0), 2);
  t.Succeeded("alice", Ip(2));
  EXPECT_EQ(t.failures("alice", Ip(2), 0), 0);
  EXPECT_EQ(t.Check("alice", Ip(2), 0).kind, Kind::kGo);
}

TEST(LoginThrottleTest, UsersAndIpsCountApart) {
  LoginThrottle t(Config());
  // Four users fail once each from one IP: the IP is at the threshold.
  for (const char* user : {"a", "b", "c", "d"}) t.Failed(user, Ip(3), 0);
  EXPECT_EQ(t.Check("e", Ip(3), 1).kind, Kind::kRefuse);
  // The same user from another IP is only slowed by its own count.
  LoginThrottle::Verdict v = t.Check("a", Ip(4), 50);
  EXPECT_EQ(v.kind, Kind::kWait);
  EXPECT_EQ(v.wait_ms, 50);
  // A user's count ignores the case of its name.
  t.Failed("Bob", Ip(5), 0);
  EXPECT_EQ(t.failures("bob", Endpoint(), 0), 1);
  // Without a known address only the user counts.
  EXPECT_EQ(t.Check("zed", Endpoint(), 0).kind, Kind::kGo);
}

TEST(LoginThrottleTest, ConcurrentAttemptsAreSpaced) {
  LoginThrottle t(Config());
  t.Failed("alice", Ip(2), 0);
  // Three connections try at once: each takes the next turn.
  EXPECT_EQ(t.Check("alice", Ip(2), 0).wait_ms, 100);
  EXPECT_EQ(t.Check("alice", Ip(2), 0).wait_ms, 200);
  EXPECT_EQ(t.Check("alice", Ip(2), 0).wait_ms, 300);
}

TEST(LoginThrottleTest, TablesAreBounded) {
  LoginThrottleConfig c = Config();
  c.max_entries = 3;
  LoginThrottle t(c);
  for (int i = 0; i < 10; ++i) {
    t.Failed(absl::StrCat("user", i, std::string(1000, 'x')), Ip(i), i);
  }
  EXPECT_EQ(t.users(), 3u);
  EXPECT_EQ(t.ips(), 3u);
  // The least recently failed went first.
  EXPECT_EQ(t.failures(absl::StrCat("user9", std::string(1000, 'x')), Ip(9), 9),
            1);
  EXPECT_EQ(t.failures(absl::StrCat("user0", std::string(1000, 'x')), Ip(0), 9),
            0);
}

TEST(LoginThrottleTest, OffWhenTheDelayIsZero) {
  LoginThrottleConfig c = Config();
  c.base_delay_ms = 0;
  LoginThrottle t(c);
  for (int i = 0; i < 10; ++i) t.Failed("alice", Ip(2), 0);
  EXPECT_EQ(t.Check("alice", Ip(2), 0).kind, Kind::kGo);
  EXPECT_EQ(t.users(), 0u);
}

// ---- The throttle in StartSessionLogin
// ------------------------------------------

// A store that refuses every password, counting its connections.
class RefusingStore final : public StoreConnector {
 public:
  void Login(const StoreCredentials& credentials, LoginCallback done) override {
    ++logins;
    origins.push_back(credentials.origin);
    client_ids.push_back(credentials.client_id);
    done(absl::UnauthenticatedError("bad password"));
  }
  int logins = 0;
  std::vector<ClientAddress> origins;
  std::vector<std::string> client_ids;
};

class Client final : public LoginClient {
 public:
  bool OnAuthenticated(const std::string&, const std::string&,
                       absl::string_view) override {
    return true;
  }
  void OnSessionDriver(SessionDriver*) override {}
  void OnLoginFailed(std::string response) override {
    answers.push_back(std::move(response));
  }
  std::vector<std::string> answers;
};

class ThrottledLoginTest : public ::testing::Test {
 protected:
  ThrottledLoginTest() : timers_(MonotonicNowMs()), throttle_(Config()) {
    services_.driver.counters = &counters_;
    services_.driver.timers = &timers_;
    services_.connector = &store_;
    services_.throttle = &throttle_;
  }

  void TryLogin(absl::string_view tag, uint8_t ip) {
    PendingLogin login{std::string(tag), {"alice", ""}, "wrong"};
    login.client.peer = Ip(ip);
    login.client_id = "\"name\" \"test\"";
    StartSessionLogin(services_, &output_, std::move(login), alive_, &client_);
  }
  // The throttle reads the real clock; its holds are on this wheel.
  void Wait(int64_t ms) { timers_.Advance(timers_.now_ms() + ms); }

  ShardCounters counters_;
  TimerWheel timers_;
  LoginThrottle throttle_;
  RefusingStore store_;
  Client client_;
  testing::FakeBinding output_;
  LoginServices services_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

TEST_F(ThrottledLoginTest, RetriesWaitOnATimerAndAreRefusedWithoutTheStore) {
  TryLogin("a1", 2);
  ASSERT_EQ(store_.logins, 1);
  EXPECT_THAT(client_.answers.back(),
              HasSubstr("a1 NO [AUTHENTICATIONFAILED]"));
  // The client's address and ID fields went with the store login.
  EXPECT_EQ(store_.origins.back().peer, Ip(2));
  EXPECT_EQ(store_.client_ids.back(), "\"name\" \"test\"");

  // The retry waits for the delay: no store connection meanwhile.
  TryLogin("a2", 2);
  EXPECT_EQ(store_.logins, 1);
  EXPECT_EQ(client_.answers.size(), 1u);
  EXPECT_EQ(counters_.logins_delayed.load(), 1u);
  Wait(150);
  EXPECT_EQ(store_.logins, 2);
  EXPECT_THAT(client_.answers.back(),
              HasSubstr("a2 NO [AUTHENTICATIONFAILED]"));

  for (const char* tag : {"a3", "a4"}) {
    TryLogin(tag, 2);
    Wait(1000);
  }
  EXPECT_EQ(store_.logins, 4);
  // At the threshold: refused at once, and the store never hears of it.
  TryLogin("a5", 2);
  EXPECT_EQ(store_.logins, 4);
  EXPECT_THAT(client_.answers.back(), HasSubstr("a5 NO [UNAVAILABLE]"));
  EXPECT_EQ(counters_.logins_refused.load(), 1u);
}

TEST_F(ThrottledLoginTest, AWaitingLoginWhoseClientLeftCostsNothing) {
  TryLogin("a1", 2);
  TryLogin("a2", 2);  // waits
  alive_.reset();
  Wait(1000);
  EXPECT_EQ(store_.logins, 1);
  EXPECT_EQ(client_.answers.size(), 1u);
}

}  // namespace
}  // namespace pimap::session
