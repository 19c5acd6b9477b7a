// ParkedMailbox at unpark: the resync commands, and the store's answers turned
// into what the client missed, after which the client's MSNs are the link's
// (parked_mailbox_resync.cc).
#include <random>
#include <string>
#include <vector>

#include "core/session/parked_mailbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/parked_store_model.h"

namespace pimap::session {
namespace {

using testing::ClientModel;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Lines;
using testing::Parse;
using testing::ParseAll;
using testing::StoreModel;
using State = ParkedMailbox::State;

constexpr ResyncLink kQresyncLink{.qresync_enabled = true, .esearch = true};
constexpr ResyncLink kPlainLink{};

ParkedMailbox Park(ParkedClientState s) {
  absl::StatusOr<ParkedMailbox> m = ParkedMailbox::Create(std::move(s));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

StoreModel FiveMessages() {
  StoreModel store;
  for (int i = 0; i < 5; ++i) store.Append();
  return store;
}

// Unparks `m` against `store` the way the plan says, answering UID-list
// rounds from the store too. Returns what the client is sent.
std::string Unpark(ParkedMailbox& m, const StoreModel& store,
                   const ResyncLink& link, uint64_t since) {
  const ResyncPlan plan = m.BeginResync(link);
  EXPECT_FALSE(plan.commands.empty());
  std::vector<std::string> answer =
      plan.qresync ? store.QresyncSelect(since) : store.ListingSelect();
  std::string out;
  State s = m.Reconcile(ParseAll(answer), &out);
  for (int round = 0; s == State::kNeedUidList && round < 5; ++round) {
    const std::string cmd = m.uid_list_command();
    answer = absl::StartsWith(cmd, "UID FETCH") ? store.ListingSelect()
                                                : store.Esearch();
    s = m.Reconcile(ParseAll(answer), &out);
  }
  EXPECT_EQ(s, State::kSynced) << m.bye_reason();
  return out;
}

// After the resync the client's numbering must be the link's (the store's).
void ExpectAgree(const ParkedMailbox& m, ClientModel& client,
                 const StoreModel& store) {
  EXPECT_EQ(m.view().Serialize(),
            UidView::FromSortedUids(store.Uids()).Serialize());
  client.FetchNew(store.Uids());
  EXPECT_EQ(client.uids(), store.Uids());
}

// ---- The plan ---------------------------------------------------------------

TEST(ParkedMailboxResyncTest, PlanIsAQresyncSelectFromTheParkedModseq) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  const ResyncPlan plan = m.BeginResync(kQresyncLink);
  EXPECT_TRUE(plan.qresync);
  EXPECT_THAT(plan.commands,
              ElementsAre("SELECT \"INBOX\" (QRESYNC (77 6 1:5))"));
}

TEST(ParkedMailboxResyncTest, PlanExaminesAReadOnlyClientAndQuotes) {
  ParkedClientState s;
  s.folder = "Dr. \"Who\" \\ Co";
  s.uidvalidity = 9;
  s.highest_modseq = 4;
  s.read_only = true;
  ParkedMailbox m = Park(std::move(s));
  EXPECT_THAT(
      m.BeginResync(kQresyncLink).commands,
      ElementsAre("EXAMINE \"Dr. \\\"Who\\\" \\\\ Co\" (QRESYNC (9 4))"));
}

TEST(ParkedMailboxResyncTest, PlanListsWithoutModseqOrQresyncLink) {
  StoreModel store = FiveMessages();
  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;
  ParkedMailbox no_modseq = Park(s);
  ResyncPlan plan = no_modseq.BeginResync(kQresyncLink);
  EXPECT_FALSE(plan.qresync);
  EXPECT_THAT(plan.commands,
              ElementsAre("SELECT \"INBOX\"", "UID FETCH 1:* (FLAGS)"));
  ParkedMailbox no_qresync = Park(store.Client(true, false));
  plan = no_qresync.BeginResync(kPlainLink);
  EXPECT_FALSE(plan.qresync);
  EXPECT_THAT(plan.commands,
              ElementsAre("SELECT \"INBOX\"", "UID FETCH 1:* (FLAGS)"));
}

// ---- What the client missed -------------------------------------------------

TEST(ParkedMailboxResyncTest, MissedExpungesNewAndFlagsForAPlainClient) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  ClientModel client(store.Uids());
  const uint64_t since = store.modseq();
  store.Expunge(2);
  store.Expunge(3);
  store.SetFlags(4, {"\\Seen"});
  store.Append();
  store.Append();
  const std::string out = Unpark(m, store, kQresyncLink, since);
  EXPECT_THAT(Lines(out),
              ElementsAre("* 2 EXPUNGE", "* 2 EXPUNGE",
                          "* 2 FETCH (FLAGS (\\Seen))", "* 5 EXISTS"));
  client.Apply(out);
  ExpectAgree(m, client, store);
  EXPECT_EQ(client.flags().at(4), "\\Seen");
}

TEST(ParkedMailboxResyncTest, MissedChangesForAQresyncClient) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(true, true));
  ClientModel client(store.Uids());
  const uint64_t since = store.modseq();
  store.Expunge(2);
  store.Expunge(5);
  const StoreEvent flag = store.SetFlags(4, {"\\Seen"});
  store.Append();
  const std::string out = Unpark(m, store, kQresyncLink, since);
  EXPECT_THAT(Lines(out),
              ElementsAre("* VANISHED 2,5",
                          absl::StrCat("* 3 FETCH (UID 4 MODSEQ (", flag.modseq,
                                       ") FLAGS (\\Seen))"),
                          "* 4 EXISTS",
                          absl::StrCat("* OK [HIGHESTMODSEQ ", store.modseq(),
                                       "] Highest")));
  client.Apply(out);
  ExpectAgree(m, client, store);
  EXPECT_EQ(m.highest_modseq(), store.modseq());
}

