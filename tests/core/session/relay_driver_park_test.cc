// Parking a stock client's IDLE (relay_driver_park.cc): the relay ends the
// store's IDLE, lists the MSN map, gives the link to the pool and answers the
// IDLE from the registry's events; at DONE it borrows a link of the client's
// profile, resynchronises it and ends the IDLE. Driven like relay_driver_test
// (a framer over the device's bytes) against a fake store link, a fake link
// pool and a real SessionRegistry; each test checks the bytes both sides get.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/core/session/relay_park_fixture.h"

namespace pimap::session {
namespace {

TEST_F(RelayParkTest, IdleIsParkedAndEventsAreToldWithTheClientsNumbers) {
  SelectInbox();
  Idle();
  Park();
  EXPECT_EQ(registry_.parked(), 1u);
  EXPECT_EQ(watches_.watches.size(), 1u);  // the user's watch runs for it
  EXPECT_EQ(counters_.relay_parked.load(), 1);

  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 13)});
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  registry_.OnStoreEvents("alice", {Event(EventKind::kExpunge, 9)});
  EXPECT_EQ(device_.Take(), "* 2 EXPUNGE\r\n");
  registry_.OnStoreEvents("alice", {Event(EventKind::kFlags, 12, {"\\Seen"})});
  EXPECT_EQ(device_.Take(), "* 2 FETCH (FLAGS (\\Seen))\r\n");
  // Another folder's change is nothing to this client.
  StoreEvent other = Event(EventKind::kNew, 3);
  other.folder = "Work";
  registry_.OnStoreEvents("alice", {other});
  EXPECT_EQ(device_.Take(), "");
  EXPECT_EQ(store_.TakeSent(), "");  // the link is idle in the pool
}

TEST_F(RelayParkTest, DoneResynchronisesABorrowedLinkThenRelaysAgain) {
  SelectInbox();
  Idle();
  Park();
  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 13)});
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  // The store meanwhile also got 14, which no event reported yet.
  Unpark({"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
          "* 5 EXISTS", "* OK [UIDVALIDITY 7] UIDs valid"},
         {"* 1 FETCH (UID 4 FLAGS ())", "* 2 FETCH (UID 9 FLAGS ())",
          "* 3 FETCH (UID 12 FLAGS ())", "* 4 FETCH (UID 13 FLAGS ())",
          "* 5 FETCH (UID 14 FLAGS ())"});
  EXPECT_EQ(device_.Take(), "* 5 EXISTS\r\ni OK Idle completed.\r\n");
  EXPECT_FALSE(device_.input_held);
  EXPECT_FALSE(driver_->parked());
  EXPECT_EQ(registry_.parked(), 0u);
  EXPECT_EQ(counters_.relay_unparks.load(), 1u);

  device_.Type("f FETCH 5 (UID)\r\n");
  FakeStoreLink* link = pool_.fake("L1");
  EXPECT_EQ(link->TakeSent(), "f FETCH 5 (UID)\r\n");
  link->Reply("* 5 FETCH (UID 14)");
  link->Complete("f", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "* 5 FETCH (UID 14)\r\nf OK Fetch completed.\r\n");
}

TEST_F(RelayParkTest, CommandPipelinedAfterDoneWaitsForTheResync) {
  SelectInbox();
  Idle();
  Park();
  device_.Type("DONE\r\nn NOOP\r\n");
  EXPECT_TRUE(device_.input_held);
  EXPECT_EQ(device_.pending_input(), "n NOOP\r\n");
  PooledLink* lent = pool_.CompleteBorrow();
  FakeStoreLink* link = pool_.fake(lent);
  link->TakeSent();
  link->Reply("* 3 EXISTS");
  link->Reply("* OK [UIDVALIDITY 7] UIDs valid");
  link->Complete("~r2", "OK [READ-WRITE] Select completed.");
  link->Reply("* 1 FETCH (UID 4 FLAGS ())");
  link->Reply("* 2 FETCH (UID 9 FLAGS ())");
  link->Reply("* 3 FETCH (UID 12 FLAGS ())");
  link->Complete("~r3", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
  EXPECT_EQ(link->TakeSent(), "n NOOP\r\n");
}

TEST_F(RelayParkTest, EventsDuringTheListingAreNotLost) {
  SelectInbox();
  Idle();
  StartParking();
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  // The store reports 13 as the IDLE ends: the client hears it from the
  // store, and the watch's copy of it must not be told twice.
  store_.Reply("* 4 EXISTS");
  store_.Complete("i", "OK Idle completed.");
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  EXPECT_EQ(store_.TakeSent(), "~r1 UID SEARCH ALL\r\n");
  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 13)});
  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 14)});
  EXPECT_EQ(device_.Take(), "");  // held until the map is in
  store_.Reply("* SEARCH 4 9 12 13");
  store_.Complete("~r1", "OK Search completed.");
  ASSERT_TRUE(driver_->parked());
  EXPECT_EQ(device_.Take(), "* 5 EXISTS\r\n");  // 14 only
}

