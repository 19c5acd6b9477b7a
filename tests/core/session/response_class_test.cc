// ClassifyResponse (core/session/response_class.h) on its own: what a store
// response's first line means for the device under each kind of job. The
// driver carrying it out (renumbering, the IDLE's "+", journaling) is the
// device_driver_*_test.cc's.
#include "core/session/response_class.h"

#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using J = DeviceJob;
using Extra = ResponseClass::Extra;

// A device in INBOX, which the user's watch journals, running `job`.
ResponseContext In(J job) {
  ResponseContext c;
  c.job = job;
  c.job_up_tag = "~p4";
  c.has_session = true;
  c.folder_selected = true;
  return c;
}

// ... in a folder the watch does not journal.
ResponseContext Unwatched(J job) {
  ResponseContext c = In(job);
  c.unwatched = true;
  return c;
}

RespAction ActionOf(const ResponseContext& c, absl::string_view line) {
  return ClassifyResponse(c, line).action;
}

TEST(ResponseClassTest, TheJobsCompletionIsCollectedADevicesTagPassed) {
  EXPECT_EQ(ActionOf(In(J::kPlain), "~p4 OK done"), RespAction::kCollect);
  EXPECT_EQ(ActionOf(In(J::kEnable), "~p4 OK done"), RespAction::kCollect);
  // A streamed APPEND's (or LOGOUT's) completion carries the device's tag.
  EXPECT_EQ(ActionOf(In(J::kPlain), "a7 OK APPEND completed"),
            RespAction::kForward);
}

// The store connection's [CLOSED] (QRESYNC) is the gateway's bookkeeping: a
// device never enabled QRESYNC, and a borrowed link's previous mailbox may be
// one the device never selected.
TEST(ResponseClassTest, ClosedCodeIsNeverTheDevices) {
  EXPECT_EQ(ActionOf(In(J::kSelect), "* OK [CLOSED] Previous mailbox closed."),
            RespAction::kDrop);
  EXPECT_EQ(ActionOf(In(J::kPlain), "* OK [CLOSED]"), RespAction::kDrop);
  EXPECT_EQ(ActionOf(In(J::kSelect), "* OK [UNSEEN 2] First unseen."),
            RespAction::kForward);
}

TEST(ResponseClassTest, ContinuationsAreTheIdlesOnly) {
  const ResponseClass idle = ClassifyResponse(In(J::kIdle), "+ idling");
  EXPECT_EQ(idle.extra, Extra::kIdleContinuation);
  // Any other "+" (a literal's, which the gateway never asks for) is dropped.
  const ResponseClass other = ClassifyResponse(In(J::kPlain), "+ go ahead");
  EXPECT_EQ(other.action, RespAction::kDrop);
  EXPECT_EQ(other.extra, Extra::kNone);
}

TEST(ResponseClassTest, NumberedResponsesNeverPassAsTheStoreSentThem) {
  for (J job : {J::kPlain, J::kMessages, J::kSearch, J::kIdle, J::kSelect}) {
    for (absl::string_view line :
         {"* 3 EXISTS", "* 0 RECENT", "* 2 EXPUNGE", "* 3 FETCH (UID 9)"}) {
      EXPECT_NE(ActionOf(In(job), line), RespAction::kForward)
          << static_cast<int>(job) << " " << line;
    }
  }
}

TEST(ResponseClassTest, TheDevicesOwnFetchIsRenumbered) {
  const ResponseClass r =
      ClassifyResponse(In(J::kMessages), "* 3 FETCH (UID 9 FLAGS (\\Seen))");
  EXPECT_EQ(r.extra, Extra::kRenumberFetch);
  EXPECT_EQ(r.action, RespAction::kDrop);  // unless it is in the view
  // Not for the gateway's own jobs, nor without a session.
  EXPECT_EQ(ClassifyResponse(In(J::kSelectSearch), "* 3 FETCH (UID 9)").extra,
            Extra::kNone);
  ResponseContext ended = In(J::kMessages);
  ended.has_session = false;
  EXPECT_EQ(ClassifyResponse(ended, "* 3 FETCH (UID 9)").extra, Extra::kNone);
}

