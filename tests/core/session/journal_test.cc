// Journal tests: per-folder order, delivery marks and acknowledgement,
// overflow, and disconnect with and without unacknowledged non-idempotent
// events.
#include "core/session/journal.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

StoreEvent Ev(EventKind kind, std::string folder, uint32_t uid) {
  StoreEvent e;
  e.kind = kind;
  e.folder = std::move(folder);
  e.uid = uid;
  e.uidvalidity = 7;
  return e;
}

// UIDs of the undelivered events of a folder, in order.
std::vector<uint32_t> Pending(const Journal& j, absl::string_view folder) {
  std::vector<uint32_t> out;
  for (const StoreEvent* e : j.Undelivered(folder)) out.push_back(e->uid);
  return out;
}

TEST(EventTest, Idempotence) {
  EXPECT_TRUE(IsIdempotent(EventKind::kNew));
  EXPECT_TRUE(IsIdempotent(EventKind::kFlags));
  EXPECT_FALSE(IsIdempotent(EventKind::kExpunge));
  EXPECT_TRUE(IsIdempotent(EventKind::kFolderCreated));
  EXPECT_TRUE(IsIdempotent(EventKind::kFolderDeleted));
  EXPECT_FALSE(IsIdempotent(EventKind::kFolderRenamed));
}

TEST(JournalTest, KeepsOrderPerFolderAndSeqsAcrossFolders) {
  Journal j(100);
  EXPECT_EQ(j.limit(), 100u);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 1)), 1u);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "Sent", 2)), 2u);
  EXPECT_EQ(j.Append(Ev(EventKind::kFlags, "INBOX", 3)), 3u);
  EXPECT_EQ(j.Append(Ev(EventKind::kExpunge, "INBOX", 4)), 4u);
  EXPECT_EQ(j.last_seq(), 4u);
  EXPECT_EQ(j.size(), 4u);
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(1, 3, 4));
  EXPECT_THAT(Pending(j, "Sent"), ElementsAre(2));
  EXPECT_THAT(Pending(j, "Trash"), IsEmpty());
  std::vector<uint64_t> seqs;
  for (const JournalEntry* e : j.UndeliveredEntries("INBOX")) {
    seqs.push_back(e->seq);
  }
  EXPECT_THAT(seqs, ElementsAre(1, 3, 4));
  EXPECT_THAT(j.FoldersWithEvents(), UnorderedElementsAre("INBOX", "Sent"));
}

TEST(JournalTest, MarkDeliveredThenAck) {
  Journal j(100);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.Append(Ev(EventKind::kNew, "Sent", 2));
  j.Append(Ev(EventKind::kNew, "INBOX", 3));
  j.Append(Ev(EventKind::kNew, "INBOX", 4));
  j.MarkDelivered("INBOX", 3);  // partial delivery: seq 1 and 3
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(4));
  EXPECT_EQ(j.size(), 4u);      // delivered events still held until acked
  j.MarkDelivered("INBOX", 2);  // never moves backwards
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(4));
  j.Append(Ev(EventKind::kNew, "INBOX", 5));
  j.AckDelivered("INBOX");
  EXPECT_EQ(j.size(), 3u);
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(4, 5));
  EXPECT_THAT(Pending(j, "Sent"), ElementsAre(2));
  j.MarkDelivered("Sent", j.last_seq());
  j.MarkDelivered("INBOX", j.last_seq());
  j.AckAllDelivered();
  EXPECT_EQ(j.size(), 0u);
  EXPECT_THAT(j.FoldersWithEvents(), IsEmpty());
  // Unknown folders are no-ops.
  j.MarkDelivered("Nope", 99);
  j.AckDelivered("Nope");
  EXPECT_FALSE(j.NeedsRebuild("Nope"));
}

TEST(JournalTest, AckUpToASeqKeepsWhatWasDeliveredLater) {
  Journal j(100);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));  // seq 1
  j.Append(Ev(EventKind::kNew, "INBOX", 2));  // seq 2
  j.Append(Ev(EventKind::kNew, "INBOX", 3));  // seq 3
  j.MarkDelivered("INBOX", 3);
  // A command read before seq 2 and 3 were written acknowledges seq 1 only.
  j.AckDelivered("INBOX", 1);
  EXPECT_EQ(j.size(), 2u);
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());  // still delivered, not acked
  j.OnDisconnect();                              // ... so they come again
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(2, 3));
  j.MarkDelivered("INBOX", 3);
  j.AckDelivered("INBOX", 3);
  EXPECT_EQ(j.size(), 0u);
}

TEST(JournalTest, AckWithoutDeliveryKeepsEvents) {
  Journal j(10);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.AckDelivered("INBOX");
  j.AckAllDelivered();
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(1));
}

