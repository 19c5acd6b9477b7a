// RelayDriver tests: a regular session's relay driven the way a binding drives
// it (an imap::Framer over the device's bytes, input held while the driver
// says a command runs) against a fake store link. Each test plays the store's
// side and checks the exact bytes both sides get.
#include "core/session/relay_driver.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/imap/framer.h"
#include "core/imap/limits.h"
#include "core/session/device_driver.h"
#include "core/session/session_driver.h"
#include "core/session/store_link.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::CompressionSupport;
using ::pimap::session::testing::FakeBinding;
using ::pimap::session::testing::FakeStoreLink;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// What the store advertises by default, as a regular session shows it: no
// P-IMAP tokens (a regular session answers XFILTER and XPIMAPPREF NO).
constexpr absl::string_view kRelayCaps =
    "IMAP4rev1 QRESYNC CONDSTORE UIDPLUS LITERAL+ ENABLE IDLE XPROVISION XZIP "
    "ID XTERSE XSYNC COMPRESS=DEFLATE";

// A store link whose send queue the test fills (FakeStoreLink's is always
// empty); everything else goes to the fake underneath.
class QueuedStoreLink final : public StoreLink {
 public:
  explicit QueuedStoreLink(FakeStoreLink* inner) : inner_(inner) {}
  void SetClient(StoreLinkClient* client) override {
    inner_->SetClient(client);
  }
  void Send(absl::string_view bytes) override { inner_->Send(bytes); }
  size_t PendingOutput() const override { return pending; }
  void SetReading(bool on) override { inner_->SetReading(on); }
  const std::vector<std::string>& capabilities() const override {
    return inner_->capabilities();
  }
  void Close() override { inner_->Close(); }

  size_t pending = 0;

 private:
  FakeStoreLink* inner_;
};

class RelayDriverTest : public ::testing::Test {
 protected:
  RelayDriverTest() {
    DriverServices services;
    services.counters = &counters_;
    driver_ = new RelayDriver(services, &device_, imap::ParserLimits{},
                              "alice", StoreCredentials{"alice", "pw", ""},
                              RelayParkConfig{});
    device_.Attach(driver_);
  }

  // The store accepted the login: the relay answers it.
  void Login(StoreLink* link = nullptr) {
    driver_->Start(link != nullptr ? link : &store_, "a1");
    EXPECT_EQ(device_.Take(), absl::StrCat("a1 OK [CAPABILITY ", kRelayCaps,
                                           "] Logged in\r\n"));
    EXPECT_THAT(device_.login_done, ElementsAre(true));
  }

  ShardCounters counters_;
  FakeStoreLink store_;
  FakeBinding device_;
  RelayDriver* driver_;
};

TEST_F(RelayDriverTest, LoginTakesTheLinkAndAnswersWithTheStoreCapabilities) {
  Login();
  EXPECT_NE(store_.client(), nullptr);
  EXPECT_EQ(store_.TakeSent(), "");
  device_.Type("c CAPABILITY\r\n");
  EXPECT_EQ(device_.Take(), absl::StrCat("* CAPABILITY ", kRelayCaps,
                                         "\r\nc OK CAPABILITY completed\r\n"));
  EXPECT_EQ(store_.TakeSent(), "");  // answered by the gateway
}

TEST_F(RelayDriverTest, PipelinedCommandsAreRelayedAndAnsweredInStoreOrder) {
  Login();
  device_.Type("b1 NOOP\r\nb2 SELECT INBOX\r\nb3 NOOP\r\n");
  // Device tags go to the store unchanged; nothing waits on the gateway.
  EXPECT_EQ(store_.TakeSent(), "b1 NOOP\r\nb2 SELECT INBOX\r\nb3 NOOP\r\n");
  EXPECT_FALSE(device_.input_held);
  store_.Complete("b1", "OK NOOP completed");
  store_.Reply("* 2 EXISTS");
  store_.Complete("b2", "OK [READ-WRITE] Select completed");
  store_.Complete("b3", "OK NOOP completed");
  EXPECT_EQ(device_.Take(),
            "b1 OK NOOP completed\r\n* 2 EXISTS\r\n"
            "b2 OK [READ-WRITE] Select completed\r\nb3 OK NOOP completed\r\n");
  EXPECT_EQ(counters_.commands_relayed.load(), 3u);
  EXPECT_THAT(device_.unexpected, IsEmpty());
}

