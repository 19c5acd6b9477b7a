// XSYNC tests (core/session/xsync.h, command_router_xsync.cc): the command's
// syntax and plan, and the group run on a regular session's relay against a
// fake store: steps one by one, their data passed on, one answer at the end,
// a failing step or a changed UIDVALIDITY reported and stopping the group.
#include "core/session/xsync.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/imap/command.h"
#include "core/imap/limits.h"
#include "core/session/relay_driver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeBinding;
using ::pimap::session::testing::FakeStoreLink;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The arguments of "t XSYNC <args>" as the router parses them.
absl::StatusOr<XsyncRequest> Parse(absl::string_view args) {
  imap::CommandAssembler assembler(imap::ParserLimits{}, 64 * 1024);
  const std::string line = absl::StrCat("t XSYNC ", args);
  EXPECT_TRUE(assembler.AddLine(line, nullptr).ok());
  absl::StatusOr<imap::Command> command = assembler.Finish();
  EXPECT_TRUE(command.ok()) << command.status();
  return ParseXsync(command->args);
}

std::vector<std::string> Lines(const std::vector<XsyncStep>& plan) {
  std::vector<std::string> out;
  for (const XsyncStep& s : plan) out.push_back(s.line);
  return out;
}

TEST(XsyncParseTest, KnownFolderWithHeaders) {
  absl::StatusOr<XsyncRequest> r =
      Parse("\"My Box\" 1700000000 1234 140 (HEADERS (From Subject))");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mailbox, "My Box");
  EXPECT_EQ(r->uidvalidity, 1700000000u);
  EXPECT_EQ(r->modseq, 1234u);
  EXPECT_EQ(r->last_uid, 140u);
  EXPECT_THAT(r->headers, ElementsAre("From", "Subject"));
}

TEST(XsyncParseTest, FirstSyncGetsDefaultHeaders) {
  absl::StatusOr<XsyncRequest> r = Parse("INBOX 0 0 0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->uidvalidity, 0u);
  EXPECT_THAT(r->headers,
              ElementsAre("From", "To", "Cc", "Subject", "Date", "Message-ID"));
}

TEST(XsyncParseTest, BadArguments) {
  for (absl::string_view bad :
       {"INBOX", "INBOX 1 2", "INBOX x 2 3", "INBOX 1 -2 3", "INBOX 1 0 3",
        "INBOX 1 2 3 HEADERS", "INBOX 1 2 3 (HEADERS)",
        "INBOX 1 2 3 (HEADERS ())", "INBOX 1 2 3 (HEADERS (\"a:b\"))",
        "INBOX 1 2 3 (LIMIT 5)", "INBOX 1 2 3 (HEADERS (a) HEADERS (b))",
        "INBOX 99999999999 2 3", "(INBOX) 1 2 3", "INBOX 1 2 3 (a) (b)"}) {
    absl::StatusOr<XsyncRequest> r = Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_THAT(r.status().message(), HasSubstr("XSYNC: ")) << bad;
    }
  }
}

TEST(XsyncPlanTest, CondstorePlanForAKnownFolder) {
  absl::StatusOr<XsyncRequest> r =
      Parse("INBOX 7 100 10 (HEADERS (From Subject))");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Lines(PlanXsync(*r, "y", /*qresync=*/false)),
              ElementsAre("y.1 SELECT INBOX (CONDSTORE)",
                          "y.2 UID FETCH 1:10 (UID FLAGS) (CHANGEDSINCE 100)",
                          "y.3 UID SEARCH UID 1:10",
                          "y.4 UID FETCH 11:* (UID FLAGS RFC822.SIZE "
                          "BODY.PEEK[HEADER.FIELDS (From Subject)])"));
}

// The largest UID known: nothing can be newer ("UID FETCH 0:*" is no UID).
TEST(XsyncPlanTest, NoNewMailStepAfterTheLargestUid) {
  absl::StatusOr<XsyncRequest> r = Parse("INBOX 7 100 4294967295");
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<std::string> lines =
      Lines(PlanXsync(*r, "y", /*qresync=*/false));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], "y.3 UID SEARCH UID 1:4294967295");
}

