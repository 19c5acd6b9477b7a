// RelayClientState: what a relayed client knows, read off its command lines
// and the store's response lines, and when its session may be parked.
#include "core/session/relay_client_state.h"

#include <string>

#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class RelayClientStateTest : public ::testing::Test {
 protected:
  void Command(absl::string_view line, bool literal = false) {
    absl::StatusOr<imap::CommandHead> head = imap::ParseCommandHead(line);
    ASSERT_TRUE(head.ok()) << line;
    state_.OnCommand(*head, line, literal);
  }
  // Dovecot's answer to SELECT INBOX (UIDVALIDITY 7, HIGHESTMODSEQ 12).
  void SelectInbox(absl::string_view tag = "s",
                   absl::string_view verb = "SELECT") {
    Command(absl::StrCat(tag, " ", verb, " inbox"));
    state_.OnResponseLine("* FLAGS (\\Answered \\Seen $Work)");
    state_.OnResponseLine(
        "* OK [PERMANENTFLAGS (\\Answered \\Seen $Work \\*)] Flags permitted.");
    state_.OnResponseLine("* 3 EXISTS");
    state_.OnResponseLine("* OK [UIDVALIDITY 7] UIDs valid");
    state_.OnResponseLine("* OK [HIGHESTMODSEQ 12] Highest");
    state_.OnResponseLine(absl::StrCat(
        tag, verb == "SELECT" ? " OK [READ-WRITE] Select completed."
                              : " OK [READ-ONLY] Examine completed."));
  }

  RelayClientState state_;
};

TEST_F(RelayClientStateTest, NothingSelectedIsNotParkable) {
  EXPECT_FALSE(state_.parkable());
  Command("a NOOP");
  state_.OnResponseLine("a OK NOOP completed.");
  EXPECT_FALSE(state_.parkable());
}

TEST_F(RelayClientStateTest, SelectIsTrackedWithItsCodesAndFlags) {
  SelectInbox();
  ASSERT_TRUE(state_.parkable());
  ParkedClientState s = state_.Snapshot();
  EXPECT_EQ(s.folder, "INBOX");  // "inbox" is INBOX in any case
  EXPECT_EQ(s.uidvalidity, 7u);
  EXPECT_EQ(s.highest_modseq, 0u);  // not a CONDSTORE client: not used
  EXPECT_FALSE(s.read_only);
  EXPECT_THAT(s.mailbox_flags, ElementsAre("\\Answered", "\\Seen", "$Work"));
  EXPECT_THAT(s.permanent_flags,
              ElementsAre("\\Answered", "\\Seen", "$Work", "\\*"));
  EXPECT_EQ(state_.LinkProfile(), "relay:");
}

TEST_F(RelayClientStateTest, ExamineIsReadOnly) {
  SelectInbox("e", "EXAMINE");
  EXPECT_TRUE(state_.Snapshot().read_only);
}

TEST_F(RelayClientStateTest, QuotedAndOtherFolders) {
  Command("s SELECT \"Work/Q4 plans\"");
  state_.OnResponseLine("* OK [UIDVALIDITY 9] UIDs valid");
  state_.OnResponseLine("s OK [READ-WRITE] Select completed.");
  EXPECT_EQ(state_.folder(), "Work/Q4 plans");
  EXPECT_TRUE(state_.parkable());
}

TEST_F(RelayClientStateTest, FailedSelectLeavesNothingSelected) {
  SelectInbox();
  Command("t SELECT Nope");
  state_.OnResponseLine("* OK [CLOSED] Previous mailbox closed.");
  state_.OnResponseLine("t NO Mailbox doesn't exist: Nope");
  EXPECT_FALSE(state_.parkable());
  EXPECT_EQ(state_.folder(), "");
}

TEST_F(RelayClientStateTest, CloseAndUnselectDeselect) {
  SelectInbox();
  Command("c CLOSE");
  EXPECT_FALSE(state_.parkable());  // pending
  state_.OnResponseLine("c OK Close completed.");
  EXPECT_FALSE(state_.parkable());
  SelectInbox("s2");
  Command("u UNSELECT");
  state_.OnResponseLine("u OK Unselect completed.");
  EXPECT_FALSE(state_.parkable());
}

TEST_F(RelayClientStateTest, EnabledExtensionsShapeTheProfile) {
  Command("e ENABLE QRESYNC CONDSTORE");
  state_.OnResponseLine("* ENABLED QRESYNC CONDSTORE");
  state_.OnResponseLine("e OK Enabled.");
  SelectInbox();
  EXPECT_TRUE(state_.qresync());
  EXPECT_TRUE(state_.condstore());
  EXPECT_THAT(state_.enabled(), ElementsAre("CONDSTORE", "QRESYNC"));
  EXPECT_EQ(state_.LinkProfile(), "relay:CONDSTORE QRESYNC");
  EXPECT_EQ(state_.Snapshot().highest_modseq, 12u);
  // A later HIGHESTMODSEQ the store tells the client moves it on.
  state_.OnResponseLine("* OK [HIGHESTMODSEQ 20] Highest");
  EXPECT_EQ(state_.Snapshot().highest_modseq, 20u);
}

TEST_F(RelayClientStateTest, CondstoreEnablingCommandsCountAsEnable) {
  SelectInbox();
  Command("f FETCH 1:* (FLAGS) (CHANGEDSINCE 3)");
  EXPECT_TRUE(state_.condstore());
  EXPECT_THAT(state_.enabled(), ElementsAre("CONDSTORE"));
  EXPECT_TRUE(state_.parkable());
}