TEST(ParkedMailboxResyncTest, CondstoreClientGetsModseqButNoHighestModseq) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(true, false));
  const uint64_t since = store.modseq();
  store.Expunge(1);
  const StoreEvent flag = store.SetFlags(5, {"$Work"});
  const std::string out = Unpark(m, store, kQresyncLink, since);
  // $Work is a new keyword: the store's FLAGS come first, as Dovecot sends.
  EXPECT_THAT(Lines(out),
              ElementsAre("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                          "\\Draft $Work)",
                          "* OK [PERMANENTFLAGS (\\Answered \\Flagged "
                          "\\Deleted \\Seen \\Draft $Work \\*)] Flags "
                          "permitted.",
                          "* 1 EXPUNGE",
                          absl::StrCat("* 4 FETCH (UID 5 MODSEQ (", flag.modseq,
                                       ") FLAGS ($Work))")));
}

TEST(ParkedMailboxResyncTest, EmptyDiffWritesNothing) {
  for (bool qresync : {false, true}) {
    StoreModel store = FiveMessages();
    ParkedMailbox m = Park(store.Client(qresync, qresync));
    EXPECT_EQ(Unpark(m, store, kQresyncLink, store.modseq()), "");
    EXPECT_EQ(m.state(), State::kSynced);
    EXPECT_EQ(m.view().Serialize(), "1:5");
  }
  // And by listing, without a MODSEQ.
  StoreModel store = FiveMessages();
  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;
  ParkedMailbox m = Park(std::move(s));
  EXPECT_EQ(Unpark(m, store, kQresyncLink, 0), "");
  EXPECT_EQ(m.state(), State::kSynced);
}

TEST(ParkedMailboxResyncTest, EmptyMailboxStaysQuiet) {
  StoreModel store;
  ParkedMailbox m = Park(store.Client(false, false));
  EXPECT_THAT(m.BeginResync(kQresyncLink).commands,
              ElementsAre("SELECT \"INBOX\" (QRESYNC (77 1))"));
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(store.QresyncSelect(store.modseq())), &out),
            State::kSynced);
  EXPECT_EQ(out, "");
}

TEST(ParkedMailboxResyncTest, WhatEventsToldIsNotRepeated) {
  for (bool qresync : {false, true}) {
    SCOPED_TRACE(qresync ? "QRESYNC client" : "plain client");
    StoreModel store = FiveMessages();
    ParkedMailbox m = Park(store.Client(qresync, qresync));
    ClientModel client(store.Uids());
    const uint64_t since = store.modseq();
    client.Apply(m.Apply(store.Expunge(3)));
    client.Apply(m.Apply(store.SetFlags(4, {"\\Seen"})));
    client.Apply(m.Apply(store.Append()));
    client.Apply(m.Apply(store.SetFlags(6, {"\\Flagged"})));
    const std::string out = Unpark(m, store, kQresyncLink, since);
    if (qresync) {
      // Only the checkpoint Dovecot gives after an expunge or new mail.
      EXPECT_THAT(Lines(out),
                  ElementsAre(absl::StrCat("* OK [HIGHESTMODSEQ ",
                                           store.modseq(), "] Highest")));
    } else {
      EXPECT_EQ(out, "");
    }
    client.Apply(out);
    ExpectAgree(m, client, store);
  }
}

