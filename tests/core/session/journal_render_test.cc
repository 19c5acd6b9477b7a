// RenderJournal and FlagsUnresolved (core/session/journal_render.h) on a bare
// DeviceSession: what a device is told of its journal's events against its
// view. The driver writing and pushing the text is device_driver_*_test.cc's.
#include "core/session/journal_render.h"

#include <string>
#include <vector>

#include "core/session/event.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class JournalRenderTest : public ::testing::Test {
 protected:
  JournalRenderTest() : s_("u", "d", 1, config_) {
    s_.selected_folder = "INBOX";
    s_.view_uidvalidity = 7;
    for (uint32_t uid : {3u, 5u}) s_.view.Insert(uid);
  }

  uint64_t Add(EventKind kind, uint32_t uid,
               std::vector<std::string> flags = {}, uint32_t uidvalidity = 7) {
    StoreEvent e;
    e.kind = kind;
    e.folder = "INBOX";
    e.uidvalidity = uidvalidity;
    e.uid = uid;
    e.flags = std::move(flags);
    return s_.journal.Append(std::move(e));
  }

  SessionConfig config_;
  DeviceSession s_;
};

TEST_F(JournalRenderTest, NewMailIsAnnouncedOnceAndDelivered) {
  const uint64_t seq = Add(EventKind::kNew, 8);
  RenderedEvents r = RenderJournal(s_, {});
  EXPECT_EQ(r.out, "* 3 EXISTS\r\n");
  EXPECT_THAT(r.new_uids, ElementsAre(8u));
  EXPECT_EQ(r.rendered, 1u);
  EXPECT_TRUE(r.view_changed);
  EXPECT_EQ(r.last_seq, seq);
  EXPECT_TRUE(s_.view.Contains(8));
  // Delivered: not rendered again.
  r = RenderJournal(s_, {});
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.last_seq, 0u);
}

TEST_F(JournalRenderTest, KnownUidIsSaidAgainOnlyInAReplay) {
  Add(EventKind::kNew, 5);  // the same news from two sources
  EXPECT_EQ(RenderJournal(s_, {}).out, "");
  s_.journal.OnDisconnect();  // delivered again becomes undelivered
  EXPECT_EQ(RenderJournal(s_, {.replay = true}).out, "* 2 EXISTS\r\n");
}

TEST_F(JournalRenderTest, FlagChangesAreToldOnce) {
  Add(EventKind::kFlags, 5, {"\\Seen"});
  Add(EventKind::kFlags, 5, {"\\Seen"});  // an echo
  Add(EventKind::kFlags, 9, {"\\Seen"});  // not in the view
  RenderedEvents r = RenderJournal(s_, {});
  EXPECT_EQ(r.out, "* 2 FETCH (UID 5 FLAGS (\\Seen))\r\n");
  EXPECT_FALSE(r.view_changed);
  EXPECT_THAT(r.new_uids, IsEmpty());
}

// RFC 7162 §3.2: once the device enabled CONDSTORE, every unsolicited FETCH
// carries MODSEQ, where the event knows it; without CONDSTORE never.
TEST_F(JournalRenderTest, FlagChangesCarryModseqForACondstoreDevice) {
  StoreEvent e;
  e.kind = EventKind::kFlags;
  e.folder = "INBOX";
  e.uidvalidity = 7;
  e.uid = 5;
  e.flags = {"\\Seen"};
  e.modseq = 42;
  s_.journal.Append(e);
  EXPECT_EQ(RenderJournal(s_, {.condstore = true}).out,
            "* 2 FETCH (UID 5 FLAGS (\\Seen) MODSEQ (42))\r\n");
  e.flags = {};
  e.modseq = 0;  // a push that did not say it
  s_.journal.Append(e);
  EXPECT_EQ(RenderJournal(s_, {.condstore = true}).out,
            "* 2 FETCH (UID 5 FLAGS ())\r\n");
  e.flags = {"\\Flagged"};
  e.modseq = 43;
  s_.journal.Append(e);
  EXPECT_EQ(RenderJournal(s_, {}).out,
            "* 2 FETCH (UID 5 FLAGS (\\Flagged))\r\n");
}

TEST_F(JournalRenderTest, ExpungeStopsWhileAnMsnCommandRuns) {
  Add(EventKind::kNew, 8);
  Add(EventKind::kExpunge, 3);
  Add(EventKind::kNew, 9);
  EXPECT_EQ(RenderJournal(s_, {.allow_expunge = false}).out, "* 3 EXISTS\r\n");
  EXPECT_EQ(RenderJournal(s_, {}).out, "* 1 EXPUNGE\r\n* 3 EXISTS\r\n");
}

TEST_F(JournalRenderTest, AtMostMaxEvents) {
  Add(EventKind::kNew, 8);
  Add(EventKind::kNew, 9);
  EXPECT_EQ(RenderJournal(s_, {.max_events = 1}).out, "* 3 EXISTS\r\n");
  EXPECT_EQ(RenderJournal(s_, {}).out, "* 4 EXISTS\r\n");
}

