// ParkedMailbox while parked: store events rendered as the store would have
// sent them to the client, with the client's MSNs (parked_mailbox.cc).
#include "core/session/parked_mailbox.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/parked_store_model.h"

namespace pimap::session {
namespace {

using testing::ClientModel;
using ::testing::HasSubstr;
using testing::StoreModel;

constexpr uint32_t kUidvalidity = 77;

ParkedClientState State(std::vector<uint32_t> uids, bool condstore = false,
                        bool qresync = false) {
  ParkedClientState s;
  s.folder = "INBOX";
  s.uidvalidity = kUidvalidity;
  s.view = UidView::FromSortedUids(uids);
  s.highest_modseq = 100;
  s.condstore = condstore;
  s.qresync = qresync;
  return s;
}

ParkedMailbox Park(ParkedClientState s) {
  absl::StatusOr<ParkedMailbox> m = ParkedMailbox::Create(std::move(s));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

StoreEvent Ev(EventKind kind, uint32_t uid, std::vector<std::string> flags = {},
              uint64_t modseq = 0, std::string folder = "INBOX") {
  StoreEvent e;
  e.kind = kind;
  e.folder = std::move(folder);
  e.uidvalidity = kUidvalidity;
  e.uid = uid;
  e.flags = std::move(flags);
  e.modseq = modseq;
  return e;
}

StoreEvent Folder(EventKind kind, std::string folder,
                  std::string new_folder = "") {
  StoreEvent e;
  e.kind = kind;
  e.folder = std::move(folder);
  e.new_folder = std::move(new_folder);
  return e;
}

TEST(ParkedMailboxTest, CreateRejectsMissingFolderOrUidvalidity) {
  ParkedClientState no_folder = State({1});
  no_folder.folder.clear();
  EXPECT_FALSE(ParkedMailbox::Create(std::move(no_folder)).ok());
  ParkedClientState no_uv = State({1});
  no_uv.uidvalidity = 0;
  EXPECT_FALSE(ParkedMailbox::Create(std::move(no_uv)).ok());
  ParkedMailbox m = Park(State({1, 2}, /*condstore=*/false, /*qresync=*/true));
  EXPECT_TRUE(m.condstore()) << "QRESYNC implies CONDSTORE";
  EXPECT_EQ(m.state(), ParkedMailbox::State::kParked);
}

TEST(ParkedMailboxTest, MiddleExpungeRenumbersLaterFlagChange) {
  ParkedMailbox m = Park(State({10, 11, 12, 13, 14}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 11)), "* 2 EXPUNGE\r\n");
  // UID 13 was MSN 4; after MSN 2 went it is MSN 3.
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 13, {"\\Seen"})),
            "* 3 FETCH (FLAGS (\\Seen))\r\n");
  EXPECT_EQ(m.view().size(), 4u);
  EXPECT_EQ(m.view().UidAt(3), 13u);
}

TEST(ParkedMailboxTest, SeveralExpungesInARow) {
  ParkedMailbox m = Park(State({1, 2, 3, 4, 5}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 2)), "* 2 EXPUNGE\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 3)), "* 2 EXPUNGE\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 5)), "* 3 EXPUNGE\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 1)), "* 1 EXPUNGE\r\n");
  EXPECT_EQ(m.view().Serialize(), "4");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {"\\Flagged"})),
            "* 1 FETCH (FLAGS (\\Flagged))\r\n");
}

TEST(ParkedMailboxTest, NewAfterExpunge) {
  ParkedMailbox m = Park(State({1, 2, 3, 4, 5}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 2)), "* 2 EXPUNGE\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 6)), "* 5 EXISTS\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 9)), "* 6 EXISTS\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 9, {"\\Seen"})),
            "* 6 FETCH (FLAGS (\\Seen))\r\n");
  EXPECT_EQ(m.view().Serialize(), "1,3:6,9");
}

TEST(ParkedMailboxTest, NewInAnEmptyMailbox) {
  ParkedMailbox m = Park(State({}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 1)), "* 1 EXISTS\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 1)), "* 1 EXPUNGE\r\n");
  // UID 1 is gone for good: a late repeat of its arrival is not news.
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 1)), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 2)), "* 1 EXISTS\r\n");
}

TEST(ParkedMailboxTest, QresyncClientGetsVanished) {
  ParkedMailbox m = Park(State({1, 2, 3, 4, 5}, true, true));
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 2)), "* VANISHED 2\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 4)), "* VANISHED 4\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 5, {"\\Seen"}, 107)),
            "* 3 FETCH (UID 5 MODSEQ (107) FLAGS (\\Seen))\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 6)), "* 4 EXISTS\r\n");
}