TEST(ParkedMailboxResyncTest, ToldFlagsChangedAgainAreReported) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  const uint64_t since = store.modseq();
  EXPECT_EQ(m.Apply(store.SetFlags(2, {"\\Seen"})),
            "* 2 FETCH (FLAGS (\\Seen))\r\n");
  store.SetFlags(2, {"\\Seen", "\\Answered"});  // the event got lost
  EXPECT_THAT(Lines(Unpark(m, store, kQresyncLink, since)),
              ElementsAre("* 2 FETCH (FLAGS (\\Seen \\Answered))"));
}

TEST(ParkedMailboxResyncTest, NewMailFlagsAreLeftToTheClientsFetch) {
  // Dovecot announces new mail with EXISTS only; the client fetches it.
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  const uint64_t since = store.modseq();
  EXPECT_EQ(m.Apply(store.Append()), "* 6 EXISTS\r\n");
  store.SetFlags(6, {"\\Seen"});  // its flag event got lost
  store.Append({"\\Flagged"});
  EXPECT_THAT(Lines(Unpark(m, store, kQresyncLink, since)),
              ElementsAre("* 7 EXISTS"));
}

TEST(ParkedMailboxResyncTest, UidvalidityChangedDisconnects) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(true, true));
  m.BeginResync(kQresyncLink);
  StoreModel renewed("INBOX", 78);
  renewed.Append();
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(renewed.QresyncSelect(1)), &out),
            State::kDisconnect);
  EXPECT_EQ(out, "");
  EXPECT_THAT(m.bye_reason(), HasSubstr("UIDVALIDITY"));
}

TEST(ParkedMailboxResyncTest, SelectRefusedDisconnects) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  m.BeginResync(kQresyncLink);
  std::string out;
  EXPECT_EQ(m.Reconcile({Parse("* OK [CLOSED] Previous mailbox closed."),
                         Parse("c10 NO Mailbox doesn't exist: INBOX")},
                        &out),
            State::kDisconnect);
  EXPECT_THAT(m.bye_reason(), HasSubstr("Mailbox doesn't exist"));
}

TEST(ParkedMailboxResyncTest, NewMailAnnouncedByExistsOnlyAsksForTheUidList) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  ClientModel client(store.Uids());
  const uint64_t since = store.modseq();
  store.Expunge(4);
  store.Append();
  store.Append();
  m.BeginResync(kQresyncLink);
  std::string out;
  // The last message arrived after the changes were listed.
  EXPECT_EQ(m.Reconcile(ParseAll(store.QresyncSelect(since, 1)), &out),
            State::kNeedUidList);
  EXPECT_EQ(out, "") << "nothing goes out before the answer adds up";
  EXPECT_EQ(m.view().Serialize(), "1:5");
  EXPECT_EQ(m.uid_list_command(), "UID SEARCH RETURN (ALL) ALL");
  EXPECT_EQ(m.Reconcile(ParseAll(store.Esearch()), &out), State::kSynced);
  EXPECT_THAT(Lines(out), ElementsAre("* 4 EXPUNGE", "* 6 EXISTS"));
  client.Apply(out);
  ExpectAgree(m, client, store);
}

TEST(ParkedMailboxResyncTest, UidListBySearchWithoutEsearch) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  const uint64_t since = store.modseq();
  store.Append();
  m.BeginResync(ResyncLink{.qresync_enabled = true});
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(store.QresyncSelect(since, 1)), &out),
            State::kNeedUidList);
  EXPECT_EQ(m.uid_list_command(), "UID SEARCH ALL");
  EXPECT_EQ(
      m.Reconcile({Parse("* SEARCH 1 2 3 4 5 6"), Parse("c8 OK done")}, &out),
      State::kSynced);
  EXPECT_EQ(out, "* 6 EXISTS\r\n");
}

