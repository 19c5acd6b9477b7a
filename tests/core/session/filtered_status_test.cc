// FilteredStatus (core/session/filtered_status.h) on its own: which STATUS
// commands the view counts, the store commands of each case in order, the
// failures on the way, and the STATUS line rewritten with the counts. The
// driver running it on a link is device_driver_*_test.cc's (STATUS cases).
#include "core/session/filtered_status.h"

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/imap/command.h"
#include "core/session/command_state.h"
#include "core/session/filter.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::session {
namespace {

using Outcome = FilteredStatus::Outcome;
using Step = FilteredStatus::Step;
using ::testing::StartsWith;

imap::Command Parse(const std::string& line) {
  absl::StatusOr<imap::Command> cmd =
      imap::testing::ParseCommandBytes(absl::StrCat(line, "\r\n"));
  EXPECT_TRUE(cmd.ok()) << cmd.status() << " for " << line;
  return cmd.ok() ? *cmd : imap::Command();
}

class FilteredStatusTest : public ::testing::Test {
 protected:
  FilteredStatusTest() : session_("u", "d", 1, config_) {}

  // "t XFILTER <text>" applied to the session's filters.
  void Filter(const std::string& text) {
    absl::StatusOr<XFilterCommand> x =
        ParseXFilter(Parse(absl::StrCat("t XFILTER ", text)).args);
    ASSERT_TRUE(x.ok()) << x.status();
    session_.filters.Set(*x);
  }
  // INBOX selected with the view {3, 5, 9}.
  void SelectInbox() {
    session_.selected_folder = "INBOX";
    for (uint32_t uid : {3u, 5u, 9u}) session_.view.Insert(uid);
  }
  std::optional<FilteredStatus> For(const std::string& line,
                                    bool pooled = true) {
    return FilteredStatus::For(Parse(line), session_, pooled);
  }

  SessionConfig config_;
  DeviceSession session_;
};

TEST_F(FilteredStatusTest, TheStoresNumbersStandWithoutAFilteredView) {
  SelectInbox();
  EXPECT_FALSE(For("s STATUS INBOX (MESSAGES)").has_value());  // view ALL
  Filter("INBOX V FROM \"boss\"");
  EXPECT_FALSE(For("s STATUS Work (MESSAGES)").has_value());  // Work: ALL
  EXPECT_FALSE(For("s STATUS INBOX").has_value());  // malformed: no list
  Filter("Work V FROM \"boss\"");
  // A folder not selected is counted only on a pooled link.
  EXPECT_FALSE(For("s STATUS Work (MESSAGES)", /*pooled=*/false).has_value());
  EXPECT_TRUE(For("s STATUS Work (MESSAGES)", /*pooled=*/true).has_value());
  EXPECT_TRUE(For("s STATUS inbox (MESSAGES)", /*pooled=*/false).has_value());
}

TEST_F(FilteredStatusTest, SelectedFolderCountsFromTheViewAtHand) {
  Filter("INBOX V FROM \"boss\"");
  SelectInbox();
  std::optional<FilteredStatus> s = For("s STATUS inbox (MESSAGES UIDNEXT)");
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->selected());
  EXPECT_EQ(s->folder(), "INBOX");
  EXPECT_EQ(s->step(), Step::kStatus);
  s->OnStatusLine("* STATUS INBOX (MESSAGES 40 UIDNEXT 41)");
  EXPECT_EQ(s->StepDone(true, session_.view.empty()), Outcome::kAnswer);
  EXPECT_EQ(s->TakeLine(), "* STATUS INBOX (MESSAGES 3 UIDNEXT 41)");
}

TEST_F(FilteredStatusTest, SelectedFolderUnseenIsSearchedWithinTheView) {
  Filter("INBOX V FROM \"boss\"");
  SelectInbox();
  std::optional<FilteredStatus> s = For("s STATUS INBOX (UNSEEN MESSAGES)");
  ASSERT_TRUE(s.has_value());
  s->OnStatusLine("* STATUS INBOX (UNSEEN 12 MESSAGES 40)");
  EXPECT_EQ(s->StepDone(true, false), Outcome::kNext);
  EXPECT_EQ(s->step(), Step::kCountUnseen);
  EXPECT_EQ(s->Command(session_), "UID SEARCH RETURN (COUNT) UNSEEN UID 3,5,9");
  s->OnCount(2);
  EXPECT_EQ(s->StepDone(true, false), Outcome::kAnswer);
  EXPECT_EQ(s->TakeLine(), "* STATUS INBOX (UNSEEN 2 MESSAGES 3)");
}