TEST_F(RelayDriverTest, LocalCommandWaitsBehindRelayedOnes) {
  Login();
  device_.Type("b1 NOOP\r\nb2 CAPABILITY\r\nb3 NOOP\r\n");
  // CAPABILITY is the gateway's: its answer must not overtake b1's, so it
  // waits, and so does everything the device sent after it.
  EXPECT_EQ(store_.TakeSent(), "b1 NOOP\r\n");
  EXPECT_EQ(device_.Take(), "");
  EXPECT_TRUE(device_.input_held);
  EXPECT_EQ(device_.pending_input(), "b3 NOOP\r\n");

  store_.Reply("* 1 EXISTS");
  EXPECT_EQ(device_.Take(), "* 1 EXISTS\r\n");
  EXPECT_TRUE(device_.input_held);
  store_.Complete("b1", "OK NOOP completed");
  EXPECT_EQ(device_.Take(),
            absl::StrCat("b1 OK NOOP completed\r\n* CAPABILITY ", kRelayCaps,
                         "\r\nb2 OK CAPABILITY completed\r\n"));
  // Input resumed: b3 went up.
  EXPECT_FALSE(device_.input_held);
  EXPECT_EQ(store_.TakeSent(), "b3 NOOP\r\n");
  EXPECT_EQ(device_.pending_input(), "");
  EXPECT_EQ(device_.running_calls.back(), std::make_pair(false, true));
}

TEST_F(RelayDriverTest, BadCommandWaitsBehindRelayedOnes) {
  Login();
  device_.Type("b1 NOOP\r\n(garbage\r\nb3 NOOP\r\n");
  EXPECT_EQ(store_.TakeSent(), "b1 NOOP\r\n");
  EXPECT_EQ(device_.Take(), "");
  EXPECT_TRUE(device_.input_held);
  store_.Complete("b1", "OK NOOP completed");
  const std::string got = device_.Take();
  EXPECT_THAT(got, ::testing::StartsWith("b1 OK NOOP completed\r\n* BAD "));
  EXPECT_EQ(store_.TakeSent(), "b3 NOOP\r\n");
  EXPECT_EQ(counters_.parse_errors.load(), 1u);
}

