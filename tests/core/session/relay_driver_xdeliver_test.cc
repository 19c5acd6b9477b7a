// XDELIVER in a regular (relayed) session (relay_driver_xdeliver.cc): the
// gateway runs it on the client's own link instead of relaying it. Checks
// the steps' commands on the link, that the store's news for the client
// pass through meanwhile while the original's body does not, the held
// input, and the refusals.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/core/session/fake_submitter.h"
#include "tests/core/session/relay_park_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeSubmitter;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kReply[] =
    "To: bob@example.net\r\nSubject: Re: x\r\n\r\nYes\r\n";
constexpr char kOriginal[] =
    "From: Bob <bob@example.net>\r\nSubject: x\r\n\r\nMeet at 3?\r\n";

class RelayXdeliverTest : public RelayParkTest {
 protected:
  RelayXdeliverTest() : RelayParkTest(/*park_after_ms=*/0) {
    registry_.set_submitter(&submitter_);
    config_.smtp_sender_domain = "example.org";
  }
  void Xdeliver(absl::string_view tag, absl::string_view args,
                absl::string_view message) {
    device_.Type(absl::StrCat(tag, " XDELIVER ", args, " {", message.size(),
                              "+}\r\n", message, "\r\n"));
  }

  FakeSubmitter submitter_;
};

TEST_F(RelayXdeliverTest, AdvertisedWithASubmitter) {
  device_.Type("c CAPABILITY\r\n");
  EXPECT_THAT(device_.Take(), HasSubstr(" XDELIVER\r\nc OK"));
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(RelayXdeliverTest, ReplyRunsOnTheClientsLinkAndPassesItsNewsOn) {
  SelectInbox();
  Xdeliver("x", "R 9 Y", kReply);
  EXPECT_EQ(store_.TakeSent(), "~x1 UID FETCH 9 (BODY.PEEK[])\r\n");
  EXPECT_TRUE(device_.input_held);
  device_.Type("n NOOP\r\n");  // waits for the XDELIVER's answer
  // New mail meanwhile is the client's; the original's body is not.
  store_.Reply("* 4 EXISTS");
  store_.ReplyPieces({absl::StrCat("* 2 FETCH (UID 9 BODY[] {",
                                   sizeof(kOriginal) - 1, "}\r\n"),
                      kOriginal, ")\r\n"});
  store_.Complete("~x1", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  ASSERT_EQ(submitter_.mails.size(), 1u);
  EXPECT_EQ(submitter_.mails[0].mail_from, "alice@example.org");
  EXPECT_THAT(submitter_.mails[0].data, HasSubstr("> Meet at 3?"));
  EXPECT_EQ(store_.TakeSent(), "");  // nothing changes before the MTA's 250
  submitter_.Finish(absl::OkStatus());
  // Not silent: the client hears of the flag as from its own STORE.
  EXPECT_EQ(store_.TakeSent(), "~x2 UID STORE 9 +FLAGS (\\Answered)\r\n");
  store_.Reply("* 2 FETCH (UID 9 FLAGS (\\Answered))");
  store_.Complete("~x2", "OK Store completed.");
  EXPECT_EQ(device_.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Answered))\r\n"
            "x OK XDELIVER completed\r\n");
  // Relaying goes on.
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
  store_.Complete("n", "OK NOOP completed.");
  EXPECT_EQ(device_.Take(), "n OK NOOP completed.\r\n");
  EXPECT_FALSE(device_.input_held);
}

TEST_F(RelayXdeliverTest, SaveToCopyAfterTheMtaOnly) {
  Xdeliver("x", "N SAVETO=Sent", kReply);
  EXPECT_EQ(store_.TakeSent(), "");
  submitter_.Finish(absl::OkStatus());
  EXPECT_THAT(store_.TakeSent(), StartsWith("~x1 APPEND Sent (\\Seen) {"));
  store_.Complete("~x1", "OK [APPENDUID 3 41] Append completed.");
  EXPECT_EQ(device_.Take(), "x OK [APPENDUID 3 41] XDELIVER completed\r\n");
}