TEST(JournalTest, LongRunOfDeliverAndAckStaysCompact) {
  Journal j(50);
  for (uint32_t i = 1; i <= 10000; ++i) {
    ASSERT_NE(j.Append(Ev(EventKind::kNew, "INBOX", i)), 0u);
    if (i % 3 == 0) {
      j.MarkDelivered("INBOX", j.last_seq() - 1);
      j.AckDelivered("INBOX");
      ASSERT_THAT(Pending(j, "INBOX"), ElementsAre(i));
    }
  }
  EXPECT_LE(j.size(), 3u);
  EXPECT_LT(j.MemoryBytes(), 50u * sizeof(JournalEntry) + 4096);
}

TEST(JournalTest, OverflowDropsOnlyThatFolderAndMarksIt) {
  Journal j(4);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.Append(Ev(EventKind::kNew, "INBOX", 2));
  j.Append(Ev(EventKind::kNew, "Sent", 3));
  j.Append(Ev(EventKind::kFlags, "INBOX", 4));
  j.MarkDelivered("INBOX", 1);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 5)), 0u);  // full
  EXPECT_TRUE(j.NeedsRebuild("INBOX"));
  EXPECT_FALSE(j.NeedsRebuild("Sent"));
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());
  EXPECT_THAT(Pending(j, "Sent"), ElementsAre(3));
  EXPECT_EQ(j.size(), 1u);
  // While it needs a rebuild, the folder journals nothing (the rebuild
  // covers it) even though there is room now.
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 6)), 0u);
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());
  EXPECT_THAT(j.FoldersNeedingRebuild(), ElementsAre("INBOX"));
  j.ClearRebuild("INBOX");
  EXPECT_FALSE(j.NeedsRebuild("INBOX"));
  EXPECT_NE(j.Append(Ev(EventKind::kNew, "INBOX", 7)), 0u);
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(7));
}

TEST(JournalTest, OverflowOfAFolderWithoutEvents) {
  Journal j(2);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.Append(Ev(EventKind::kNew, "INBOX", 2));
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "Sent", 3)), 0u);
  EXPECT_TRUE(j.NeedsRebuild("Sent"));
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(1, 2));
}

TEST(JournalTest, ZeroLimitJournalsNothing) {
  Journal j(0);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 1)), 0u);
  EXPECT_TRUE(j.NeedsRebuild("INBOX"));
  EXPECT_EQ(j.size(), 0u);
}

TEST(JournalTest, DisconnectReplaysIdempotentUnackedEvents) {
  Journal j(100);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.Append(Ev(EventKind::kFlags, "INBOX", 2));
  j.Append(Ev(EventKind::kExpunge, "INBOX", 3));  // undelivered: safe
  j.MarkDelivered("INBOX", 2);
  j.OnDisconnect();
  EXPECT_FALSE(j.NeedsRebuild("INBOX"));
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(1, 2, 3));
  EXPECT_EQ(j.size(), 3u);
}

// A flag change rendered as a device-only EXPUNGE (a virtual folder's view,
// journal_render.cc) counts as one at a disconnect; RenderedAs touches only
// the undelivered event of that seq.
TEST(JournalTest, FlagChangeRenderedAsExpungeIsNotReplayed) {
  Journal j(100);
  const uint64_t seq = j.Append(Ev(EventKind::kFlags, "INBOX", 2));
  j.Append(Ev(EventKind::kFlags, "INBOX", 3));
  j.RenderedAs("INBOX", seq, EventKind::kExpunge);
  j.RenderedAs("Sent", seq, EventKind::kExpunge);  // no such folder: nothing
  EXPECT_EQ(j.Undelivered("INBOX")[0]->kind, EventKind::kExpunge);
  EXPECT_EQ(j.Undelivered("INBOX")[1]->kind, EventKind::kFlags);
  j.MarkDelivered("INBOX", seq);
  j.OnDisconnect();
  EXPECT_TRUE(j.Uncertain("INBOX"));
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());
}

TEST(JournalTest, DisconnectWithUnackedExpungeMarksFolderUncertain) {
  Journal j(100);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.Append(Ev(EventKind::kExpunge, "INBOX", 2));
  j.Append(Ev(EventKind::kFlags, "INBOX", 3));
  j.Append(Ev(EventKind::kExpunge, "Sent", 4));
  j.Append(Ev(EventKind::kNew, "Sent", 5));
  j.MarkDelivered("INBOX", 2);
  j.OnDisconnect();
  EXPECT_TRUE(j.NeedsRebuild("INBOX"));
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());  // cleared, even undelivered
  EXPECT_FALSE(j.NeedsRebuild("Sent"));         // its expunge was never sent
  EXPECT_THAT(Pending(j, "Sent"), ElementsAre(4, 5));
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 6)), 0u);
  j.ClearRebuild("INBOX");
  EXPECT_NE(j.Append(Ev(EventKind::kNew, "INBOX", 7)), 0u);
}