TEST(ParkedMailboxResyncTest, VanishedEarlierOutsideTheViewIsIgnored) {
  // A store without the expunge history names every absent known UID, also
  // those the client never held (Dovecot: "VANISHED (EARLIER) 1:24,26").
  StoreModel store = FiveMessages();
  store.Expunge(1);
  store.Expunge(2);
  ParkedMailbox m = Park(store.Client(false, false));
  ClientModel client(store.Uids());
  store.Expunge(4);
  m.BeginResync(kQresyncLink);
  std::vector<std::string> answer = store.QresyncSelect(store.modseq());
  answer.insert(answer.end() - 1, "* VANISHED (EARLIER) 1:2,4,9:4294967294");
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kSynced);
  EXPECT_EQ(out, "* 2 EXPUNGE\r\n");
  client.Apply(out);
  ExpectAgree(m, client, store);
}

TEST(ParkedMailboxResyncTest, ExpungeByMsnWhileListingListsAgain) {
  StoreModel store = FiveMessages();
  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;
  ParkedMailbox m = Park(std::move(s));
  ClientModel client(store.Uids());
  EXPECT_FALSE(m.BeginResync(kPlainLink).qresync);
  std::vector<std::string> answer = store.ListingSelect();
  store.Expunge(2);
  answer.insert(answer.end() - 1, "* 2 EXPUNGE");
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kNeedUidList);
  EXPECT_EQ(m.uid_list_command(), "UID FETCH 1:* (FLAGS)");
  std::vector<std::string> relist = store.ListingSelect();
  relist.erase(relist.begin(), relist.begin() + 7);  // the FETCH part only
  EXPECT_EQ(m.Reconcile(ParseAll(relist), &out), State::kSynced);
  EXPECT_EQ(out, "* 2 EXPUNGE\r\n");
  client.Apply(out);
  ExpectAgree(m, client, store);
}

TEST(ParkedMailboxResyncTest, FlagChangeByMsnWhileListingRelistsFlags) {
  StoreModel store = FiveMessages();
  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;
  ParkedMailbox m = Park(std::move(s));
  ClientModel client(store.Uids());
  m.BeginResync(kPlainLink);
  std::vector<std::string> answer = store.ListingSelect();
  store.SetFlags(3, {"\\Seen"});
  answer.insert(answer.end() - 1, "* 3 FETCH (FLAGS (\\Seen))");
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kNeedUidList);
  EXPECT_EQ(m.uid_list_command(), "UID FETCH 1:* (FLAGS)");
  std::vector<std::string> relist = store.ListingSelect();
  relist.erase(relist.begin(), relist.begin() + 7);
  EXPECT_EQ(m.Reconcile(ParseAll(relist), &out), State::kSynced);
  EXPECT_EQ(Lines(out).size(), 5u) << out;
  client.Apply(out);
  ExpectAgree(m, client, store);
  EXPECT_EQ(client.flags().at(3), "\\Seen");
}

TEST(ParkedMailboxResyncTest, GivesUpWhenTheAnswerNeverAddsUp) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  m.BeginResync(kQresyncLink);
  std::string out;
  State s = m.Reconcile(ParseAll(store.QresyncSelect(store.modseq())), &out);
  ASSERT_EQ(s, State::kSynced);
  ParkedMailbox n = Park(store.Client(false, false));
  n.BeginResync(kQresyncLink);
  std::vector<std::string> answer = store.QresyncSelect(store.modseq());
  answer[2] = "* 9 EXISTS";  // four more than any list will show
  s = n.Reconcile(ParseAll(answer), &out);
  int rounds = 0;
  while (s == State::kNeedUidList) {
    ++rounds;
    s = n.Reconcile(ParseAll(store.Esearch()), &out);
  }
  EXPECT_EQ(rounds, ParkedMailbox::kMaxUidListRounds);
  EXPECT_EQ(s, State::kDisconnect);
  EXPECT_EQ(out, "");
}

TEST(ParkedMailboxResyncTest, LostNewEventBelowTheNewestDisconnects) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  const uint64_t since = store.modseq();
  store.Append();  // UID 6: its event is lost
  EXPECT_EQ(m.Apply(store.Append()), "* 6 EXISTS\r\n");  // UID 7
  // The client holds MSN 6 = UID 7; the store has UID 6 there. No EXISTS
  // can insert a message in the middle.
  m.BeginResync(kQresyncLink);
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(store.QresyncSelect(since)), &out),
            State::kDisconnect);
  EXPECT_THAT(m.bye_reason(), HasSubstr("inconsistent"));
}