TEST(ParkedMailboxTest, CondstoreClientGetsUidAndModseq) {
  ParkedMailbox m = Park(State({1, 2, 3}, /*condstore=*/true));
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 2, {"\\Seen", "$Work"}, 105)),
            "* 2 FETCH (UID 2 MODSEQ (105) FLAGS (\\Seen $Work))\r\n");
  // An event source without MODSEQ: no invented one.
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 3, {"\\Answered"})),
            "* 3 FETCH (UID 3 FLAGS (\\Answered))\r\n");
  // CONDSTORE clients get plain EXPUNGE.
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 1)), "* 1 EXPUNGE\r\n");
  EXPECT_EQ(m.highest_modseq(), 105u);
}

TEST(ParkedMailboxTest, PlainClientGetsNeitherUidNorModseq) {
  // As Dovecot 2.3 sends it to a client that enabled neither (observed).
  ParkedMailbox m = Park(State({1, 2, 3}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 2, {"\\Seen"}, 105)),
            "* 2 FETCH (FLAGS (\\Seen))\r\n");
  EXPECT_EQ(m.highest_modseq(), 105u) << "tracked even if not shown";
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 1, {})), "* 1 FETCH (FLAGS ())\r\n");
}

TEST(ParkedMailboxTest, FlagsThatAreNotFlagsAreNeverShown) {
  // Issue 14's injection: nothing but valid flags reaches the client, in the
  // FETCH and in the keywords announced with "* FLAGS".
  ParkedClientState s = State({1, 2, 3});
  s.mailbox_flags = {"\\Seen", "\\Flagged"};
  ParkedMailbox m = Park(std::move(s));
  const std::string out = m.Apply(Ev(EventKind::kFlags, 2,
                                     {"\\Seen", "\\Flagged))\r\n* 1 EXPUNGE",
                                      "k)\r\n* BYE", "$Ok", "\\Junk"}));
  EXPECT_EQ(out,
            "* FLAGS (\\Seen \\Flagged $Ok)\r\n"
            "* 2 FETCH (FLAGS (\\Seen $Ok))\r\n");
}

TEST(ParkedMailboxTest, UnknownUidsIgnored) {
  ParkedMailbox m = Park(State({1, 2, 4}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 3, {"\\Seen"})), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 9, {"\\Seen"})), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 3)), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 0)), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 0)), "");
  EXPECT_EQ(m.view().Serialize(), "1:2,4");
}

TEST(ParkedMailboxTest, DuplicatesIgnored) {
  ParkedMailbox m = Park(State({1, 2, 4}, /*condstore=*/true));
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 5)), "* 4 EXISTS\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 5)), "");
  // Lower than the highest known: a store never reports it as new.
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 3)), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 2)), "* 2 EXPUNGE\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 2)), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {"\\Seen"}, 110)),
            "* 2 FETCH (UID 4 MODSEQ (110) FLAGS (\\Seen))\r\n");
  // The same change from a second source (without MODSEQ), or again.
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {"\\Seen"})), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {"\\Seen"}, 110)), "");
  // An older change arriving late.
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {}, 108)), "");
  // Read, unread, read: each is news.
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {}, 111)),
            "* 2 FETCH (UID 4 MODSEQ (111) FLAGS ())\r\n");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 4, {"\\Seen"}, 112)),
            "* 2 FETCH (UID 4 MODSEQ (112) FLAGS (\\Seen))\r\n");
  EXPECT_EQ(m.view().Serialize(), "1,4:5");
}

TEST(ParkedMailboxTest, OtherFolderIgnored) {
  ParkedMailbox m = Park(State({1, 2}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 3, {}, 0, "Archive")), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 1, {}, 0, "Archive")), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 2, {"\\Seen"}, 0, "Archive")), "");
  EXPECT_EQ(m.Apply(Folder(EventKind::kFolderDeleted, "Archive")), "");
  EXPECT_EQ(m.Apply(Folder(EventKind::kFolderRenamed, "INBOXES", "X")), "");
  EXPECT_EQ(m.state(), ParkedMailbox::State::kParked);
  // INBOX is case-insensitive.
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 3, {}, 0, "inbox")), "* 3 EXISTS\r\n");
}

TEST(ParkedMailboxTest, OtherNamesAreCaseSensitive) {
  ParkedClientState s = State({1});
  s.folder = "Work";
  ParkedMailbox m = Park(std::move(s));
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 2, {}, 0, "work")), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 2, {}, 0, "Work")), "* 2 EXISTS\r\n");
}

