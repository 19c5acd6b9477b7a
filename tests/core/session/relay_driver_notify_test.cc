// Parking a stock client that used NOTIFY (relay_driver_notify.cc): the
// store's NOTIFY is stopped before the link is pooled, other mailboxes' news
// reach the parked client as the store's STATUS and LIST lines (the numbers
// asked on a pooled link), and the unpark sets the NOTIFY again first.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/core/session/relay_park_fixture.h"

namespace pimap::session {
namespace {

constexpr char kNotify[] =
    "NOTIFY SET STATUS (selected (MessageNew MessageExpunge FlagChange)) "
    "(personal (MessageNew MessageExpunge FlagChange MailboxName))";
// The unpark sets it again with STATUS: what changed while the gateway
// listened (the watch reports late) is then reported by the store itself.
constexpr const char* kNotifyAgain = kNotify;

StoreEvent In(absl::string_view folder, EventKind kind, uint32_t uid,
              std::vector<std::string> flags = {}) {
  StoreEvent e = Event(kind, uid, std::move(flags), 9);
  e.folder = std::string(folder);
  return e;
}

class RelayNotifyParkTest : public RelayParkTest {
 protected:
  // The client lists (the delimiter), selects INBOX and sets its NOTIFY.
  void Prepare(absl::string_view notify = kNotify) {
    device_.Type("l LIST \"\" \"*\"\r\n");
    EXPECT_EQ(store_.TakeSent(), "l LIST \"\" \"*\"\r\n");
    store_.Reply("* LIST (\\HasNoChildren) \".\" INBOX");
    store_.Reply("* LIST (\\HasNoChildren) \".\" Work");
    store_.Complete("l", "OK List completed.");
    SelectInbox();
    device_.Type(absl::StrCat("n ", notify, "\r\n"));
    EXPECT_EQ(store_.TakeSent(), absl::StrCat("n ", notify, "\r\n"));
    store_.Reply("* STATUS Work (MESSAGES 1 UIDNEXT 4 UNSEEN 1)");
    store_.Complete("n", "OK NOTIFY completed.");
    device_.Take();
  }

  // Parked; the store's NOTIFY was stopped before the link went to the pool.
  void ParkNotifying() {
    StartParking();
    EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
    store_.Complete("i", "OK Idle completed.");
    EXPECT_EQ(store_.TakeSent(), "~r1 NOTIFY NONE\r\n~r2 UID SEARCH ALL\r\n");
    store_.Complete("~r1", "OK NOTIFY completed.");
    store_.Reply("* SEARCH 4 9 12");
    store_.Complete("~r2", "OK Search completed.");
    EXPECT_EQ(device_.Take(), "");
    ASSERT_TRUE(driver_->parked());
    EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Adopt(alice [relay:]) -> L1",
                                               "Return(L1, reusable)"));
  }

  // A pooled link asks STATUS for `folder`; the store answers `items`; the
  // link goes back to the pool (unless `returned` is false).
  void AnswerStatus(absl::string_view folder, absl::string_view items,
                    bool returned = true) {
    EXPECT_THAT(pool_.TakeCalls(),
                ::testing::Contains("Borrow(alice [relay:], 2500ms)"));
    FakeStoreLink* link = pool_.fake("L1");
    const std::string sent = link->TakeSent();
    EXPECT_EQ(sent.substr(sent.find(' ') + 1),
              absl::StrCat("STATUS ", folder,
                           " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\n"));
    link->Reply(absl::StrCat("* STATUS ", folder, " (", items, ")"));
    link->Complete(sent.substr(0, sent.find(' ')), "OK Status completed.");
    if (returned) {
      EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
    }
  }
};