TEST(ParkedMailboxResyncTest, ListedMessageBelowTheNewestDisconnects) {
  StoreModel store = FiveMessages();
  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;  // resync by listing
  ParkedMailbox m = Park(std::move(s));
  store.Append();  // UID 6: its event is lost
  EXPECT_EQ(m.Apply(store.Append()), "* 6 EXISTS\r\n");  // UID 7
  m.BeginResync(kPlainLink);
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(store.ListingSelect()), &out),
            State::kDisconnect);
  EXPECT_EQ(out, "");
}

TEST(ParkedMailboxResyncTest, AnswerFarBeyondTheCountIsNotTrusted) {
  // A broken store must not make the gateway list billions of UIDs.
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  m.BeginResync(kQresyncLink);
  std::vector<std::string> answer = store.QresyncSelect(store.modseq());
  answer[2] = "* 6 EXISTS";
  std::string out;
  ASSERT_EQ(m.Reconcile(ParseAll(answer), &out), State::kNeedUidList);
  EXPECT_EQ(m.Reconcile({Parse("* ESEARCH (TAG \"c8\") UID ALL 1:4000000000"),
                         Parse("c8 OK done")},
                        &out),
            State::kNeedUidList);
  EXPECT_LT(m.MemoryBytes(), 64u * 1024);

  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;
  ParkedMailbox listing = Park(std::move(s));
  listing.BeginResync(kPlainLink);
  std::vector<std::string> flood = {"* 5 EXISTS",
                                    "* OK [UIDVALIDITY 77] UIDs valid"};
  for (uint32_t uid = 1; uid <= 10000; ++uid) {
    flood.push_back(absl::StrCat("* ", uid, " FETCH (UID ", uid, " FLAGS ())"));
  }
  EXPECT_EQ(listing.Reconcile(ParseAll(flood), &out), State::kNeedUidList);
  EXPECT_EQ(out, "");
}

TEST(ParkedMailboxResyncTest, VanishedOnTheLinkDuringTheResync) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  ClientModel client(store.Uids());
  const uint64_t since = store.modseq();
  store.Append();
  m.BeginResync(kQresyncLink);
  std::vector<std::string> answer = store.QresyncSelect(since);
  store.Expunge(3);
  store.Expunge(6);
  answer.insert(answer.end() - 1, "* VANISHED 3,6");
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kSynced);
  EXPECT_THAT(Lines(out), ElementsAre("* 3 EXPUNGE"));
  client.Apply(out);
  ExpectAgree(m, client, store);
}

TEST(ParkedMailboxResyncTest, ClosedForgetsThePreviousMailbox) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  m.BeginResync(kQresyncLink);
  std::vector<std::string> answer = {"* 40 EXISTS", "* VANISHED 1:3",
                                     "* OK [UIDVALIDITY 5] UIDs valid",
                                     "* OK [CLOSED] Previous mailbox closed."};
  for (const std::string& l : store.QresyncSelect(store.modseq())) {
    answer.push_back(l);
  }
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kSynced);
  EXPECT_EQ(out, "");
}

TEST(ParkedMailboxResyncTest, ListingReportsFlagsOnlyWhenEventsWereLost) {
  for (bool lost : {false, true}) {
    StoreModel store = FiveMessages();
    ParkedClientState s = store.Client(false, false);
    s.highest_modseq = 0;
    ParkedMailbox m = Park(std::move(s));
    ClientModel client(store.Uids());
    store.Expunge(1);
    store.SetFlags(3, {"\\Seen"});
    store.Append();
    if (lost) m.MarkEventsIncomplete();
    const std::string out = Unpark(m, store, kQresyncLink, 0);
    if (lost) {
      // Every message the client held, with its flags (idempotent).
      EXPECT_THAT(
          Lines(out),
          ElementsAre("* 1 EXPUNGE", "* 1 FETCH (FLAGS ())",
                      "* 2 FETCH (FLAGS (\\Seen))", "* 3 FETCH (FLAGS ())",
                      "* 4 FETCH (FLAGS ())", "* 5 EXISTS"));
    } else {
      EXPECT_THAT(Lines(out), ElementsAre("* 1 EXPUNGE", "* 5 EXISTS"));
    }
    client.Apply(out);
    ExpectAgree(m, client, store);
  }
}