TEST_F(JournalRenderTest, UnresolvedFlagChangeHoldsBackWhatFollows) {
  StoreEvent e;
  e.kind = EventKind::kFlags;
  e.folder = "INBOX";
  e.uidvalidity = 7;
  e.uid = 5;
  e.resolve = true;  // the full flag list is not known
  const uint64_t seq = s_.journal.Append(e);
  Add(EventKind::kNew, 8);
  const std::vector<const JournalEntry*> entries =
      s_.journal.UndeliveredEntries("INBOX");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_TRUE(FlagsUnresolved(s_, *entries[0], /*resolved_seq=*/0));
  EXPECT_FALSE(FlagsUnresolved(s_, *entries[0], seq));  // fetched
  EXPECT_FALSE(FlagsUnresolved(s_, *entries[1], 0));    // not a flag change

  EXPECT_EQ(RenderJournal(s_, {}).out, "");  // waits for the fetch
  // Fetched: the change itself says nothing (the fetch's answer does).
  EXPECT_EQ(RenderJournal(s_, {.flags_resolved_seq = seq}).out,
            "* 3 EXISTS\r\n");
}

TEST_F(JournalRenderTest, OtherUidValidityAndOtherViewsAreSkipped) {
  Add(EventKind::kNew, 8, {}, /*uidvalidity=*/6);  // an older incarnation
  s_.classified.insert(9);                         // outside this view
  Add(EventKind::kNew, 9);
  RenderedEvents r = RenderJournal(s_, {});
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.last_seq, 0u);  // taken (delivered) all the same
  EXPECT_FALSE(s_.classified.contains(9));
  EXPECT_FALSE(s_.view.Contains(9));
}

TEST_F(JournalRenderTest, NothingWithoutASelectedFolder) {
  Add(EventKind::kNew, 8);
  s_.selected_folder.clear();
  EXPECT_EQ(RenderJournal(s_, {}).last_seq, 0u);
}

// A selected virtual folder (XPSEARCH) FLAGGED over INBOX: flag changes the
// flags decide move messages out of (EXPUNGE) and into (EXISTS) its view.
class VfolderRenderTest : public JournalRenderTest {
 protected:
  VfolderRenderTest() {
    FilterSpec flagged;
    flagged.all = false;
    flagged.search_keys = "FLAGGED";
    EXPECT_TRUE(
        s_.vfolders.Add("Starred", VirtualFolder{"INBOX", flagged}, 0, 0).ok());
    s_.selected_vfolder = "Starred";
  }
};

TEST_F(VfolderRenderTest, UnflaggedMessageLeavesTheView) {
  Add(EventKind::kFlags, 3, {"\\Seen"});
  RenderedEvents r = RenderJournal(s_, {});
  EXPECT_EQ(r.out, "* 1 EXPUNGE\r\n");
  EXPECT_TRUE(r.view_changed);
  EXPECT_FALSE(s_.view.Contains(3));
  // Still flagged: told as any flag change.
  Add(EventKind::kFlags, 5, {"\\Flagged", "\\Seen"});
  EXPECT_EQ(RenderJournal(s_, {}).out,
            "* 1 FETCH (UID 5 FLAGS (\\Flagged \\Seen))\r\n");
}

TEST_F(VfolderRenderTest, LeavingWaitsWhereNoExpungeMayGo) {
  Add(EventKind::kFlags, 5, {});
  EXPECT_EQ(RenderJournal(s_, {.allow_expunge = false}).out, "");
  EXPECT_TRUE(s_.view.Contains(5));
  EXPECT_EQ(RenderJournal(s_, {}).out, "* 2 EXPUNGE\r\n");
}

TEST_F(VfolderRenderTest, FlaggedMessageAboveTheViewEntersAsNewMail) {
  Add(EventKind::kFlags, 8, {"\\Flagged"});
  Add(EventKind::kFlags, 4, {"\\Flagged"});  // below UID 5: cannot
  RenderedEvents r = RenderJournal(s_, {});
  EXPECT_EQ(r.out, "* 3 EXISTS\r\n");
  EXPECT_THAT(r.new_uids, ElementsAre(8u));
  EXPECT_FALSE(s_.view.Contains(4));
}

// A device-only EXPUNGE cannot be replayed: unacknowledged at a disconnect,
// the folder is rebuilt (RESYNC) rather than replayed as a flag change the
// view no longer shows (the device would stay one message off).
TEST_F(VfolderRenderTest, LeavingThenADisconnectRebuildsTheFolder) {
  Add(EventKind::kFlags, 3, {"\\Seen"});
  EXPECT_EQ(RenderJournal(s_, {}).out, "* 1 EXPUNGE\r\n");
  s_.journal.OnDisconnect();
  EXPECT_TRUE(s_.journal.NeedsRebuild("INBOX"));
  EXPECT_TRUE(s_.journal.Uncertain("INBOX"));
  EXPECT_EQ(RenderJournal(s_, {.replay = true}).out, "");
}

// Entering the view is new mail to the device: a replay says EXISTS again.
TEST_F(VfolderRenderTest, EnteringThenADisconnectRepeatsTheExists) {
  Add(EventKind::kFlags, 8, {"\\Flagged"});
  EXPECT_EQ(RenderJournal(s_, {}).out, "* 3 EXISTS\r\n");
  s_.journal.OnDisconnect();
  EXPECT_FALSE(s_.journal.NeedsRebuild("INBOX"));
  RenderedEvents r = RenderJournal(s_, {.replay = true});
  EXPECT_EQ(r.out, "* 3 EXISTS\r\n");
  EXPECT_THAT(r.new_uids, ElementsAre(8u));
}

TEST_F(JournalRenderTest, AViewFilterIsNotFollowedOnFlagChanges) {
  Add(EventKind::kFlags, 3, {});
  EXPECT_EQ(RenderJournal(s_, {}).out, "* 1 FETCH (UID 3 FLAGS ())\r\n");
  EXPECT_TRUE(s_.view.Contains(3));
}

}  // namespace
}  // namespace pimap::session