TEST_F(RelayDriverTest, IdleAndDoneAreRelayedEndToEnd) {
  Login();
  device_.Type("c IDLE\r\n");
  EXPECT_EQ(store_.TakeSent(), "c IDLE\r\n");
  store_.Reply("+ idling");
  store_.Reply("* 4 EXISTS");
  EXPECT_EQ(device_.Take(), "+ idling\r\n* 4 EXISTS\r\n");
  // The line that ends IDLE is the store's, verbatim, and is no command of
  // its own (no tag to wait for).
  device_.Type("DONE\r\n");
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  EXPECT_FALSE(device_.input_held);
  store_.Complete("c", "OK Idle completed");
  EXPECT_EQ(device_.Take(), "c OK Idle completed\r\n");
  // The next line is a command again, and a local one is answered at once.
  device_.Type("d CAPABILITY\r\n");
  EXPECT_THAT(device_.Take(),
              ::testing::EndsWith("d OK CAPABILITY completed\r\n"));
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(RelayDriverTest, AnythingEndingIdleGoesToTheStore) {
  Login();
  device_.Type("c IDLE\r\n");
  store_.Reply("+ idling");
  device_.Take();
  store_.TakeSent();
  // Not "DONE": the store owns the IDLE and answers it (here BAD).
  device_.Type("e CAPABILITY\r\n");
  EXPECT_EQ(store_.TakeSent(), "e CAPABILITY\r\n");
  store_.Complete("c", "BAD Expected DONE.");
  EXPECT_EQ(device_.Take(), "c BAD Expected DONE.\r\n");
  EXPECT_FALSE(device_.input_held);
}

TEST_F(RelayDriverTest, LogoutCompletionClosesTheDevice) {
  Login();
  device_.Type("z LOGOUT\r\n");
  EXPECT_EQ(store_.TakeSent(), "z LOGOUT\r\n");
  store_.Reply("* BYE Logging out");
  EXPECT_EQ(device_.closes, 0);
  store_.Complete("z", "OK Logout completed.");
  EXPECT_EQ(device_.Take(), "* BYE Logging out\r\nz OK Logout completed.\r\n");
  EXPECT_EQ(device_.closes, 1);
  EXPECT_THAT(device_.end_session, IsEmpty());
  EXPECT_TRUE(store_.closed());  // the binding detached the driver
}

TEST_F(RelayDriverTest, StoreClosingAfterLogoutIsNoError) {
  Login();
  device_.Type("z LOGOUT\r\n");
  store_.Reply("* BYE Logging out");
  store_.Lose(absl::UnavailableError("eof"));
  EXPECT_EQ(device_.Take(), "* BYE Logging out\r\n");
  EXPECT_EQ(device_.closes, 1);
  EXPECT_THAT(device_.end_session, IsEmpty());
}

TEST_F(RelayDriverTest, StoreLostBetweenResponsesEndsTheSession) {
  Login();
  device_.Type("b NOOP\r\n");
  store_.Complete("b", "OK NOOP completed");
  device_.Take();
  store_.Lose(absl::UnavailableError("eof"));
  EXPECT_EQ(device_.Take(), "* BYE Connection to the message store lost\r\n");
  EXPECT_THAT(device_.end_session,
              ElementsAre("Connection to the message store lost"));
  EXPECT_TRUE(device_.closed);
  // Nothing more comes from the driver, whatever the device sends.
  device_.Type("c NOOP\r\n");
  EXPECT_EQ(device_.Take(), "");
}

TEST_F(RelayDriverTest, LocalAnswerNeverInterleavesAStoreResponse) {
  Login();
  // Unsolicited news, partly written when the device asks the gateway
  // something: the answer waits for the end of the store's response.
  store_.client()->OnStoreBytes("* 5 EXI");
  device_.Type("c CAPABILITY\r\n");
  EXPECT_EQ(device_.Take(), "* 5 EXI");
  store_.client()->OnStoreBytes("STS\r\n");
  store_.client()->OnStoreResponseEnd("");
  EXPECT_EQ(device_.Take(), absl::StrCat("STS\r\n* CAPABILITY ", kRelayCaps,
                                         "\r\nc OK CAPABILITY completed\r\n"));
}

TEST_F(RelayDriverTest, StoreLostMidResponseNeverCompletesIt) {
  Login();
  device_.Type("b FETCH 1 BODY[]\r\n");
  store_.TakeSent();
  // Part of a response with a literal is out ...
  store_.client()->OnStoreBytes("* 1 FETCH (BODY[] {10}\r\n");
  store_.client()->OnStoreBytes("Hello");
  EXPECT_EQ(device_.Take(), "* 1 FETCH (BODY[] {10}\r\nHello");
  // ... answers of the gateway's own wait behind it ...
  device_.Type("c CAPABILITY\r\n");
  EXPECT_EQ(device_.Take(), "");
  // ... and it never ends: the device gets the goodbye and the connection
  // closes; no held-back answer and no tagged completion follow.
  store_.Lose(absl::UnavailableError("eof"));
  EXPECT_EQ(device_.Take(), "* BYE Connection to the message store lost\r\n");
  EXPECT_THAT(device_.end_session,
              ElementsAre("Connection to the message store lost"));
  EXPECT_TRUE(device_.closed);
  EXPECT_EQ(device_.Take(), "");
}

TEST_F(RelayDriverTest, SlowDevicePausesTheStoreUntilDrained) {
  Login();
  device_.Type("b FETCH 1:* BODY[]\r\n");
  store_.TakeSent();
  store_.Reply("* 1 FETCH (FLAGS ())");
  EXPECT_TRUE(store_.reading());
  device_.above_high_water = true;
  store_.Reply("* 2 FETCH (FLAGS ())");
  EXPECT_FALSE(store_.reading());
  store_.Reply("* 3 FETCH (FLAGS ())");  // already on its way: still written
  EXPECT_FALSE(store_.reading());
  device_.Drain();
  EXPECT_TRUE(store_.reading());
  store_.Complete("b", "OK Fetch completed");
  EXPECT_EQ(device_.Take(),
            "* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS ())\r\n"
            "* 3 FETCH (FLAGS ())\r\nb OK Fetch completed\r\n");
}

TEST_F(RelayDriverTest, FullStoreQueueHoldsTheDeviceUntilDrained) {
  QueuedStoreLink queued(&store_);
  Login(&queued);
  queued.pending = CommandRouter::kStoreHighWater + 1;
  device_.Type("b APPEND INBOX {5+}\r\nhello\r\nc NOOP\r\n");
  // The store's queue is over its mark after the first bytes: reading stops
  // there, mid-command; the rest waits in the binding.
  EXPECT_EQ(store_.TakeSent(), "b APPEND INBOX {5+}\r\n");
  EXPECT_TRUE(device_.input_held);
  queued.pending = 0;
  store_.client()->OnStoreDrained();
  EXPECT_FALSE(device_.input_held);
  EXPECT_EQ(store_.TakeSent(), "hello\r\nc NOOP\r\n");
  device_.ReleaseDriver();  // closes `queued`, which dies with this scope
}

TEST_F(RelayDriverTest, SynchronisingLiteralIsAcceptedAndRelayedAsLiteralPlus) {
  Login();
  device_.Type("b APPEND INBOX {5}\r\n");
  // The gateway says "+" itself; the store must not wait for a second one.
  EXPECT_EQ(device_.Take(), "+ Ready for literal data\r\n");
  EXPECT_EQ(store_.TakeSent(), "b APPEND INBOX {5+}\r\n");
  device_.Type("hello\r\n");
  EXPECT_EQ(store_.TakeSent(), "hello\r\n");
  store_.Complete("b", "OK [APPENDUID 7 1] Append completed");
  EXPECT_EQ(device_.Take(), "b OK [APPENDUID 7 1] Append completed\r\n");
}

TEST_F(RelayDriverTest, FramingErrorMidRelayIsEndedAsBadByTheStore) {
  Login();
  // A literal whose continuation line is far too long for the framer.
  device_.Type(absl::StrCat(
      "b APPEND INBOX {5+}\r\nhello ",
      std::string(imap::ParserLimits{}.max_line_bytes + 10, 'x'), "\r\n"));
  // What went up is ended with a token no grammar accepts, so the store
  // answers the command BAD under its tag; the gateway adds nothing.
  EXPECT_EQ(store_.TakeSent(), "b APPEND INBOX {5+}\r\nhello (\r\n");
  EXPECT_EQ(device_.Take(), "");
  store_.Complete("b", "BAD Error in IMAP command");
  EXPECT_EQ(device_.Take(), "b BAD Error in IMAP command\r\n");
}

TEST_F(RelayDriverTest, GatewayCommandsOfOtherSessionsAreRefused) {
  Login();
  device_.Type(
      "b XFILTER INBOX V ALL\r\nc COMPRESS DEFLATE\r\nd LOGIN x y\r\n");
  EXPECT_EQ(device_.Take(),
            "b NO [CANNOT] P-IMAP session required\r\n"
            "c NO [CANNOT] compression is not offered here\r\n"
            "d BAD LOGIN not allowed: already authenticated\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(RelayDriverTest, XpsearchNeedsAPimapSession) {
  Login();
  device_.Type("b XPSEARCH Starred FLAGGED\r\n");
  EXPECT_EQ(device_.Take(), "b NO [CANNOT] P-IMAP session required\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
}

// protocol.md §2.2 (R01 §3): XPROVISION is one of the P-IMAP commands a
// regular session may use; it has no device id to name.
TEST_F(RelayDriverTest, XprovisionIsAnsweredInARegularSession) {
  Login();
  device_.Type("p XPROVISION\r\n");
  const std::string out = device_.Take();
  EXPECT_THAT(out, ::testing::HasSubstr(
                       "* XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL"));
  EXPECT_THAT(out, ::testing::HasSubstr("p OK XPROVISION completed\r\n"));
  device_.Type("q XPROVISION phone\r\n");
  EXPECT_THAT(device_.Take(), ::testing::HasSubstr("q NO "));
  device_.Type("r XPROVISION a b c\r\n");
  EXPECT_THAT(device_.Take(), ::testing::HasSubstr("r BAD "));
  EXPECT_EQ(store_.TakeSent(), "");
}

// Issue 14: ID is the gateway's in every state (the store's answer would name
// the store), checked against RFC 2971's limits.
TEST_F(RelayDriverTest, IdIsAnsweredByTheGateway) {
  Login();
  device_.Type("b ID (\"name\" \"Thunderbird\")\r\nc ID (\"name\")\r\n");
  const std::string got = device_.Take();
  EXPECT_THAT(got,
              ::testing::StartsWith("* ID (\"name\" \"pimap\" \"version\" \""));
  EXPECT_THAT(got, ::testing::HasSubstr("\r\nb OK ID completed\r\nc BAD "));
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(RelayDriverTest, CompressIsTheBindingsAndAnsweredOnce) {
  Login();
  device_.compression = CompressionSupport::kOffered;
  device_.Type("c COMPRESS deflate\r\n");
  // The binding writes the OK itself (the last byte in clear) and switches.
  EXPECT_EQ(device_.compress_ok, "c OK DEFLATE active\r\n");
  EXPECT_EQ(device_.Take(), "c OK DEFLATE active\r\n");
  device_.Type("d COMPRESS DEFLATE\r\ne COMPRESS GZIP\r\nf COMPRESS\r\n");
  EXPECT_EQ(device_.Take(),
            "d NO [COMPRESSIONACTIVE] Compression is already active\r\n"
            "e BAD Unknown compression mechanism\r\n"
            "f BAD Unknown compression mechanism\r\n");
  EXPECT_EQ(store_.TakeSent(), "");  // never the store's business
}

TEST_F(RelayDriverTest, DetachClosesTheLinkAndSilencesTheDriver) {
  Login();
  device_.Type("b NOOP\r\n");
  driver_->Detach();
  EXPECT_TRUE(store_.closed());
  EXPECT_EQ(store_.client(), nullptr);
  store_.Complete("b", "OK NOOP completed");  // the link delivers nothing now
  EXPECT_EQ(device_.Take(), "");
}

TEST_F(RelayDriverTest, ReleasedFromInsideAStoreCallback) {
  Login();
  device_.release_on_close = true;
  device_.Type("z LOGOUT\r\n");
  // The binding frees its connection (releasing the driver) as soon as the
  // LOGOUT completes, while the driver's store callback is on the stack.
  store_.Complete("z", "OK Logout completed.");
  EXPECT_EQ(device_.closes, 1);
  EXPECT_EQ(store_.close_calls(), 1);
  EXPECT_EQ(store_.client(), nullptr);
}

TEST_F(RelayDriverTest, ReleasedFromInsideStoreLoss) {
  Login();
  device_.release_on_close = true;
  store_.client()->OnStoreBytes("* 1 FETCH (FLAGS");
  store_.Lose(absl::UnavailableError("eof"));
  EXPECT_THAT(device_.end_session,
              ElementsAre("Connection to the message store lost"));
  // As before the relay left the binding: the binding's goodbye follows the
  // part of the response that got out (the device cannot use either).
  EXPECT_EQ(device_.Take(),
            "* 1 FETCH (FLAGS* BYE Connection to the message store lost\r\n");
}

}  // namespace
}  // namespace pimap::session