TEST(ParkedMailboxResyncTest, NoHighestModseqWithoutAQresyncAnswer) {
  // A listing does not prove every change since the parked MODSEQ was told,
  // so a QRESYNC client gets no checkpoint from it.
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(true, true));
  store.SetFlags(2, {"\\Seen"});  // its event is lost
  store.Expunge(3);
  EXPECT_FALSE(m.BeginResync(kPlainLink).qresync);
  std::vector<std::string> answer = store.ListingSelect();
  answer.insert(answer.begin() + 5, absl::StrCat("* OK [HIGHESTMODSEQ ",
                                                 store.modseq(), "] Highest"));
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kSynced);
  EXPECT_THAT(Lines(out), ElementsAre("* VANISHED 3"));
}

TEST(ParkedMailboxResyncTest, ToldBurstPastTheCapRepeatsFlagsWhenListing) {
  StoreModel store;
  const uint32_t n = ParkedMailbox::kMaxToldFlags + 100;
  for (uint32_t i = 0; i < n; ++i) store.Append();
  ParkedClientState s = store.Client(false, false);
  s.highest_modseq = 0;
  ParkedMailbox m = Park(std::move(s));
  ClientModel client(store.Uids());
  for (uint32_t uid = 1; uid <= n; ++uid) {
    client.Apply(m.Apply(store.SetFlags(uid, {"\\Seen"})));
  }
  store.SetFlags(5, {"\\Seen", "\\Flagged"});  // its event is lost
  const std::string out = Unpark(m, store, kQresyncLink, 0);
  // Too many told changes to remember: every message's flags again.
  EXPECT_EQ(Lines(out).size(), n);
  client.Apply(out);
  ExpectAgree(m, client, store);
  EXPECT_EQ(client.flags().at(5), "\\Seen \\Flagged");
  EXPECT_EQ(client.flags().at(n), "\\Seen");
}

TEST(ParkedMailboxResyncTest, DovecotCapturedQresyncAnswer) {
  // tools/dovecot/up, a QRESYNC client parked on UIDs 25:29 at MODSEQ 54;
  // meanwhile MSN 2 expunged, $Work set on MSN 3 (UID 28), two appended. The
  // lines are Dovecot 2.3's answer to SELECT INBOX (QRESYNC (1796524979 54)).
  ParkedClientState s;
  s.folder = "INBOX";
  s.uidvalidity = 1796524979;
  s.view = UidView::FromSortedUids({25, 26, 27, 28, 29});
  s.highest_modseq = 54;
  s.qresync = true;
  s.mailbox_flags = {"\\Answered", "\\Flagged", "\\Deleted",
                     "\\Seen",     "\\Draft",   "$Foo"};
  s.permanent_flags = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen",
                       "\\Draft",    "$Foo",      "\\*"};
  ParkedMailbox m = Park(std::move(s));
  EXPECT_THAT(m.BeginResync(kQresyncLink).commands,
              ElementsAre("SELECT \"INBOX\" (QRESYNC (1796524979 54 1:29))"));
  const std::vector<std::string> answer = {
      "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Foo $Work)",
      "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
      "$Foo $Work \\*)] Flags permitted.",
      "* 6 EXISTS",
      "* 0 RECENT",
      "* OK [UNSEEN 1] First unseen.",
      "* OK [UIDVALIDITY 1796524979] UIDs valid",
      "* OK [UIDNEXT 32] Predicted next UID",
      "* OK [HIGHESTMODSEQ 60] Highest",
      "* VANISHED (EARLIER) 26",
      "* 3 FETCH (UID 28 FLAGS (\\Seen $Work) MODSEQ (58))",
      "* 5 FETCH (UID 30 FLAGS () MODSEQ (59))",
      "* 6 FETCH (UID 31 FLAGS () MODSEQ (60))",
      "c6 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).",
  };
  std::string out;
  EXPECT_EQ(m.Reconcile(ParseAll(answer), &out), State::kSynced);
  EXPECT_THAT(
      Lines(out),
      ElementsAre(
          "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Foo $Work)",
          "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
          "\\Draft $Foo $Work \\*)] Flags permitted.",
          "* VANISHED 26",
          "* 3 FETCH (UID 28 MODSEQ (58) FLAGS (\\Seen $Work))", "* 6 EXISTS",
          "* OK [HIGHESTMODSEQ 60] Highest"));
  // The store's own numbering after that SELECT (its FETCH MSNs).
  EXPECT_EQ(m.view().Serialize(), "25,27:31");
  EXPECT_EQ(m.view().MsnOf(30), 5u);
  EXPECT_EQ(m.view().MsnOf(31), 6u);
}

