// XTERSE tests (core/session/terse.h, command_router.cc): the rewriting of one
// status line and of a response stream cut anywhere (literals untouched), and
// the switch on the sessions the router carries: a router before login, and a
// regular session's relay whose store status lines lose their text on the
// way through.
#include "core/session/terse.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/imap/limits.h"
#include "core/session/command_router.h"
#include "core/session/relay_driver.h"
#include "core/session/session_login.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeBinding;
using ::pimap::session::testing::FakeStoreLink;
using ::testing::HasSubstr;

TEST(TerseLineTest, StatusResponsesLoseTheirTextAndKeepTheirCode) {
  EXPECT_EQ(TerseLine("A002 OK FETCH completed"), "A002 OK");
  EXPECT_EQ(TerseLine("A003 OK [APPENDUID 1 140] Append completed."),
            "A003 OK [APPENDUID 1 140]");
  EXPECT_EQ(TerseLine("a no [TRYCREATE] Mailbox doesn't exist: X"),
            "a no [TRYCREATE]");
  EXPECT_EQ(TerseLine("b BAD Error in IMAP command"), "b BAD");
  EXPECT_EQ(TerseLine("* OK [UIDVALIDITY 1700000000] UIDs valid"),
            "* OK [UIDVALIDITY 1700000000]");
  EXPECT_EQ(TerseLine("* OK Still here"), "* OK");
  EXPECT_EQ(TerseLine("* BYE Autologout"), "* BYE");
  EXPECT_EQ(TerseLine("* PREAUTH [CAPABILITY IMAP4rev1] hi"),
            "* PREAUTH [CAPABILITY IMAP4rev1]");
  EXPECT_EQ(TerseLine("A1 OK"), "A1 OK");
  // A "]" inside a quoted string does not end the code.
  EXPECT_EQ(TerseLine("c NO [BADCHARSET (\"x]y\" UTF-8)] No such charset"),
            "c NO [BADCHARSET (\"x]y\" UTF-8)]");
  // A code without its "]" is left alone.
  EXPECT_EQ(TerseLine("d OK [ALERT oops"), "d OK [ALERT oops");
}

TEST(TerseLineTest, DataResponsesAndContinuationsAreUntouched) {
  for (absl::string_view line :
       {"* 3 EXISTS", "* 1 FETCH (UID 4 FLAGS (\\Seen))", "* SEARCH 1 2 3",
        "* LIST (\\HasNoChildren) \"/\" INBOX", "+ Ready for literal data",
        "+ idling", "* CAPABILITY IMAP4rev1 XTERSE", "* BYEBYE x",
        "tag BYE not tagged", "* OKAY fine", "* FLAGS (\\Answered)"}) {
    EXPECT_EQ(TerseLine(line), line);
  }
}

TEST(XterseArgsTest, OnOffOnly) {
  EXPECT_EQ(ParseXterseArgs("ON"), true);
  EXPECT_EQ(ParseXterseArgs("off"), false);
  EXPECT_EQ(ParseXterseArgs(""), std::nullopt);
  EXPECT_EQ(ParseXterseArgs("ON OFF"), std::nullopt);
  EXPECT_EQ(ParseXterseArgs("YES"), std::nullopt);
}

// A stream with every kind of line: status lines, a FETCH with a literal
// whose bytes look like status lines, a continuation of the FETCH line after
// its literal with a second literal8, and a tagged completion.
constexpr absl::string_view kStream =
    "* OK [UIDVALIDITY 7] UIDs valid\r\n"
    "* 2 FETCH (UID 9 BODY[] {34}\r\n"
    "A1 OK not a status\r\n* BYE no!\r\n"
    " BINARY[1] ~{5}\r\n"
    "a\r\nb\n FLAGS ())\r\n"
    "* 3 EXISTS\r\n"
    "+ go ahead\r\n"
    "A1 OK [READ-WRITE] Select completed (0.001 secs).\r\n";
constexpr absl::string_view kTerseStream =
    "* OK [UIDVALIDITY 7]\r\n"
    "* 2 FETCH (UID 9 BODY[] {34}\r\n"
    "A1 OK not a status\r\n* BYE no!\r\n"
    " BINARY[1] ~{5}\r\n"
    "a\r\nb\n FLAGS ())\r\n"
    "* 3 EXISTS\r\n"
    "+ go ahead\r\n"
    "A1 OK [READ-WRITE]\r\n";