TEST(XsyncPlanTest, QresyncPlanAndFirstSync) {
  absl::StatusOr<XsyncRequest> r = Parse("\"a b\" 7 100 10 (HEADERS (From))");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Lines(PlanXsync(*r, "y", /*qresync=*/true)),
              ElementsAre("y.1 SELECT \"a b\" (QRESYNC (7 100 1:10))",
                          "y.2 UID FETCH 11:* (UID FLAGS RFC822.SIZE "
                          "BODY.PEEK[HEADER.FIELDS (From)])"));
  r = Parse("INBOX 0 0 0 (HEADERS (Subject))");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Lines(PlanXsync(*r, "z", /*qresync=*/false)),
              ElementsAre("z.1 SELECT INBOX (CONDSTORE)",
                          "z.2 UID FETCH 1:* (UID FLAGS RFC822.SIZE "
                          "BODY.PEEK[HEADER.FIELDS (Subject)])"));
}

TEST(XsyncAnswerTest, OkFailedAndUidValidity) {
  XsyncStep step{"SELECT", "y.1", "y.1 SELECT X (CONDSTORE)"};
  EXPECT_EQ(XsyncOk("y", 4), "y OK [XSYNC 4] XSYNC completed\r\n");
  EXPECT_EQ(XsyncFailed("y", 0, step, "NO", "[NONEXISTENT] Mailbox gone"),
            "y NO [XSYNC 1 SELECT] [NONEXISTENT] Mailbox gone\r\n");
  EXPECT_EQ(XsyncFailed("y", 0, step, "BAD", ""),
            "y BAD [XSYNC 1 SELECT] BAD\r\n");
  EXPECT_THAT(XsyncUidValidityChanged("y", 9),
              ::testing::StartsWith("y NO [UIDVALIDITY 9] "));
  EXPECT_EQ(UidValidityIn("* FLAGS ()\r\n* OK [UIDVALIDITY 42] x\r\n"), 42u);
  EXPECT_EQ(UidValidityIn(" * OK [UIDVALIDITY 5]\r\n"), 0u);
  EXPECT_EQ(UidValidityIn("* FLAGS (* OK [UIDVALIDITY 5])\r\n"), 0u);
  EXPECT_EQ(UidValidityIn("* OK [UIDVALIDITY 6] x\r\n"), 6u);
}

// ---- The group on a regular session's relay ---------------------------------

class XsyncRelayTest : public ::testing::Test {
 protected:
  explicit XsyncRelayTest(size_t max_output_bytes = 4 << 20) {
    DriverServices services;
    services.counters = &counters_;
    services.max_output_bytes = max_output_bytes;
    driver_ =
        new RelayDriver(services, &device_, imap::ParserLimits{}, "alice",
                        StoreCredentials{"alice", "pw", ""}, RelayParkConfig{});
    device_.Attach(driver_);
    driver_->Start(&store_, "a1");
    device_.Take();
  }

  ShardCounters counters_;
  FakeStoreLink store_;
  FakeBinding device_;
  RelayDriver* driver_;
};