TEST(ResponseClassTest, FlagChangesWhileIdlingAreJournaledWhereUnwatched) {
  // The watch journals INBOX's: the link's own report is dropped.
  EXPECT_EQ(ActionOf(In(J::kIdle), "* 3 FETCH (UID 9 FLAGS (\\Seen))"),
            RespAction::kDrop);
  EXPECT_EQ(ActionOf(Unwatched(J::kIdle), "* 3 FETCH (UID 9 FLAGS (\\Seen))"),
            RespAction::kCollect);
  EXPECT_EQ(ActionOf(Unwatched(J::kEvalView), "* 3 FETCH (UID 9 FLAGS ())"),
            RespAction::kCollect);
  // The flags fetched to resolve a pushed change, watched or not.
  EXPECT_EQ(ActionOf(In(J::kFlagsFetch), "* 3 FETCH (UID 9 FLAGS ())"),
            RespAction::kCollect);
  // A rebuild's are the flags the device missed.
  EXPECT_EQ(ActionOf(In(J::kRebuild), "* 3 FETCH (UID 9 FLAGS ())"),
            RespAction::kCollect);
}

TEST(ResponseClassTest, ExistsOnAnUnwatchedFolderLooksForNewMail) {
  EXPECT_EQ(ClassifyResponse(Unwatched(J::kPlain), "* 4 EXISTS").extra,
            Extra::kOwnNew);
  EXPECT_EQ(ClassifyResponse(In(J::kPlain), "* 4 EXISTS").extra, Extra::kNone);
  ResponseContext none = Unwatched(J::kPlain);
  none.folder_selected = false;
  EXPECT_EQ(ClassifyResponse(none, "* 4 EXISTS").extra, Extra::kNone);
}

TEST(ResponseClassTest, VanishedIsCollectedWhenItIsTheDevicesNews) {
  // The device's own expunge.
  ResponseContext expunge = In(J::kExpunge);
  expunge.job_may_expunge = true;
  EXPECT_EQ(ActionOf(expunge, "* VANISHED 4:5"), RespAction::kCollect);
  // Someone else's, on a folder the watch journals: the journal tells.
  EXPECT_EQ(ActionOf(In(J::kPlain), "* VANISHED 4:5"), RespAction::kDrop);
  // ... on one it does not: this link is the only source.
  EXPECT_EQ(ActionOf(Unwatched(J::kPlain), "* VANISHED 4:5"),
            RespAction::kCollect);
  EXPECT_EQ(ActionOf(Unwatched(J::kPlain), "* VANISHED (EARLIER) 4:5"),
            RespAction::kDrop);
  // A borrowed link's QRESYNC SELECT says what changed since the view.
  EXPECT_EQ(ActionOf(Unwatched(J::kLinkSelect), "* VANISHED (EARLIER) 4:5"),
            RespAction::kCollect);
  // The gateway's own jobs other than maintenance keep out of it...
  EXPECT_EQ(ActionOf(Unwatched(J::kSelectSearch), "* VANISHED 4:5"),
            RespAction::kDrop);
  // ... except a rebuild, whose expunges the device missed.
  EXPECT_EQ(ActionOf(In(J::kRebuild), "* VANISHED (EARLIER) 4:5"),
            RespAction::kCollect);
}

TEST(ResponseClassTest, SearchResultsGoToTheJobThatAskedForThem) {
  EXPECT_EQ(ActionOf(In(J::kSearch), "* SEARCH 4 9"), RespAction::kCollect);
  EXPECT_EQ(ActionOf(In(J::kSearch), "* SORT 9 4"), RespAction::kCollect);
  EXPECT_EQ(ActionOf(In(J::kPlain), "* SEARCH 4 9"), RespAction::kDrop);
  for (J job :
       {J::kViewSearch, J::kSelectSearch, J::kRebuildNew, J::kEvalView,
        J::kEvalNotify, J::kOwnNew, J::kStatusCount, J::kStatusUnseen}) {
    EXPECT_EQ(ActionOf(In(job), "* ESEARCH (TAG \"~p4\") UID ALL 4:9"),
              RespAction::kCollect)
        << static_cast<int>(job);
  }
  // A device's own ESEARCH (it may ask for one through a plain command).
  EXPECT_EQ(ActionOf(In(J::kPlain), "* ESEARCH (TAG \"a\") UID COUNT 2"),
            RespAction::kForward);
}