TEST(JournalTest, AckedExpungeIsSafeAtDisconnect) {
  Journal j(100);
  j.Append(Ev(EventKind::kExpunge, "INBOX", 1));
  j.MarkDelivered("INBOX", 1);
  j.AckDelivered("INBOX");
  j.Append(Ev(EventKind::kFlags, "INBOX", 2));
  j.MarkDelivered("INBOX", 2);
  j.OnDisconnect();
  EXPECT_FALSE(j.NeedsRebuild("INBOX"));
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(2));
}

TEST(JournalTest, UnackedRenameMarksFolderUncertain) {
  Journal j(100);
  StoreEvent e = Ev(EventKind::kFolderRenamed, "Old", 0);
  e.new_folder = "New";
  j.Append(e);
  j.MarkDelivered("Old", j.last_seq());
  j.OnDisconnect();
  EXPECT_TRUE(j.NeedsRebuild("Old"));
}

TEST(JournalTest, MarkUncertainDropsTheFolderUntilItsRebuild) {
  Journal j(100);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.Append(Ev(EventKind::kNew, "Sent", 2));
  j.MarkUncertain("INBOX");
  j.MarkUncertain("Work");  // a folder without events gets the mark too
  EXPECT_TRUE(j.Uncertain("INBOX"));
  EXPECT_TRUE(j.Uncertain("Work"));
  EXPECT_FALSE(j.NeedsRebuild("Sent"));
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());
  EXPECT_EQ(j.size(), 1u);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 3)), 0u);
  j.ClearRebuild("INBOX");
  EXPECT_FALSE(j.Uncertain("INBOX"));
  EXPECT_NE(j.Append(Ev(EventKind::kNew, "INBOX", 4)), 0u);
}

TEST(JournalTest, MarkIncompleteRebuildsLikeAnOverflow) {
  Journal j(100);
  j.Append(Ev(EventKind::kNew, "INBOX", 1));
  j.MarkIncomplete("INBOX");
  EXPECT_TRUE(j.NeedsRebuild("INBOX"));
  EXPECT_FALSE(j.Uncertain("INBOX"));  // an exact rebuild will do
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 2)), 0u);
  j.ClearRebuild("INBOX");
  EXPECT_FALSE(j.NeedsRebuild("INBOX"));
}

// Chaos defect 4: what reaches us while the rebuild's snapshot is on its way
// may postdate it: journaled, though the folder keeps its mark till the end.
TEST(JournalTest, EventsAfterTheSnapshotWasSentAreJournaled) {
  Journal j(100);
  j.MarkUncertain("INBOX");
  EXPECT_EQ(j.Append(Ev(EventKind::kExpunge, "INBOX", 1)), 0u);
  const uint64_t snapshot_seq = j.last_seq();
  j.SnapshotSent("INBOX");
  EXPECT_TRUE(j.Uncertain("INBOX"));  // a resume meanwhile still resyncs
  EXPECT_NE(j.Append(Ev(EventKind::kExpunge, "INBOX", 2)), 0u);
  j.MarkDelivered("INBOX", snapshot_seq);
  j.AckDelivered("INBOX");
  j.ClearRebuild("INBOX");
  EXPECT_FALSE(j.NeedsRebuild("INBOX"));
  EXPECT_THAT(Pending(j, "INBOX"), ElementsAre(2u));
}

TEST(JournalTest, SnapshotNeverAnsweredDropsWhatCameMeanwhile) {
  Journal j(100);
  j.MarkUncertain("INBOX");
  j.SnapshotSent("INBOX");
  j.Append(Ev(EventKind::kNew, "INBOX", 2));
  j.OnDisconnect();  // the next resume takes a snapshot anew
  EXPECT_TRUE(j.Uncertain("INBOX"));
  EXPECT_THAT(Pending(j, "INBOX"), IsEmpty());
  EXPECT_EQ(j.size(), 0u);
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 3)), 0u);
}

TEST(JournalTest, OverflowWhileTheSnapshotIsOnItsWayOutlivesIt) {
  Journal j(1);
  j.MarkIncomplete("INBOX");
  j.SnapshotSent("INBOX");
  j.Append(Ev(EventKind::kNew, "INBOX", 2));
  EXPECT_EQ(j.Append(Ev(EventKind::kNew, "INBOX", 3)), 0u);  // overflows
  j.ClearRebuild("INBOX");  // the snapshot did not cover 3
  EXPECT_TRUE(j.NeedsRebuild("INBOX"));
}

TEST(JournalTest, MemoryCountsStrings) {
  Journal j(100);
  const size_t empty = j.MemoryBytes();
  StoreEvent e = Ev(EventKind::kFlags, "a folder with a rather long name", 1);
  e.flags = {"\\Seen", "$SomeRatherLongKeywordName"};
  j.Append(e);
  EXPECT_GT(j.MemoryBytes(), empty + sizeof(JournalEntry) + 60);
}

}  // namespace
}  // namespace pimap::session