TEST(ParkedMailboxTest, UidvalidityChangeDisconnects) {
  ParkedMailbox m = Park(State({1, 2}));
  StoreEvent e = Ev(EventKind::kNew, 1);
  e.uidvalidity = kUidvalidity + 1;
  EXPECT_EQ(m.Apply(e), "");
  EXPECT_EQ(m.state(), ParkedMailbox::State::kDisconnect);
  EXPECT_THAT(m.bye_reason(), HasSubstr("UIDVALIDITY"));
  // Nothing more is rendered for a client about to get BYE.
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 3)), "");
}

TEST(ParkedMailboxTest, UnknownUidvalidityInEventIsAccepted) {
  ParkedMailbox m = Park(State({1}));
  StoreEvent e = Ev(EventKind::kNew, 2);
  e.uidvalidity = 0;  // a push that does not say
  EXPECT_EQ(m.Apply(e), "* 2 EXISTS\r\n");
}

TEST(ParkedMailboxTest, FolderDeletedDisconnects) {
  ParkedMailbox m = Park(State({1}));
  EXPECT_EQ(m.Apply(Folder(EventKind::kFolderCreated, "INBOX")), "");
  EXPECT_EQ(m.state(), ParkedMailbox::State::kParked);
  EXPECT_EQ(m.Apply(Folder(EventKind::kFolderDeleted, "INBOX")), "");
  EXPECT_EQ(m.state(), ParkedMailbox::State::kDisconnect);
  EXPECT_THAT(m.bye_reason(), HasSubstr("deleted"));
}

TEST(ParkedMailboxTest, FolderOrParentRenamedDisconnects) {
  ParkedClientState s = State({1});
  s.folder = "Work/2024";
  s.delimiter = '/';
  ParkedMailbox self = Park(s);
  self.Apply(Folder(EventKind::kFolderRenamed, "Work/2024", "Work/Old"));
  EXPECT_EQ(self.state(), ParkedMailbox::State::kDisconnect);
  EXPECT_THAT(self.bye_reason(), HasSubstr("renamed"));

  ParkedMailbox parent = Park(s);
  parent.Apply(Folder(EventKind::kFolderRenamed, "Work/20", "X"));
  EXPECT_EQ(parent.state(), ParkedMailbox::State::kParked) << "not a parent";
  parent.Apply(Folder(EventKind::kFolderRenamed, "Work", "Job"));
  EXPECT_EQ(parent.state(), ParkedMailbox::State::kDisconnect);

  // Deleting a parent leaves its children (RFC 3501 §6.3.4).
  ParkedMailbox child = Park(s);
  child.Apply(Folder(EventKind::kFolderDeleted, "Work"));
  EXPECT_EQ(child.state(), ParkedMailbox::State::kParked);
}

TEST(ParkedMailboxTest, NewKeywordAnnouncedWithFlagsAndPermanentFlags) {
  ParkedClientState s = State({1, 2});
  s.mailbox_flags = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen",
                     "\\Draft"};
  s.permanent_flags = s.mailbox_flags;
  s.permanent_flags.push_back("\\*");
  ParkedMailbox m = Park(std::move(s));
  // What Dovecot sent in IDLE for "STORE 3 +FLAGS ($Foo)" (observed).
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 2, {"$Foo"})),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Foo)\r\n"
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
            "\\Draft $Foo \\*)] Flags permitted.\r\n"
            "* 2 FETCH (FLAGS ($Foo))\r\n");
  // Known now (in any case).
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 1, {"$foo", "\\Seen"})),
            "* 1 FETCH (FLAGS ($foo \\Seen))\r\n");
}

TEST(ParkedMailboxTest, KeywordsNotAnnouncedWhenClientFlagsUnknown) {
  ParkedMailbox m = Park(State({1}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 1, {"$Foo"})),
            "* 1 FETCH (FLAGS ($Foo))\r\n");
}

TEST(ParkedMailboxTest, RecentAndNonAtomFlagsAreNotShown) {
  ParkedMailbox m = Park(State({1}));
  EXPECT_EQ(m.Apply(Ev(EventKind::kFlags, 1,
                       {"\\Recent", "\\Seen", "bad flag", "x)\r\n* BYE", "\\",
                        "$Ok"})),
            "* 1 FETCH (FLAGS (\\Seen $Ok))\r\n");
}