TEST_F(RelayNotifyParkTest, OtherMailboxesAreToldAsTheStoreWould) {
  Prepare();
  Idle();
  ParkNotifying();

  // New mail elsewhere: the store's numbers, asked on a pooled link.
  registry_.OnStoreEvents("alice", {In("Work", EventKind::kNew, 4)});
  EXPECT_EQ(device_.Take(), "");
  pool_.CompleteBorrow();
  AnswerStatus("Work", "MESSAGES 2 UIDNEXT 5 UIDVALIDITY 9 UNSEEN 2");
  EXPECT_EQ(device_.Take(),
            "* STATUS Work (MESSAGES 2 UIDNEXT 5 UNSEEN 2)\r\n");
  EXPECT_EQ(counters_.relay_parked_events.load(), 1u);
  EXPECT_TRUE(driver_->parked());
  EXPECT_EQ(pool_.fake("L1")->client(), nullptr);  // back in the pool

  // A flag change that moves no number tells nothing; one that does, UNSEEN.
  registry_.OnStoreEvents("alice",
                          {In("Work", EventKind::kFlags, 4, {"\\Flagged"})});
  pool_.CompleteBorrow();
  AnswerStatus("Work", "MESSAGES 2 UIDNEXT 5 UIDVALIDITY 9 UNSEEN 2");
  EXPECT_EQ(device_.Take(), "");
  registry_.OnStoreEvents("alice",
                          {In("Work", EventKind::kFlags, 4, {"\\Seen"})});
  pool_.CompleteBorrow();
  AnswerStatus("Work", "MESSAGES 2 UIDNEXT 5 UIDVALIDITY 9 UNSEEN 1");
  EXPECT_EQ(device_.Take(), "* STATUS Work (UNSEEN 1)\r\n");

  // Mailbox names need no store.
  StoreEvent created;
  created.kind = EventKind::kFolderCreated;
  created.folder = "New1";
  registry_.OnStoreEvents("alice", {created});
  EXPECT_EQ(device_.Take(), "* LIST () \".\" New1\r\n");
  // The selected mailbox as for any parked client.
  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 13)});
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());

  // DONE: the resync's SELECT, the NOTIFY set again right after it, then
  // the listing.
  device_.Type("DONE\r\n");
  pool_.CompleteBorrow();
  FakeStoreLink* link = pool_.fake("L1");
  EXPECT_EQ(link->TakeSent(),
            absl::StrCat("~r6 SELECT \"INBOX\"\r\n~r7 ", kNotifyAgain,
                         "\r\n~r8 UID FETCH 1:* (FLAGS)\r\n"));
  link->Reply("* 4 EXISTS");
  link->Reply("* OK [UIDVALIDITY 7] UIDs valid");
  link->Complete("~r6", "OK [READ-WRITE] Select completed.");
  // The SET's STATUS, and then the link's NOTIFY: passed to the client.
  link->Reply("* STATUS Work (MESSAGES 2 UIDNEXT 5 UIDVALIDITY 9 UNSEEN 1)");
  link->Complete("~r7", "OK NOTIFY completed.");
  link->Reply("* STATUS Work (UNSEEN 0)");
  EXPECT_EQ(device_.Take(),
            "* STATUS Work (MESSAGES 2 UIDNEXT 5 UIDVALIDITY 9 UNSEEN 1)\r\n"
            "* STATUS Work (UNSEEN 0)\r\n");
  for (const char* f :
       {"* 1 FETCH (UID 4 FLAGS ())", "* 2 FETCH (UID 9 FLAGS ())",
        "* 3 FETCH (UID 12 FLAGS ())", "* 4 FETCH (UID 13 FLAGS ())"}) {
    link->Reply(f);
  }
  link->Complete("~r8", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
  EXPECT_FALSE(driver_->parked());
}