TEST(TerseRewriterTest, WholeStreamKeepsLiteralsAndDataResponses) {
  EXPECT_EQ(TerseResponses(kStream), kTerseStream);
}

TEST(TerseRewriterTest, AnyCutGivesTheSameBytes) {
  // Every split into two pieces, and byte by byte.
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    TerseRewriter rewriter;
    std::string out;
    rewriter.Feed(kStream.substr(0, cut), &out);
    rewriter.Feed(kStream.substr(cut), &out);
    EXPECT_TRUE(rewriter.AtResponseStart()) << cut;
    EXPECT_EQ(out, kTerseStream) << "cut at " << cut;
  }
  TerseRewriter rewriter;
  std::string out;
  for (char c : kStream) rewriter.Feed(absl::string_view(&c, 1), &out);
  EXPECT_EQ(out, kTerseStream);
}

TEST(TerseRewriterTest, ZeroLengthLiteralAndNonSynchronisingHeader) {
  EXPECT_EQ(TerseResponses("* 1 FETCH (BODY[] {0}\r\n)\r\na OK done\r\n"),
            "* 1 FETCH (BODY[] {0}\r\n)\r\na OK\r\n");
  EXPECT_EQ(TerseResponses("* 1 FETCH (BODY[] {3+}\r\nx\r\n)\r\na NO x\r\n"),
            "* 1 FETCH (BODY[] {3+}\r\nx\r\n)\r\na NO\r\n");
}

// "{n}" at the end of a status line's text (an echoed mailbox name) or of a
// continuation is text, not a literal: what follows is rewritten as ever. A
// literal inside a code (BADCHARSET's astrings) is one.
TEST(TerseRewriterTest, BracesInStatusTextAreNoLiteral) {
  EXPECT_EQ(TerseResponses("a NO [NONEXISTENT] No mailbox x{5}\r\n"
                           "b NO [TRYCREATE] again\r\n"
                           "+ send {3}\r\n"
                           "c OK done\r\n"),
            "a NO [NONEXISTENT]\r\nb NO [TRYCREATE]\r\n+ send {3}\r\nc OK\r\n");
  EXPECT_EQ(TerseResponses("* NO [BADCHARSET ({5}\r\nUTF-8)] Unknown\r\n"
                           "a NO failed\r\n"),
            "* NO [BADCHARSET ({5}\r\nUTF-8)] Unknown\r\na NO\r\n");
}

TEST(TerseRewriterTest, LongStatusLinePassesUnchangedPastTheBound) {
  const std::string text(TerseRewriter::kMaxHeldBytes + 10, 'x');
  const std::string line = absl::StrCat("a OK ", text, "\r\n* 1 EXISTS\r\n");
  // Arriving in pieces, more than the bound without its CRLF: not held.
  TerseRewriter pieces;
  std::string passed;
  pieces.Feed(absl::string_view(line).substr(0, text.size()), &passed);
  EXPECT_FALSE(passed.empty());
  pieces.Feed(absl::string_view(line).substr(text.size()), &passed);
  EXPECT_TRUE(passed == line);
  // Whole in one piece it is in memory anyway: rewritten.
  EXPECT_EQ(TerseResponses(line), "a OK\r\n* 1 EXISTS\r\n");
  // A long data line is never held.
  TerseRewriter rewriter;
  std::string out;
  const std::string search =
      absl::StrCat("* SEARCH ", std::string(100000, '1'));
  rewriter.Feed(search, &out);
  EXPECT_EQ(out, search);
}

// ---- The switch, before login
// ---------------------------------------------------------

class PreLoginRouter final : public CommandRouter {
 public:
  PreLoginRouter(ShardCounters* counters, DeviceOutput* output)
      : CommandRouter(counters, output, imap::ParserLimits{}) {}

 private:
  void Execute(const imap::Command& command) override {
    PreAuthStep step = ExecutePreAuth(command, {false, true, true});
    Write(std::move(step.response));
  }
  bool WritesThroughOutput() const override { return true; }
};