TEST(ParkedMailboxTest, FlagBurstIsRenderedPerEventAndStaysBounded) {
  std::vector<uint32_t> uids;
  for (uint32_t u = 1; u <= 20000; ++u) uids.push_back(u);
  ParkedMailbox m = Park(State(uids, /*condstore=*/true));
  const size_t before = m.MemoryBytes();
  uint64_t modseq = 100;
  for (uint32_t round = 0; round < 2; ++round) {
    for (uint32_t u = 1; u <= 20000; ++u) {
      const std::string out =
          m.Apply(Ev(EventKind::kFlags, u,
                     {round == 0 ? "\\Seen" : "\\Flagged"}, ++modseq));
      // One line per event, nothing held back.
      ASSERT_EQ(out,
                absl::StrCat("* ", u, " FETCH (UID ", u, " MODSEQ (", modseq,
                             ") FLAGS (", round == 0 ? "\\Seen" : "\\Flagged",
                             "))\r\n"));
    }
  }
  EXPECT_LT(m.MemoryBytes(), before + ParkedMailbox::kMaxToldFlags * 64)
      << "a burst must not grow with the number of events";
}

TEST(ParkedMailboxTest, EventBacklogNeverGrowsPastTheMailbox) {
  StoreModel store;
  for (int i = 0; i < 50; ++i) store.Append();
  ParkedMailbox m = Park(store.Client(false, false));
  ClientModel client(store.Uids());
  size_t max_size = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<StoreEvent> events;
    events.push_back(store.Append());
    if (i % 2 == 0) events.push_back(store.Expunge(store.Uids()[i % 40]));
    if (i % 3 == 0) {
      events.push_back(store.SetFlags(store.Uids()[7], {"\\Seen"}));
    }
    for (const StoreEvent& e : events) client.Apply(m.Apply(e));
    max_size = std::max(max_size, m.view().size());
    ASSERT_EQ(m.view().size(), store.msgs().size());
    client.FetchNew(store.Uids());
    ASSERT_EQ(client.uids(), store.Uids()) << "after event round " << i;
  }
  EXPECT_LE(max_size, 1600u);
  EXPECT_EQ(m.view().Serialize(),
            UidView::FromSortedUids(store.Uids()).Serialize());
  EXPECT_LT(m.MemoryBytes(), 64u * 1024);
}

TEST(ParkedMailboxTest, TranscriptMatchesDovecotForAPlainClient) {
  // Dovecot 2.3, plain client in IDLE on 5 messages; another session sets
  // \Seen on 3, deletes+expunges 2, adds $Foo... on 3, appends one (captured
  // from tools/dovecot/up; the \Deleted FETCH is the flag change before the
  // expunge).
  ParkedClientState s = State({1, 2, 3, 4, 5});
  s.mailbox_flags = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen",
                     "\\Draft"};
  s.permanent_flags = {"\\Answered", "\\Flagged", "\\Deleted",
                       "\\Seen",     "\\Draft",   "\\*"};
  ParkedMailbox m = Park(std::move(s));
  std::string out;
  out += m.Apply(Ev(EventKind::kFlags, 3, {"\\Seen"}, 31));
  out += m.Apply(Ev(EventKind::kFlags, 2, {"\\Deleted"}, 32));
  out += m.Apply(Ev(EventKind::kExpunge, 2));
  out += m.Apply(Ev(EventKind::kFlags, 4, {"$Foo"}, 34));
  out += m.Apply(Ev(EventKind::kNew, 6));
  EXPECT_EQ(out,
            "* 3 FETCH (FLAGS (\\Seen))\r\n"
            "* 2 FETCH (FLAGS (\\Deleted))\r\n"
            "* 2 EXPUNGE\r\n"
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Foo)\r\n"
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
            "\\Draft $Foo \\*)] Flags permitted.\r\n"
            "* 3 FETCH (FLAGS ($Foo))\r\n"
            "* 5 EXISTS\r\n");
}

TEST(ParkedMailboxTest, NothingRenderedOnceUnparking) {
  ParkedMailbox m = Park(State({1, 2}, true, true));
  m.BeginResync(ResyncLink{.qresync_enabled = true});
  EXPECT_EQ(m.state(), ParkedMailbox::State::kResyncing);
  // From here the link reports news itself.
  EXPECT_EQ(m.Apply(Ev(EventKind::kNew, 3)), "");
  EXPECT_EQ(m.Apply(Ev(EventKind::kExpunge, 1)), "");
  EXPECT_EQ(m.view().Serialize(), "1:2");
}

}  // namespace
}  // namespace pimap::session