TEST_F(RelayClientStateTest, NotifyTheRelayCannotReadMakesTheSessionSticky) {
  SelectInbox();
  // Not RFC 5465 syntax, yet the store took it: who knows what it does now.
  Command("n NOTIFY SET (selected MessageNew)");
  state_.OnResponseLine("n OK NOTIFY completed.");
  EXPECT_FALSE(state_.parkable());
  SelectInbox("s2");
  EXPECT_FALSE(state_.parkable());  // for good
}

TEST_F(RelayClientStateTest, NotifyNeedingTheStoreMakesTheSessionSticky) {
  SelectInbox();
  Command("n NOTIFY SET (personal (SubscriptionChange))");
  state_.OnResponseLine("n OK NOTIFY completed.");
  EXPECT_FALSE(state_.parkable());
}

TEST_F(RelayClientStateTest, NotifyTheRelayCanServeIsKeptAndParkable) {
  SelectInbox();
  Command(
      "n NOTIFY SET (selected (MessageNew MessageExpunge)) "
      "(personal (MessageNew MessageExpunge))");
  EXPECT_FALSE(state_.parkable());  // until the store said OK
  EXPECT_EQ(state_.notify(), nullptr);
  state_.OnResponseLine("n OK NOTIFY completed.");
  EXPECT_TRUE(state_.parkable());
  ASSERT_NE(state_.notify(), nullptr);
  EXPECT_TRUE(state_.notify()->selected().messages);
  ParkedClientState snapshot = state_.Snapshot();
  EXPECT_TRUE(snapshot.report_messages);
  EXPECT_FALSE(snapshot.report_flags);  // no FlagChange for the selected one
  // Refused: what was set stays.
  Command("n2 NOTIFY NONE");
  state_.OnResponseLine("n2 NO Not now.");
  EXPECT_NE(state_.notify(), nullptr);
  Command("n3 NOTIFY NONE");
  state_.OnResponseLine("n3 OK NOTIFY completed.");
  EXPECT_EQ(state_.notify(), nullptr);
  EXPECT_TRUE(state_.Snapshot().report_flags);
  EXPECT_TRUE(state_.parkable());
}

TEST_F(RelayClientStateTest, MailboxNamesNeedTheDelimiterFromAList) {
  SelectInbox();
  Command("n NOTIFY SET (personal (MailboxName))");
  state_.OnResponseLine("n OK NOTIFY completed.");
  EXPECT_FALSE(state_.parkable());  // a LIST line could not be made
  Command("l LIST \"\" *");
  state_.OnResponseLine("* LIST (\\HasNoChildren) \".\" INBOX");
  state_.OnResponseLine("l OK List completed.");
  EXPECT_EQ(state_.delimiter(), '.');
  EXPECT_TRUE(state_.parkable());
  EXPECT_EQ(state_.Snapshot().delimiter, '.');
}

TEST_F(RelayClientStateTest, SavedSearchIsStickyUntilTheNextSelect) {
  SelectInbox();
  Command("x UID SEARCH RETURN (SAVE) UNSEEN");
  EXPECT_FALSE(state_.parkable());
  SelectInbox("s2");
  EXPECT_TRUE(state_.parkable());
}

TEST_F(RelayClientStateTest, MailboxAsLiteralIsNotParked) {
  Command("s SELECT {5}", /*literal=*/true);
  state_.OnResponseLine("* OK [UIDVALIDITY 7] UIDs valid");
  state_.OnResponseLine("s OK [READ-WRITE] Select completed.");
  EXPECT_FALSE(state_.parkable());
}

TEST_F(RelayClientStateTest, UnknownEnableIsSticky) {
  Command("e ENABLE UTF8=ACCEPT");
  state_.OnResponseLine("* ENABLED UTF8=ACCEPT");
  state_.OnResponseLine("e OK Enabled.");
  SelectInbox();
  EXPECT_TRUE(state_.parkable());
  Command("e2 ENABLE X-SOMETHING");
  state_.OnResponseLine("* ENABLED X-SOMETHING");
  state_.OnResponseLine("e2 OK Enabled.");
  EXPECT_FALSE(state_.parkable());
}

TEST_F(RelayClientStateTest, OverlongFlagsLineIsUnknownNotWrong) {
  SelectInbox();
  state_.OnResponseLine("* FLAGS (\\Seen $Cut");  // cut at kMaxLine
  EXPECT_THAT(state_.Snapshot().mailbox_flags, IsEmpty());
  EXPECT_TRUE(state_.parkable());
}

}  // namespace
}  // namespace pimap::session

namespace pimap::session {
namespace {

TEST_F(RelayClientStateTest, ModseqInsideAStringOrANameIsNotCondstore) {
  SelectInbox();
  Command("a SEARCH SUBJECT \"modseq\"");
  Command("b STATUS Condstore2 (MESSAGES)");
  Command("c SEARCH SUBJECT \"say \\\"CHANGEDSINCE\\\" twice\"");
  EXPECT_FALSE(state_.condstore());
  Command("d UID SEARCH MODSEQ 7");
  EXPECT_TRUE(state_.condstore());
}

TEST_F(RelayClientStateTest, UpdatingSearchIsSticky) {
  SelectInbox();
  Command("x SEARCH RETURN (UPDATE) UNSEEN");
  EXPECT_FALSE(state_.parkable());
}

}  // namespace
}  // namespace pimap::session