TEST(XterseRouterTest, OnOffAndBadArguments) {
  ShardCounters counters;
  FakeBinding device;
  auto* router = new PreLoginRouter(&counters, &device);
  device.Attach(router);
  device.Type("a NOOP\r\nb XTERSE ON\r\nc NOOP\r\nd XTERSE MAYBE\r\n");
  EXPECT_EQ(device.Take(), "a OK NOOP completed\r\nb OK\r\nc OK\r\nd BAD\r\n");
  EXPECT_TRUE(router->Terse());
  // Data responses keep everything.
  device.Type("e CAPABILITY\r\n");
  EXPECT_THAT(device.Take(), HasSubstr("AUTH=PLAIN XZIP XTERSE\r\ne OK\r\n"));
  // XZIP's answer and its inner command's are terse too.
  device.Type("x XZIP n NOOP\r\n");
  const std::string zipped = device.Take();
  EXPECT_THAT(zipped, ::testing::EndsWith("\r\nx OK\r\n"));
  device.Type("f XTERSE OFF\r\ng NOOP\r\nh XTERSE\r\n");
  EXPECT_EQ(device.Take(),
            "f OK XTERSE OFF\r\ng OK NOOP completed\r\n"
            "h BAD Usage: XTERSE ON|OFF\r\n");
  EXPECT_FALSE(router->Terse());
}

// ---- A regular session: the store's lines on the way through
// -----------------------------------------------------------------------------

class XterseRelayTest : public ::testing::Test {
 protected:
  XterseRelayTest() {
    DriverServices services;
    services.counters = &counters_;
    driver_ =
        new RelayDriver(services, &device_, imap::ParserLimits{}, "alice",
                        StoreCredentials{"alice", "pw", ""}, RelayParkConfig{});
    device_.Attach(driver_);
  }

  ShardCounters counters_;
  FakeStoreLink store_;
  FakeBinding device_;
  RelayDriver* driver_;
};

TEST_F(XterseRelayTest, LoginAnswerIsTerseWhenCarriedFromBeforeLogin) {
  driver_->SetTerse(true);
  driver_->Start(&store_, "a1");
  const std::string login = device_.Take();
  EXPECT_THAT(login, ::testing::StartsWith("a1 OK [CAPABILITY IMAP4rev1 "));
  EXPECT_THAT(login, ::testing::EndsWith("]\r\n"));
}

TEST_F(XterseRelayTest, StoreStatusLinesLoseTextLiteralsPassUntouched) {
  driver_->Start(&store_, "a1");
  device_.Take();
  device_.Type("t XTERSE ON\r\ns SELECT INBOX\r\n");
  EXPECT_EQ(device_.Take(), "t OK\r\n");
  EXPECT_EQ(store_.TakeSent(), "s SELECT INBOX\r\n");
  store_.Reply("* OK [UIDVALIDITY 42] UIDs valid");
  store_.Reply("* 2 EXISTS");
  store_.Complete("s",
                  "OK [READ-WRITE] Select completed (0.001 + 0.000 secs).");
  EXPECT_EQ(device_.Take(),
            "* OK [UIDVALIDITY 42]\r\n* 2 EXISTS\r\ns OK [READ-WRITE]\r\n");

  // A FETCH whose literal holds status-looking lines, cut mid-literal and
  // mid-completion as a real link delivers it.
  device_.Type("f FETCH 1 BODY[]\r\n");
  store_.TakeSent();
  store_.ReplyPieces(
      {"* 1 FETCH (BODY[] {26}\r\nf OK fake\r\n* BYE ", "fake\r\n", ")\r\n"});
  store_.ReplyPieces({"f OK Fe", "tch completed.\r\n"}, "f");
  EXPECT_EQ(device_.Take(),
            "* 1 FETCH (BODY[] {26}\r\nf OK fake\r\n* BYE fake\r\n)\r\n"
            "f OK\r\n");

  device_.Type("n NOOP\r\n");
  store_.Complete("n", "NO [ALERT] Quota exceeded, really");
  EXPECT_EQ(device_.Take(), "n NO [ALERT]\r\n");

  device_.Type("o XTERSE OFF\r\np NOOP\r\n");
  EXPECT_EQ(device_.Take(), "o OK XTERSE OFF\r\n");
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\np NOOP\r\n");
  store_.Complete("p", "OK NOOP completed.");
  EXPECT_EQ(device_.Take(), "p OK NOOP completed.\r\n");
}

TEST_F(XterseRelayTest, XterseWaitsForTheRelayedCommandsBeforeIt) {
  driver_->Start(&store_, "a1");
  device_.Take();
  // b's completion arrives after XTERSE ON was read: it keeps its text, as
  // XTERSE runs in command order.
  device_.Type("b NOOP\r\nt XTERSE ON\r\n");
  store_.Complete("b", "OK NOOP completed.");
  EXPECT_EQ(device_.Take(), "b OK NOOP completed.\r\nt OK\r\n");
  EXPECT_TRUE(driver_->Terse());
}

}  // namespace
}  // namespace pimap::session