TEST_F(RelayNotifyParkTest, NamesDuringTheUnparkAreStillTold) {
  Prepare();
  Idle();
  ParkNotifying();
  device_.Type("DONE\r\n");
  pool_.CompleteBorrow();
  FakeStoreLink* link = pool_.fake("L1");
  link->TakeSent();
  // The watch reports late: a mailbox name it tells now is still told (a
  // NOTIFY SET's STATUS names no mailbox); message news is the STATUS's.
  StoreEvent created;
  created.kind = EventKind::kFolderCreated;
  created.folder = "New1";
  registry_.OnStoreEvents("alice", {created, In("Work", EventKind::kNew, 4)});
  EXPECT_EQ(device_.Take(), "* LIST () \".\" New1\r\n");
  link->Reply("* 3 EXISTS");
  link->Reply("* OK [UIDVALIDITY 7] UIDs valid");
  link->Complete("~r3", "OK [READ-WRITE] Select completed.");
  link->Complete("~r4", "OK NOTIFY completed.");
  for (const char* f :
       {"* 1 FETCH (UID 4 FLAGS ())", "* 2 FETCH (UID 9 FLAGS ())",
        "* 3 FETCH (UID 12 FLAGS ())"}) {
    link->Reply(f);
  }
  link->Complete("~r5", "OK Fetch completed.");
  EXPECT_EQ(link->TakeSent(), "");  // no STATUS round of ours
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
  EXPECT_FALSE(driver_->parked());
  EXPECT_EQ(registry_.parked(), 0u);
}

TEST_F(RelayNotifyParkTest, KeepaliveWhenTheParkStartsWithAStatusRound) {
  Prepare();
  Idle();
  StartParking();
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  store_.Complete("i", "OK Idle completed.");
  store_.TakeSent();
  // News of another mailbox while the map is listed: the park begins with a
  // STATUS round.
  registry_.OnStoreEvents("alice", {In("Work", EventKind::kNew, 4)});
  store_.Complete("~r1", "OK NOTIFY completed.");
  store_.Reply("* SEARCH 4 9 12");
  store_.Complete("~r2", "OK Search completed.");
  ASSERT_FALSE(driver_->parked());  // kParkedStatus
  pool_.CompleteBorrow();
  FakeStoreLink* link = pool_.fake("L1");
  const std::string sent = link->TakeSent();
  link->Reply("* STATUS Work (MESSAGES 2 UIDNEXT 5 UIDVALIDITY 9 UNSEEN 2)");
  link->Complete(sent.substr(0, sent.find(' ')), "OK Status completed.");
  EXPECT_TRUE(driver_->parked());
  device_.Take();
  Advance(kKeepaliveMs);
  EXPECT_EQ(device_.Take(), "* OK Still here\r\n");
}

TEST_F(RelayNotifyParkTest, TheLinkIsNeverPooledWithItsNotifySet) {
  Prepare();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  EXPECT_EQ(store_.TakeSent(), "~r1 NOTIFY NONE\r\n~r2 UID SEARCH ALL\r\n");
  // The store answers the listing before the NOTIFY NONE (it must not): the
  // link stays the client's.
  store_.Reply("* SEARCH 4 9 12");
  store_.Complete("~r2", "OK Search completed.");
  EXPECT_FALSE(driver_->parked());
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

TEST_F(RelayNotifyParkTest, DoneDuringAStatusRoundUnparksOnThatLink) {
  Prepare();
  Idle();
  ParkNotifying();
  registry_.OnStoreEvents("alice", {In("Work", EventKind::kExpunge, 3)});
  pool_.CompleteBorrow();
  device_.Type("DONE\r\n");
  EXPECT_TRUE(device_.input_held);
  AnswerStatus("Work", "MESSAGES 0 UIDNEXT 4 UIDVALIDITY 9 UNSEEN 0",
               /*returned=*/false);
  EXPECT_EQ(device_.Take(),
            "* STATUS Work (MESSAGES 0 UIDNEXT 4 UNSEEN 0)\r\n");
  // No second borrow: the same link goes on with the resync.
  const std::string sent = pool_.fake("L1")->TakeSent();
  EXPECT_THAT(sent, HasSubstr(absl::StrCat(" ", kNotifyAgain, "\r\n")));
  EXPECT_THAT(sent, HasSubstr(" SELECT \"INBOX\"\r\n"));
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

TEST_F(RelayNotifyParkTest, WithoutSelectedTheSelectedMailboxWaitsForDone) {
  // A NOTIFY without "selected": a store tells nothing of the selected
  // mailbox during IDLE; the unpark's resync does.
  Prepare("NOTIFY SET (personal (MessageNew MessageExpunge))");
  Idle();
  ParkNotifying();
  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 13)});
  EXPECT_EQ(device_.Take(), "");
  device_.Type("DONE\r\n");
  pool_.CompleteBorrow();
  FakeStoreLink* link = pool_.fake("L1");
  link->TakeSent();
  link->Reply("* 4 EXISTS");
  link->Reply("* OK [UIDVALIDITY 7] UIDs valid");
  link->Complete("~r3", "OK [READ-WRITE] Select completed.");
  link->Complete("~r4", "OK NOTIFY completed.");
  for (const char* f :
       {"* 1 FETCH (UID 4 FLAGS ())", "* 2 FETCH (UID 9 FLAGS ())",
        "* 3 FETCH (UID 12 FLAGS ())", "* 4 FETCH (UID 13 FLAGS ())"}) {
    link->Reply(f);
  }
  link->Complete("~r5", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\ni OK Idle completed.\r\n");
}