TEST_F(XsyncRelayTest, StepsRunOneByOneAndOneAnswerEndsThem) {
  device_.Type("y XSYNC INBOX 7 100 10 (HEADERS (Subject))\r\nn NOOP\r\n");
  EXPECT_EQ(store_.TakeSent(), "y.1 SELECT INBOX (CONDSTORE)\r\n");
  EXPECT_TRUE(device_.input_held);
  store_.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  store_.Reply("* 12 EXISTS");
  store_.Complete("y.1", "OK [READ-WRITE] Select completed.");
  EXPECT_EQ(store_.TakeSent(),
            "y.2 UID FETCH 1:10 (UID FLAGS) (CHANGEDSINCE 100)\r\n");
  store_.Reply("* 3 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (120))");
  store_.Complete("y.2", "OK Fetch completed.");
  EXPECT_EQ(store_.TakeSent(), "y.3 UID SEARCH UID 1:10\r\n");
  store_.Reply("* SEARCH 1 4 9");
  store_.Complete("y.3", "OK Search completed.");
  EXPECT_EQ(store_.TakeSent(),
            "y.4 UID FETCH 11:* (UID FLAGS RFC822.SIZE "
            "BODY.PEEK[HEADER.FIELDS (Subject)])\r\n");
  store_.ReplyPieces(
      {"* 12 FETCH (UID 11 FLAGS () RFC822.SIZE 99 "
       "BODY[HEADER.FIELDS (Subject)] {11}\r\n",
       "Subject: x\n)\r\n"});
  store_.Complete("y.4", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(),
            "* OK [UIDVALIDITY 7] UIDs valid\r\n* 12 EXISTS\r\n"
            "* 3 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (120))\r\n"
            "* SEARCH 1 4 9\r\n"
            "* 12 FETCH (UID 11 FLAGS () RFC822.SIZE 99 "
            "BODY[HEADER.FIELDS (Subject)] {11}\r\nSubject: x\n)\r\n"
            "y OK [XSYNC 4] XSYNC completed\r\n");
  // Input resumed: the NOOP went up.
  EXPECT_FALSE(device_.input_held);
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
}

TEST_F(XsyncRelayTest, AFailingStepEndsTheGroupWithItsWords) {
  device_.Type("y XSYNC Gone 7 100 10\r\n");
  EXPECT_EQ(store_.TakeSent(), "y.1 SELECT Gone (CONDSTORE)\r\n");
  store_.Complete("y.1", "NO [NONEXISTENT] Mailbox doesn't exist: Gone");
  EXPECT_EQ(device_.Take(),
            "y NO [XSYNC 1 SELECT] [NONEXISTENT] Mailbox doesn't exist: "
            "Gone\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_FALSE(device_.input_held);
}

TEST_F(XsyncRelayTest, ChangedUidValidityStopsAfterTheSelect) {
  device_.Type("y XSYNC INBOX 7 100 10\r\n");
  store_.TakeSent();
  store_.Reply("* OK [UIDVALIDITY 8] UIDs valid");
  store_.Complete("y.1", "OK [READ-WRITE] Select completed.");
  EXPECT_EQ(device_.Take(),
            "* OK [UIDVALIDITY 8] UIDs valid\r\n"
            "y NO [UIDVALIDITY 8] XSYNC: UIDVALIDITY changed; discard the "
            "folder and sync it in full\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(XsyncRelayTest, BadArgumentsAndTerseAnswer) {
  device_.Type("y XSYNC INBOX\r\n");
  EXPECT_THAT(device_.Take(), ::testing::StartsWith("y BAD XSYNC: expected"));
  device_.Type("t XTERSE ON\r\nz XSYNC INBOX 0 0 0 (HEADERS (Subject))\r\n");
  EXPECT_EQ(device_.Take(), "t OK\r\n");
  EXPECT_EQ(store_.TakeSent(), "z.1 SELECT INBOX (CONDSTORE)\r\n");
  store_.Complete("z.1", "OK [READ-WRITE] Select completed.");
  store_.TakeSent();
  store_.Complete("z.2", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "z OK [XSYNC 2]\r\n");
}

// A step whose answer would not fit the device's output bound in one write.
class XsyncSmallOutputTest : public XsyncRelayTest {
 protected:
  XsyncSmallOutputTest() : XsyncRelayTest(400) {}
};

TEST_F(XsyncSmallOutputTest, TooLargeAStepEndsTheGroupWithLimit) {
  device_.Type("y XSYNC INBOX 7 100 10\r\n");
  store_.TakeSent();
  store_.Reply(absl::StrCat("* OK [ALERT] ", std::string(500, 'x')));
  store_.Complete("y.1", "OK [READ-WRITE] Select completed.");
  EXPECT_EQ(device_.Take(),
            "y NO [XSYNC 1 SELECT] [LIMIT] The step's answer is too large (run "
            "the steps one by one)\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_FALSE(device_.input_held);
}

}  // namespace
}  // namespace pimap::session