TEST(ParkedMailboxResyncTest, RestartOnAnotherLinkIsSafe) {
  StoreModel store = FiveMessages();
  ParkedMailbox m = Park(store.Client(false, false));
  const uint64_t since = store.modseq();
  store.Expunge(2);
  m.BeginResync(kQresyncLink);
  m.OnResyncResponse(Parse("* 4 EXISTS"));
  m.OnResyncResponse(Parse("* VANISHED (EARLIER) 2"));
  // The link drops before the tagged OK; a new link starts over.
  ClientModel client(std::vector<uint32_t>{1, 2, 3, 4, 5});
  const std::string out = Unpark(m, store, kQresyncLink, since);
  EXPECT_EQ(out, "* 2 EXPUNGE\r\n");
  client.Apply(out);
  ExpectAgree(m, client, store);
}

// Random store histories, a random prefix of their events delivered while
// parked (the rest still in flight at DONE), then the resync: the client
// must end up with the store's messages, numbering and flags.
TEST(ParkedMailboxResyncTest, RandomHistoriesConverge) {
  std::mt19937 rng(20240611);
  for (int iteration = 0; iteration < 400; ++iteration) {
    const int mode = iteration % 4;  // plain, CONDSTORE, QRESYNC, listing
    SCOPED_TRACE(absl::StrCat("iteration ", iteration, " mode ", mode));
    StoreModel store;
    const int initial = static_cast<int>(rng() % 12);
    for (int i = 0; i < initial; ++i) store.Append();
    ParkedClientState s = store.Client(mode == 1 || mode == 2, mode == 2);
    if (mode == 3) s.highest_modseq = 0;
    ParkedMailbox m = Park(std::move(s));
    ClientModel client(store.Uids());
    std::map<uint32_t, std::string> flags;  // what the client knows
    for (uint32_t uid : store.Uids()) flags[uid] = "";
    const uint64_t since = store.modseq();

    std::vector<StoreEvent> events;
    std::vector<std::vector<uint32_t>> after;  // the store after each event
    const int steps = static_cast<int>(rng() % 25);
    for (int i = 0; i < steps; ++i) {
      const std::vector<uint32_t> uids = store.Uids();
      const int op = static_cast<int>(rng() % 3);
      if (op == 0 || uids.empty()) {
        events.push_back(store.Append());
      } else if (op == 1) {
        events.push_back(store.Expunge(uids[rng() % uids.size()]));
      } else {
        static const char* const kFlags[] = {"\\Seen", "\\Flagged", "$Work"};
        std::vector<std::string> f;
        for (const char* flag : kFlags) {
          if (rng() % 2) f.push_back(flag);
        }
        events.push_back(store.SetFlags(uids[rng() % uids.size()], f));
      }
      after.push_back(store.Uids());
    }
    const size_t delivered = events.empty() ? 0 : rng() % (events.size() + 1);
    for (size_t i = 0; i < delivered; ++i) {
      client.Apply(m.Apply(events[i]));
      if (rng() % 4 == 0) client.Apply(m.Apply(events[rng() % (i + 1)]));
      // Each event leaves the client where a direct one would be (which
      // fetches the UIDs of new mail, as a QRESYNC client must to follow
      // VANISHED).
      client.FetchNew(after[i]);
      ASSERT_EQ(client.uids(), after[i]) << "after event " << i;
    }
    // In listing mode only lost events make flags worth repeating.
    if (mode == 3 && delivered < events.size()) m.MarkEventsIncomplete();
    client.Apply(Unpark(m, store, kQresyncLink, since));
    ExpectAgree(m, client, store);
    for (const auto& [uid, told] : client.flags()) flags[uid] = told;
    for (const StoreModel::Msg& msg : store.msgs()) {
      if (msg.uid > static_cast<uint32_t>(initial)) continue;  // fetched
      EXPECT_EQ(flags[msg.uid], absl::StrJoin(msg.flags, " "))
          << "UID " << msg.uid;
    }
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace pimap::session