TEST(ResponseClassTest, StatusIsRewrittenForTheSelectedFolderOnly) {
  EXPECT_EQ(ActionOf(In(J::kStatus), "* STATUS INBOX (MESSAGES 9)"),
            RespAction::kCollect);
  EXPECT_EQ(ActionOf(In(J::kPlain), "* STATUS Work (MESSAGES 9)"),
            RespAction::kForward);
  EXPECT_EQ(ActionOf(In(J::kStatusExamine), "* STATUS Work (MESSAGES 9)"),
            RespAction::kDrop);
}

TEST(ResponseClassTest, SelectCodesAreKeptForTheView) {
  const ResponseClass uidvalidity =
      ClassifyResponse(In(J::kSelect), "* OK [UIDVALIDITY 7] UIDs valid");
  EXPECT_EQ(uidvalidity.uidvalidity, std::optional<uint32_t>(7));
  EXPECT_EQ(uidvalidity.action, RespAction::kForward);
  // A folder the gateway selects for itself is not the device's view.
  EXPECT_EQ(ClassifyResponse(In(J::kLinkSelect), "* OK [UIDVALIDITY 7] x")
                .uidvalidity,
            std::nullopt);
  EXPECT_EQ(ClassifyResponse(In(J::kStatusExamine), "* OK [UIDVALIDITY 7] x")
                .uidvalidity,
            std::nullopt);
  EXPECT_EQ(ClassifyResponse(In(J::kResumeSelect), "* OK [UIDVALIDITY 7] x")
                .uidvalidity,
            std::optional<uint32_t>(7));
  const ResponseClass modseq =
      ClassifyResponse(In(J::kResumeSelect), "* OK [HIGHESTMODSEQ 120] Hi");
  EXPECT_EQ(modseq.select_modseq, std::optional<uint64_t>(120));
  EXPECT_EQ(modseq.action, RespAction::kDrop);  // a resume is internal
  EXPECT_EQ(ClassifyResponse(In(J::kPlain), "* OK [HIGHESTMODSEQ 120] Hi")
                .select_modseq,
            std::nullopt);
}

TEST(ResponseClassTest, HighestModseqReachesOnlyACondstoreDevicesSelect) {
  const absl::string_view line = "* OK [HIGHESTMODSEQ 120] Highest";
  EXPECT_EQ(ActionOf(In(J::kSelect), line), RespAction::kDrop);
  ResponseContext condstore = In(J::kSelect);
  condstore.device_condstore = true;
  EXPECT_EQ(ActionOf(condstore, line), RespAction::kForward);
  // Outside a SELECT it is the store connection's bookkeeping.
  condstore.job = J::kPlain;
  EXPECT_EQ(ActionOf(condstore, line), RespAction::kDrop);
}

TEST(ResponseClassTest, TheGatewaysOwnJobsPassNothingOn) {
  for (J job : {J::kEnable, J::kResumeSelect, J::kViewSearch, J::kLinkEnable,
                J::kLinkSelect, J::kLinkSync, J::kAcquire, J::kStatusExamine,
                J::kCloseExpunge}) {
    EXPECT_TRUE(IsInternalJob(job)) << static_cast<int>(job);
    for (absl::string_view line :
         {"* OK [PERMANENTFLAGS (\\Seen)] Ok", "* FLAGS (\\Seen)",
          "* LIST () \"/\" INBOX", "* ENABLED QRESYNC", "* NO [ALERT] hm"}) {
      EXPECT_EQ(ActionOf(In(job), line), RespAction::kDrop)
          << static_cast<int>(job) << " " << line;
    }
  }
  for (J job : {J::kPlain, J::kSelect, J::kMessages, J::kSearch, J::kIdle,
                J::kStatus, J::kExpunge}) {
    EXPECT_FALSE(IsInternalJob(job)) << static_cast<int>(job);
  }
}

TEST(ResponseClassTest, TheDevicesCommandsGetTheRestAsItCame) {
  for (absl::string_view line :
       {"* LIST () \"/\" INBOX", "* FLAGS (\\Seen)", "* CAPABILITY IMAP4rev1",
        "* NO [ALERT] quota", "* BYE shutting down"}) {
    EXPECT_EQ(ActionOf(In(J::kPlain), line), RespAction::kForward) << line;
  }
  // ENABLED is always the gateway's own (the device's ENABLE is answered by
  // the gateway).
  EXPECT_EQ(ActionOf(In(J::kPlain), "* ENABLED CONDSTORE"), RespAction::kDrop);
}

}  // namespace
}  // namespace pimap::session