TEST_F(RelayNotifyParkTest, StoreKeepingItsNotifyIsNotParked) {
  Prepare();
  Idle();
  StartParking();
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  store_.Complete("i", "OK Idle completed.");
  EXPECT_EQ(store_.TakeSent(), "~r1 NOTIFY NONE\r\n~r2 UID SEARCH ALL\r\n");
  store_.Complete("~r1", "NO Not now.");
  store_.Reply("* SEARCH 4 9 12");
  store_.Complete("~r2", "OK Search completed.");
  // Our own IDLE runs for the client on its link, NOTIFY untouched.
  EXPECT_FALSE(driver_->parked());
  EXPECT_EQ(store_.TakeSent(), "~r3 IDLE\r\n");
  EXPECT_EQ(device_.Take(), "");
  store_.Reply("+ idling");
  store_.Reply("* STATUS Work (UNSEEN 0)");
  EXPECT_EQ(device_.Take(), "* STATUS Work (UNSEEN 0)\r\n");
  device_.Type("DONE\r\n");
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  store_.Complete("~r3", "OK Idle completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
}

TEST_F(RelayNotifyParkTest, ParkGivenUpAfterNotifyNoneSetsItAgainWithStatus) {
  Prepare();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  store_.TakeSent();
  store_.Complete("~r1", "OK NOTIFY completed.");
  store_.Complete("~r2", "NO Search failed.");
  // The client's NOTIFY comes back, with the STATUS of what it covers.
  EXPECT_EQ(store_.TakeSent(),
            absl::StrCat("~r3 ",
                         "NOTIFY SET STATUS "
                         "(selected (MessageNew MessageExpunge "
                         "FlagChange)) (personal (MessageNew "
                         "MessageExpunge FlagChange MailboxName))",
                         "\r\n"));
  store_.Reply("* STATUS Work (MESSAGES 1 UIDNEXT 4 UNSEEN 0)");
  store_.Complete("~r3", "OK NOTIFY completed.");
  EXPECT_EQ(device_.Take(),
            "* STATUS Work (MESSAGES 1 UIDNEXT 4 UNSEEN 0)\r\n");
  EXPECT_EQ(store_.TakeSent(), "~r4 IDLE\r\n");
  EXPECT_FALSE(driver_->parked());
  device_.Type("DONE\r\n");
  store_.Reply("+ idling");
  store_.Complete("~r4", "OK Idle completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
}

TEST_F(RelayNotifyParkTest, NotifyTheRelayCannotServeKeepsTheLink) {
  Prepare(
      "NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER]) "
      "MessageExpunge))");
  Idle();
  Advance(kParkAfterMs + 2000);
  EXPECT_FALSE(driver_->parked());
  EXPECT_EQ(store_.TakeSent(), "");
}

}  // namespace
}  // namespace pimap::session