TEST_F(RelayXdeliverTest, RefusedMessageLeavesNothing) {
  Xdeliver("x", "N SAVETO=Sent", kReply);
  submitter_.Finish(absl::UnavailableError("451 4.3.0 Try\r\nagain"));
  EXPECT_EQ(device_.Take(), "x NO 451 4.3.0 Try  again\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_FALSE(device_.input_held);
}

// The client's link stays in its mailbox: an original elsewhere is read and
// flagged on a pooled link, which goes back to the pool after each step.
TEST_F(RelayXdeliverTest, OriginalInAnotherMailboxIsReachedOnAPooledLink) {
  SelectInbox();
  Xdeliver("x", "F Work 5 N", kReply);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Borrow(alice [relay:], 2500ms)"));
  PooledLink* lent = pool_.CompleteBorrow();
  ASSERT_NE(lent, nullptr);
  FakeStoreLink* link = pool_.fake(lent);
  EXPECT_EQ(link->TakeSent(),
            "~s1 SELECT \"Work\"\r\n~s2 UID FETCH 5 (BODY.PEEK[])\r\n");
  link->Reply("* 6 EXISTS");  // Work's, not the client's business
  link->Complete("~s1", "OK [READ-WRITE] Select completed.");
  link->ReplyPieces({absl::StrCat("* 2 FETCH (UID 5 BODY[] {",
                                  sizeof(kOriginal) - 1, "}\r\n"),
                     kOriginal, ")\r\n"});
  link->Complete("~s2", "OK Fetch completed.");
  EXPECT_THAT(
      pool_.TakeCalls(),
      ElementsAre(::testing::MatchesRegex("Return\\(L[0-9]+, reusable\\)")));
  EXPECT_EQ(lent->selected_folder, "Work");
  ASSERT_EQ(submitter_.mails.size(), 1u);
  EXPECT_THAT(submitter_.mails[0].data, HasSubstr("> Meet at 3?"));
  submitter_.Finish(absl::OkStatus());
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Borrow(alice [relay:], 2500ms)"));
  lent = pool_.CompleteBorrow();
  ASSERT_NE(lent, nullptr);
  link = pool_.fake(lent);
  EXPECT_THAT(link->TakeSent(),
              HasSubstr("~s2 UID STORE 5 +FLAGS ($Forwarded)\r\n"));
  link->Complete("~s1", "OK [READ-WRITE] Select completed.");
  link->Complete("~s2", "OK Store completed.");
  EXPECT_EQ(device_.Take(), "x OK XDELIVER completed\r\n");
  EXPECT_EQ(store_.TakeSent(), "");  // the client's own link never moved
  EXPECT_FALSE(device_.input_held);
}

TEST_F(RelayXdeliverTest, NoPooledLinkForTheOriginalIsNoAndNothingSent) {
  SelectInbox();
  Xdeliver("x", "R Work 5 N", kReply);
  pool_.TakeCalls();
  pool_.FailBorrow(absl::UnavailableError("no link"));
  EXPECT_THAT(device_.Take(), StartsWith("x NO [UNAVAILABLE]"));
  EXPECT_TRUE(submitter_.mails.empty());
}

TEST_F(RelayXdeliverTest, BadArgumentsAreBad) {
  SelectInbox();
  Xdeliver("y", "R 9 Q", kReply);
  EXPECT_THAT(device_.Take(), StartsWith("y BAD"));
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_TRUE(submitter_.mails.empty());
}

// A store response streaming to the client when XDELIVER starts ends as it
// began, passed through, before the XDELIVER's own answer.
TEST_F(RelayXdeliverTest, ResponseStreamingWhenItStartsEndsFirst) {
  SelectInbox();
  store_.client()->OnStoreBytes("* 4 EXI");
  Xdeliver("x", "R 9 N", kReply);
  EXPECT_EQ(store_.TakeSent(), "~x1 UID FETCH 9 (BODY.PEEK[])\r\n");
  store_.client()->OnStoreBytes("STS\r\n");
  store_.client()->OnStoreResponseEnd("");
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  store_.ReplyPieces({absl::StrCat("* 2 FETCH (UID 9 BODY[] {",
                                   sizeof(kOriginal) - 1, "}\r\n"),
                      kOriginal, ")\r\n"});
  store_.Complete("~x1", "OK Fetch completed.");
  submitter_.Finish(absl::OkStatus());
  EXPECT_EQ(store_.TakeSent(), "~x2 UID STORE 9 +FLAGS (\\Answered)\r\n");
  store_.Complete("~x2", "OK Store completed.");
  EXPECT_EQ(device_.Take(), "x OK XDELIVER completed\r\n");
  EXPECT_FALSE(device_.input_held);
}

// A response streaming when XDELIVER's command goes out, larger than what a
// collected response may hold, reaches the client whole (it is passed
// through to its end; collecting starts with the next response).
TEST_F(RelayXdeliverTest, StreamingResponseLargerThanTheCollectLimitIsWhole) {
  config_.max_xdeliver_bytes = 1000;  // CollectLimit() = 4 MiB
  SelectInbox();
  const size_t n = 5u << 20;
  const std::string head =
      absl::StrCat("* 4 FETCH (UID 20 BODY[] {", n, "}\r\n");
  store_.client()->OnStoreBytes(head);
  Xdeliver("x", "R 9 N", kReply);
  EXPECT_EQ(store_.TakeSent(), "~x1 UID FETCH 9 (BODY.PEEK[])\r\n");
  const std::string chunk(64 * 1024, 'a');
  for (size_t i = 0; i < n / chunk.size(); ++i) {
    store_.client()->OnStoreBytes(chunk);
  }
  store_.client()->OnStoreBytes(")\r\n");
  store_.client()->OnStoreResponseEnd("");
  EXPECT_EQ(device_.Take().size(), head.size() + n + 3);
  // The XDELIVER goes on as usual.
  store_.ReplyPieces({absl::StrCat("* 2 FETCH (UID 9 BODY[] {",
                                   sizeof(kOriginal) - 1, "}\r\n"),
                      kOriginal, ")\r\n"});
  store_.Complete("~x1", "OK Fetch completed.");
  ASSERT_EQ(submitter_.mails.size(), 1u);
}

// An EXAMINEd mailbox takes no STORE on the client's link: the original is
// read there, its flag set on a pooled link that selects it read-write.
TEST_F(RelayXdeliverTest, ExaminedMailboxStillGetsTheFlag) {
  device_.Type("s EXAMINE INBOX\r\n");
  EXPECT_EQ(store_.TakeSent(), "s EXAMINE INBOX\r\n");
  store_.Reply("* 3 EXISTS");
  store_.Complete("s", "OK [READ-ONLY] Examine completed.");
  device_.Take();
  Xdeliver("x", "R 9 N", kReply);
  EXPECT_EQ(store_.TakeSent(), "~x1 UID FETCH 9 (BODY.PEEK[])\r\n");
  store_.ReplyPieces({absl::StrCat("* 2 FETCH (UID 9 BODY[] {",
                                   sizeof(kOriginal) - 1, "}\r\n"),
                      kOriginal, ")\r\n"});
  store_.Complete("~x1", "OK Fetch completed.");
  submitter_.Finish(absl::OkStatus());
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Borrow(alice [relay:], 2500ms)"));
  PooledLink* lent = pool_.CompleteBorrow();
  ASSERT_NE(lent, nullptr);
  FakeStoreLink* link = pool_.fake(lent);
  EXPECT_EQ(link->TakeSent(),
            "~s1 SELECT \"INBOX\"\r\n~s2 UID STORE 9 +FLAGS (\\Answered)\r\n");
  link->Complete("~s1", "OK [READ-WRITE] Select completed.");
  link->Complete("~s2", "OK Store completed.");
  EXPECT_EQ(device_.Take(), "x OK XDELIVER completed\r\n");
  EXPECT_FALSE(device_.input_held);
}

// An original too large to hold is NO [LIMIT], not "no such message".
TEST_F(RelayXdeliverTest, OriginalOverTheLimitIsNoLimit) {
  config_.max_xdeliver_bytes = 1000;  // CollectLimit() = 4 MiB
  SelectInbox();
  Xdeliver("x", "R 9 N", kReply);
  EXPECT_EQ(store_.TakeSent(), "~x1 UID FETCH 9 (BODY.PEEK[])\r\n");
  const size_t n = 5u << 20;
  store_.ReplyPieces({absl::StrCat("* 2 FETCH (UID 9 BODY[] {", n, "}\r\n"),
                      std::string(n, 'a'), ")\r\n"});
  store_.Complete("~x1", "OK Fetch completed.");
  EXPECT_THAT(device_.Take(), StartsWith("x NO [LIMIT] "));
  EXPECT_TRUE(submitter_.mails.empty());
  EXPECT_FALSE(device_.input_held);
}

// A pooled link lost while it reads the original: NO [UNAVAILABLE].
TEST_F(RelayXdeliverTest, PooledLinkLostMidFetchIsUnavailable) {
  SelectInbox();
  Xdeliver("x", "R Work 5 N", kReply);
  pool_.TakeCalls();
  PooledLink* lent = pool_.CompleteBorrow();
  ASSERT_NE(lent, nullptr);
  FakeStoreLink* link = pool_.fake(lent);
  link->TakeSent();
  link->Complete("~s1", "OK [READ-WRITE] Select completed.");
  link->Lose(absl::UnavailableError("reset"));
  EXPECT_THAT(device_.Take(), StartsWith("x NO [UNAVAILABLE] "));
  EXPECT_TRUE(submitter_.mails.empty());
  EXPECT_FALSE(device_.input_held);
}

// protocol.md §2.2: XCONVERT stays a P-IMAP session's command.
TEST_F(RelayXdeliverTest, XconvertStaysPimapOnly) {
  SelectInbox();
  device_.Type("c XCONVERT 1 BODY[1] as text/plain\r\n");
  EXPECT_EQ(device_.Take(), "c NO [CANNOT] P-IMAP session required\r\n");
}

}  // namespace
}  // namespace pimap::session