TEST_F(RelayParkTest, MailboxMovingAfterTheListingListsAgain) {
  SelectInbox();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  EXPECT_EQ(store_.TakeSent(), "~r1 UID SEARCH ALL\r\n");
  store_.Reply("* SEARCH 4 9 12");
  store_.Reply("* 2 EXPUNGE");  // after the data: the map is stale
  store_.Complete("~r1", "OK Search completed.");
  EXPECT_EQ(device_.Take(), "* 2 EXPUNGE\r\n");
  EXPECT_FALSE(driver_->parked());
  EXPECT_EQ(store_.TakeSent(), "~r2 UID SEARCH ALL\r\n");
  store_.Reply("* SEARCH 4 12");
  store_.Complete("~r2", "OK Search completed.");
  ASSERT_TRUE(driver_->parked());
  registry_.OnStoreEvents("alice", {Event(EventKind::kExpunge, 12)});
  EXPECT_EQ(device_.Take(), "* 2 EXPUNGE\r\n");
}

TEST_F(RelayParkTest, DoneWhileParkingEndsTheIdleOnTheSameLink) {
  SelectInbox();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  store_.TakeSent();
  device_.Type("DONE\r\nn NOOP\r\n");
  EXPECT_TRUE(device_.input_held);
  store_.Reply("* SEARCH 4 9 12");
  store_.Complete("~r1", "OK Search completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
  EXPECT_FALSE(driver_->parked());
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
}

TEST_F(RelayParkTest, DoneBeforeTheStoreEndedItsIdle) {
  SelectInbox();
  Idle();
  StartParking();
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  device_.Type("DONE\r\n");
  EXPECT_EQ(store_.TakeSent(), "");  // the store's IDLE is ending already
  store_.Complete("i", "OK Idle completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
  EXPECT_FALSE(device_.input_held);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

TEST_F(RelayParkTest, GivingUpRunsOurIdleOnTheStoreForTheClient) {
  SelectInbox();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  store_.TakeSent();
  store_.Complete("~r1", "NO Search failed.");
  EXPECT_FALSE(driver_->parked());
  EXPECT_EQ(store_.TakeSent(), "~r2 IDLE\r\n");
  store_.Reply("+ idling");
  store_.Reply("* 4 EXISTS");
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
  device_.Type("DONE\r\n");
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
  store_.Complete("~r2", "OK Idle completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");
  EXPECT_EQ(counters_.relay_park_failures.load(), 1u);
}

TEST_F(RelayParkTest, StickySessionIsNotParked) {
  SelectInbox();
  device_.Type("n NOTIFY SET (selected MessageNew)\r\n");
  store_.TakeSent();
  store_.Complete("n", "OK NOTIFY completed.");
  device_.Take();
  Idle();
  Advance(kParkAfterMs * 3);
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_FALSE(driver_->parked());
}

TEST_F(RelayParkTest, KeepaliveWhileParked) {
  SelectInbox();
  Idle();
  Park();
  Advance(kKeepaliveMs);
  EXPECT_EQ(device_.Take(), "* OK Still here\r\n");
  Advance(kKeepaliveMs);
  EXPECT_EQ(device_.Take(), "* OK Still here\r\n");
}

TEST_F(RelayParkTest, UidvalidityChangeWhileParkedSaysBye) {
  SelectInbox();
  Idle();
  Park();
  registry_.OnStoreEvents("alice", {Event(EventKind::kNew, 1, {}, 8)});
  EXPECT_THAT(device_.Take(), HasSubstr("* BYE "));
  EXPECT_EQ(device_.end_session.size(), 1u);
}

TEST_F(RelayParkTest, ClientDroppingWhileParkedLeavesNothing) {
  SelectInbox();
  Idle();
  Park();
  device_.ReleaseDriver();
  EXPECT_EQ(registry_.parked(), 0u);
  // The watch lingers a while (a client that IDLEs again parks at once),
  // then goes: no session is left for the user.
  Advance(config_.parked_watch_linger_ms - 1);
  EXPECT_FALSE(watches_.watches[0]->closed);
  Advance(1);
  EXPECT_TRUE(watches_.watches[0]->closed);
  EXPECT_EQ(pool_.lent(), 0u);
}

TEST_F(RelayParkTest, NoLinkForTheUnparkSaysBye) {
  SelectInbox();
  Idle();
  Park();
  device_.Type("DONE\r\n");
  pool_.FailBorrow(absl::UnavailableError("pool exhausted"));
  EXPECT_THAT(device_.Take(), HasSubstr("* BYE "));
}

TEST_F(RelayParkTest, ClientDroppingWhileUnparkingReturnsTheLink) {
  SelectInbox();
  Idle();
  Park();
  device_.Type("DONE\r\n");
  device_.ReleaseDriver();
  pool_.CompleteBorrow();
  EXPECT_EQ(pool_.lent(), 0u);
}

TEST_F(RelayParkTest, WaitsForTheUsersWatchToCoverTheFolder) {
  SelectInbox();
  Idle();
  Advance(kParkAfterMs);
  ASSERT_EQ(watches_.watches.size(), 1u);  // started for the park
  Advance(5000);
  EXPECT_EQ(store_.TakeSent(), "");  // no baseline yet: the IDLE stays relayed
  watches_.watches[0]->uidvalidity_value = 7;
  Advance(1000);
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
}

// The watch a client's first park starts has its baseline a store round trip
// later: the park follows within tens of milliseconds, not a second (the
// Mail::IMAPClient conformance suite's one-second IDLE was never parked).
TEST_F(RelayParkTest, ParksSoonAfterTheWatchTakesItsBaseline) {
  SelectInbox();
  Idle();
  Advance(kParkAfterMs);
  ASSERT_EQ(watches_.watches.size(), 1u);  // started for the park
  EXPECT_EQ(store_.TakeSent(), "");
  watches_.watches[0]->uidvalidity_value = 7;
  Advance(100);
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
}

TEST_F(RelayParkTest, FolderTheWatchNeverCoversIsNotParked) {
  SelectInbox();
  Idle();
  Advance(kParkAfterMs);
  for (int i = 0; i < 40; ++i) Advance(1000);
  EXPECT_EQ(store_.TakeSent(), "");
  EXPECT_EQ(registry_.parked(), 0u);  // stopped listening
  store_.Reply("* 4 EXISTS");         // the store's IDLE still reports
  EXPECT_EQ(device_.Take(), "* 4 EXISTS\r\n");
}

TEST_F(RelayParkTest, NotParkedWhileAnEarlierCommandRuns) {
  SelectInbox();
  device_.Type("a NOOP\r\ni IDLE\r\n");
  EXPECT_EQ(store_.TakeSent(), "a NOOP\r\ni IDLE\r\n");
  Advance(kParkAfterMs);
  EXPECT_EQ(store_.TakeSent(), "");
  store_.Complete("a", "OK NOOP completed.");
  store_.Reply("+ idling");
  EXPECT_EQ(device_.Take(), "a OK NOOP completed.\r\n+ idling\r\n");
  EXPECT_EQ(watches_.watches.size(), 0u);  // park-after counts from the "+"
  Advance(kParkAfterMs);
  ASSERT_EQ(watches_.watches.size(), 1u);
  watches_.watches[0]->uidvalidity_value = 7;
  Advance(1000);
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
}

// A park time shorter than the store's answer to IDLE: the park follows the
// store's "+" rather than a retry a second later (the conformance suite's
// one-second IDLE through --park-after 1ms was never parked).
class RelayParkSoonTest : public RelayParkTest {
 protected:
  RelayParkSoonTest() : RelayParkTest(/*park_after_ms=*/1) {}
};

TEST_F(RelayParkSoonTest, ParkTimeCountsFromTheStoresContinuation) {
  SelectInbox();
  device_.Type("i IDLE\r\n");
  EXPECT_EQ(store_.TakeSent(), "i IDLE\r\n");
  Advance(5);  // the store has not confirmed the IDLE yet
  EXPECT_EQ(watches_.watches.size(), 0u);
  store_.Reply("+ idling");
  EXPECT_EQ(device_.Take(), "+ idling\r\n");
  Advance(1);
  ASSERT_EQ(watches_.watches.size(), 1u);  // started for the park
  watches_.watches[0]->uidvalidity_value = 7;
  Advance(100);
  EXPECT_EQ(store_.TakeSent(), "DONE\r\n");
}

TEST_F(RelayParkTest, FlagChangeWhileBorrowingIsTold) {
  SelectInbox();
  Idle();
  Park();
  device_.Type("DONE\r\n");
  registry_.OnStoreEvents("alice", {Event(EventKind::kFlags, 9, {"\\Seen"})});
  EXPECT_EQ(device_.Take(), "* 2 FETCH (FLAGS (\\Seen))\r\n");
  FakeStoreLink* link = pool_.fake(pool_.CompleteBorrow());
  link->TakeSent();
  link->Reply("* 3 EXISTS");
  link->Reply("* OK [UIDVALIDITY 7] UIDs valid");
  link->Complete("~r2", "OK [READ-WRITE] Select completed.");
  link->Reply("* 1 FETCH (UID 4 FLAGS ())");
  link->Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  link->Reply("* 3 FETCH (UID 12 FLAGS ())");
  link->Complete("~r3", "OK Fetch completed.");
  EXPECT_EQ(device_.Take(), "i OK Idle completed.\r\n");  // told already
}

TEST_F(RelayParkTest, LinkWithMoreEnabledIsNotPooledUnderTheOldProfile) {
  SelectInbox();
  Idle();
  Park();
  Unpark({"* 3 EXISTS", "* OK [UIDVALIDITY 7] UIDs valid"},
         {"* 1 FETCH (UID 4 FLAGS ())", "* 2 FETCH (UID 9 FLAGS ())",
          "* 3 FETCH (UID 12 FLAGS ())"});
  device_.Take();
  pool_.TakeCalls();
  FakeStoreLink* l1 = pool_.fake("L1");
  // CHANGEDSINCE enables CONDSTORE on the link (RFC 7162 section 3.1).
  device_.Type("f FETCH 1:* (FLAGS) (CHANGEDSINCE 20)\r\n");
  l1->TakeSent();
  l1->Complete("f", "OK Fetch completed.");
  device_.Take();
  device_.Type("j IDLE\r\n");
  l1->TakeSent();
  l1->Reply("+ idling");
  device_.Take();
  StartParking();
  EXPECT_EQ(l1->TakeSent(), "DONE\r\n");
  l1->Complete("j", "OK Idle completed.");
  const std::string sent = l1->TakeSent();
  l1->Reply("* SEARCH 4 9 12");
  l1->Complete(sent.substr(0, sent.find(' ')), "OK Search completed.");
  ASSERT_TRUE(driver_->parked());
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, not reusable)"));
  // The unpark borrows a CONDSTORE link: a new login that ENABLEs it first.
  device_.Type("DONE\r\n");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("Borrow(alice [relay:CONDSTORE], 2500ms)"));
  FakeStoreLink* l2 = pool_.fake(pool_.CompleteBorrow());
  EXPECT_THAT(l2->TakeSent(),
              ::testing::StartsWith("~r5 ENABLE CONDSTORE\r\n"));
}

TEST_F(RelayParkTest, LongListingIsNoReasonToDisconnect) {
  SelectInbox();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  EXPECT_EQ(store_.TakeSent(), "~r1 UID SEARCH ALL\r\n");
  std::string line = "* SEARCH";
  for (int i = 1; i <= 12000; ++i) absl::StrAppend(&line, " ", 100000 + i);
  store_.Reply(line);
  store_.Complete("~r1", "OK Search completed.");
  EXPECT_THAT(device_.end_session, IsEmpty());
  EXPECT_TRUE(driver_->parked());
  EXPECT_EQ(parked_messages(), 12000u);
}

TEST_F(RelayParkTest, FolderDeletedWhileParkedSaysByeAndClosesTheWatchLater) {
  SelectInbox();
  Idle();
  Park();
  StoreEvent gone;
  gone.kind = EventKind::kFolderDeleted;
  gone.folder = "INBOX";
  registry_.OnStoreEvents("alice", {gone});
  EXPECT_THAT(device_.Take(), HasSubstr("* BYE "));
  // Not from inside the watch's own delivery: from a timer afterwards.
  EXPECT_FALSE(watches_.watches[0]->closed);
  Advance(config_.parked_watch_linger_ms);
  EXPECT_TRUE(watches_.watches[0]->closed);
}

TEST_F(RelayParkTest, StoreSilentDuringTheResyncSaysBye) {
  SelectInbox();
  Idle();
  Park();
  device_.Type("DONE\r\n");
  pool_.CompleteBorrow();
  Advance(2500);  // the store timeout (borrow_timeout_ms here)
  EXPECT_THAT(device_.Take(),
              HasSubstr("* BYE The message store did not answer"));
}

TEST_F(RelayParkTest, LinkLostDuringTheListingSaysBye) {
  SelectInbox();
  Idle();
  StartParking();
  store_.TakeSent();
  store_.Complete("i", "OK Idle completed.");
  store_.Lose(absl::UnavailableError("reset"));
  EXPECT_THAT(device_.Take(), HasSubstr("* BYE "));
  EXPECT_EQ(registry_.parked(), 0u);
}

TEST_F(RelayParkTest, LinkLostDuringTheResyncSaysBye) {
  SelectInbox();
  Idle();
  Park();
  device_.Type("DONE\r\n");
  FakeStoreLink* link = pool_.fake(pool_.CompleteBorrow());
  link->Lose(absl::UnavailableError("reset"));
  EXPECT_THAT(device_.Take(), HasSubstr("* BYE "));
  EXPECT_EQ(pool_.lent(), 0u);
}

}  // namespace
}  // namespace pimap::session