TEST_F(FilteredStatusTest, OtherFolderIsExaminedThenCounted) {
  Filter("Work V FROM \"boss\"");
  SelectInbox();
  std::optional<FilteredStatus> s = For("s STATUS Work (MESSAGES UNSEEN)");
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->selected());
  s->OnStatusLine("* STATUS Work (MESSAGES 7 UNSEEN 4)");
  EXPECT_EQ(s->StepDone(true, false), Outcome::kNext);
  EXPECT_EQ(s->step(), Step::kExamine);
  EXPECT_EQ(s->Command(session_), "EXAMINE \"Work\"");
  EXPECT_EQ(s->StepDone(true, false), Outcome::kNext);
  EXPECT_EQ(s->step(), Step::kCount);
  EXPECT_EQ(s->Command(session_), "UID SEARCH RETURN (COUNT) FROM \"boss\"");
  s->OnCount(5);
  EXPECT_EQ(s->StepDone(true, false), Outcome::kNext);
  EXPECT_EQ(s->step(), Step::kCountUnseen);
  EXPECT_EQ(s->Command(session_),
            "UID SEARCH RETURN (COUNT) UNSEEN FROM \"boss\"");
  s->OnCount(1);
  EXPECT_EQ(s->StepDone(true, false), Outcome::kAnswer);
  EXPECT_EQ(s->TakeLine(), "* STATUS Work (MESSAGES 5 UNSEEN 1)");
}

TEST_F(FilteredStatusTest, FailuresFallBackToTheStore) {
  Filter("Work V FROM \"boss\"");
  // The store's STATUS failed (or said nothing): its answer is the device's.
  std::optional<FilteredStatus> s = For("s STATUS Work (MESSAGES)");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->StepDone(false, true), Outcome::kAnswerAsStore);
  s = For("s STATUS Work (MESSAGES)");
  EXPECT_EQ(s->StepDone(true, true), Outcome::kAnswerAsStore);  // no line

  // The EXAMINE failed: the store's numbers are the best there are.
  s = For("s STATUS Work (MESSAGES)");
  s->OnStatusLine("* STATUS Work (MESSAGES 7)");
  EXPECT_EQ(s->StepDone(true, true), Outcome::kNext);
  EXPECT_EQ(s->StepDone(false, true), Outcome::kAnswer);
  EXPECT_EQ(s->TakeLine(), "* STATUS Work (MESSAGES 7)");

  // The UNSEEN count failed: none counted rather than the store's.
  s = For("s STATUS Work (UNSEEN)");
  s->OnStatusLine("* STATUS Work (UNSEEN 4)");
  EXPECT_EQ(s->StepDone(true, true), Outcome::kNext);  // EXAMINE
  EXPECT_EQ(s->StepDone(true, true), Outcome::kNext);  // COUNT
  s->OnCount(3);
  EXPECT_EQ(s->StepDone(true, true), Outcome::kNext);  // COUNT UNSEEN
  s->OnCount(2);
  EXPECT_EQ(s->StepDone(false, true), Outcome::kAnswer);
  EXPECT_EQ(s->TakeLine(), "* STATUS Work (UNSEEN 0)");
}

TEST_F(FilteredStatusTest, OnlyWholeItemNamesAreRewritten) {
  Filter("INBOX V FROM \"boss\"");
  SelectInbox();
  std::optional<FilteredStatus> s = For("s STATUS INBOX (MESSAGES)");
  ASSERT_TRUE(s.has_value());
  // "XMESSAGES" is another item; MESSAGES is rewritten where it stands whole.
  s->OnStatusLine("* STATUS INBOX (XMESSAGES 8 MESSAGES 40)");
  EXPECT_EQ(s->StepDone(true, false), Outcome::kAnswer);
  EXPECT_EQ(s->TakeLine(), "* STATUS INBOX (XMESSAGES 8 MESSAGES 3)");
  EXPECT_EQ(s->TakeLine(), "");  // taken once
}

TEST_F(FilteredStatusTest, AnAbortedCommandForgetsItsFilteredStatus) {
  Filter("Work V FROM \"boss\"");
  CommandState state;
  state.status = For("s STATUS Work (MESSAGES)");
  ASSERT_TRUE(state.status.has_value());
  state.Abort();  // its link was lost
  EXPECT_FALSE(state.status.has_value());
}

}  // namespace
}  // namespace pimap::session
