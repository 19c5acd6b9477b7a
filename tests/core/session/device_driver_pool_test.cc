// DeviceDriver tests in pooled mode (DriverServices::pool set): store links are
// borrowed from a FakeLinkPool only while a command runs, brought to the
// session's state (ENABLE QRESYNC, SELECT, a NOOP after store events) and
// given back between commands; the gateway answers IDLE in folders an event
// source covers. Each test plays the store's side line by line and checks the
// exact bytes the device and the store get, and every call on the pool.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/imap/namespaces.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/filter.h"
#include "core/session/mail_submitter.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "core/session/store_link_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/device_driver_pool_fixture.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeDeviceOutput;
using ::pimap::session::testing::FakeLinkPool;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::SessionIdIn;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

using ::pimap::session::testing::AnswerLinkSelect;
using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverPoolTest;
using ::pimap::session::testing::NewMail;
using ::pimap::session::testing::Selected;

// ---- Login ------------------------------------------------------------------

TEST_F(DeviceDriverPoolTest,
       LoginAdoptsTheLoginLinkAndReturnsItAfterTheAnswer) {
  Device& d = Connect();
  d.driver->Start(&d.link, "a1", "pw");
  // Adopted with the user's link credentials, lent to the driver at once.
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Adopt(alice) -> L1"));
  PooledLink* l1 = pool_.pooled("L1");
  ASSERT_NE(l1, nullptr);
  EXPECT_EQ(l1->link, &d.link);
  EXPECT_EQ(pool_.state(l1), FakeLinkPool::State::kLent);
  EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Reply("* ENABLED QRESYNC");
  EXPECT_THAT(pool_.calls(), IsEmpty());  // not before the answer
  d.link.Complete("~p1", "OK Enabled");
  const std::string got = d.out.Take();
  EXPECT_EQ(got, absl::StrCat("* SESSIONID ", SessionIdIn(got), "\r\n",
                              LoginOk("a1")));
  EXPECT_THAT(d.out.login_done, ElementsAre(true));
  EXPECT_FALSE(d.out.command_running);
  // Back in the pool, reusable, with what the next borrower must know.
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_EQ(pool_.state(l1), FakeLinkPool::State::kIdle);
  EXPECT_EQ(d.link.client(), nullptr);
  EXPECT_FALSE(d.link.closed());
  EXPECT_TRUE(l1->qresync_enabled);
  EXPECT_EQ(l1->selected_folder, "");
  EXPECT_EQ(d.link.TakeSent(), "");
  // Capabilities are still known without a link.
  EXPECT_THAT(d.driver->store_capabilities(),
              ElementsAre("IMAP4REV1", "QRESYNC", "CONDSTORE", "UIDPLUS",
                          "LITERAL+", "ENABLE", "IDLE"));
}

// The auth cache checked the password (no store login of the device's own) and
// the journal knows everything a first login needs: no link at all.
TEST_F(DeviceDriverPoolTest, FirstLoginWithoutALinkNeedsNone) {
  Device& tablet = Connect("alice", "tablet");
  Login(tablet);  // the store's capabilities become known
  Device& d = Connect();
  d.driver->Start(nullptr, "a1", "pw");
  const std::string got = d.out.Take();
  EXPECT_NE(SessionIdIn(got), 0u) << got;
  EXPECT_EQ(got, absl::StrCat("* SESSIONID ", SessionIdIn(got), "\r\n",
                              LoginOk("a1")));
  EXPECT_THAT(d.out.login_done, ElementsAre(true));
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(tablet.link.TakeSent(), "");
}

// A session in a folder no event source covers ("Work", watch mode) is resumed
// through the auth cache: the journal cannot say what the device missed, so a
// link is borrowed for ENABLE QRESYNC, the folder's SELECT and the exact
// rebuild from the view's MODSEQ.
TEST_F(DeviceDriverPoolTest, ResumeWithoutALinkBorrowsOneForEnableAndSelect) {
  Device& old = Connect();
  Login(old);
  ASSERT_EQ(SelectFolder(old, old.link, "Work"), Selected());
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  Drop(old);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));

  Device& d = Connect();
  pool_.try_borrow_hits = false;
  d.driver->Start(nullptr, "a2", "pw");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(d.out.login_done.empty());
  EXPECT_TRUE(d.out.command_running);
  ASSERT_EQ(pool_.pending_borrows(), 1u);
  PooledLink* l1 = pool_.CompleteBorrow();  // the idle L1, Work selected
  ASSERT_NE(l1, nullptr);
  EXPECT_EQ(pool_.name(l1), "L1");
  FakeStoreLink& store = old.link;
  EXPECT_EQ(store.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
  store.Reply("* ENABLED QRESYNC");
  store.Complete("~p1", "OK Enabled");
  EXPECT_EQ(store.TakeSent(), "~p2 SELECT \"Work\"\r\n");
  store.Reply("* 3 EXISTS");
  store.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  store.Reply("* OK [HIGHESTMODSEQ 10] Highest");
  store.Complete("~p2", "OK [READ-WRITE] Select completed");
  EXPECT_EQ(store.TakeSent(),
            "~p3 UID FETCH 4,9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  store.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(store.TakeSent(), "~p4 UID SEARCH RETURN (ALL) UID 13:* ALL\r\n");
  store.Reply("* ESEARCH (TAG \"~p4\") UID ALL 12");
  EXPECT_EQ(d.out.transcript(), "");
  store.Complete("~p4", "OK Search completed");
  const std::string got = d.out.Take();
  EXPECT_EQ(got,
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER Work\r\n* SESSIONID ",
                         SessionIdIn(got), "\r\n", LoginOk("a2")));
  EXPECT_THAT(d.out.login_done, ElementsAre(true));
  // Work's news come over this link: kept.
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(pool_.lent(), 1u);
  EXPECT_TRUE(d.out.end_session.empty());
}

// The watch holds a baseline of "Work" at the device's UIDVALIDITY (it catches
// up every folder, store/folder_catchup.h): the journal has whatever happened
// there while the device was away, so the resume replays it with no link, and
// the idling device holds none.
TEST_F(DeviceDriverPoolTest, ResumeInAFolderTheWatchCoversNeedsNoLink) {
  Device& old = Connect();
  Login(old);
  ASSERT_EQ(watches_.watches.size(), 1u);
  watches_.watches[0]->uidvalidity_value = 7;  // as AnswerSelect's store says
  ASSERT_EQ(SelectFolder(old, old.link, "Work"), Selected());
  pool_.TakeCalls();
  Drop(old);
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13, "Work")});

  Device& d = Connect();
  d.driver->Start(nullptr, "a2", "pw");
  const std::string got = d.out.Take();
  EXPECT_EQ(got,
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER Work\r\n* 4 EXISTS\r\n"
                         "* SESSIONID ",
                         SessionIdIn(got), "\r\n", LoginOk("a2")));
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(pool_.lent(), 0u);
}

TEST_F(DeviceDriverPoolTest, ResumeWithoutALinkWhenNoneCanBeHadIsUnavailable) {
  Device& old = Connect();
  Login(old);
  ASSERT_EQ(SelectFolder(old, old.link, "Work"), Selected());
  Drop(old);
  pool_.TakeCalls();

  Device& d = Connect();
  pool_.try_borrow_hits = false;
  d.driver->Start(nullptr, "a2", "pw");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  pool_.FailBorrow(absl::UnavailableError("no store link within 2500 ms"));
  EXPECT_EQ(d.out.Take(),
            "a2 NO [UNAVAILABLE] The message store is not available; try again "
            "later\r\n");
  EXPECT_THAT(d.out.login_done, ElementsAre(false));
  EXPECT_FALSE(d.out.command_running);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(pool_.lent(), 0u);
  EXPECT_EQ(old.link.TakeSent(), "");
}

// ---- Borrowing and preparing a link
// --------------------------------------------

TEST_F(DeviceDriverPoolTest, FetchOnAWarmLinkGoesOutAtOnceAndTheLinkGoesBack) {
  Device& d = Connect();
  PooledLink* l1 = Login(d);
  ASSERT_NE(l1, nullptr);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Return(L1, reusable)"));
  // What the next borrower is told about L1.
  EXPECT_EQ(l1->selected_folder, "INBOX");
  EXPECT_FALSE(l1->read_only);
  EXPECT_TRUE(l1->qresync_enabled);
  EXPECT_EQ(l1->synced_events, 0u);

  // Another device of the user left a link in the same state: lent at once.
  PooledLink* l2 = pool_.AddIdle(Warm("INBOX"));
  FakeStoreLink& store = *pool_.fake(l2);
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L2"));
  // No ENABLE, no SELECT, no NOOP: the command itself.
  EXPECT_EQ(store.TakeSent(), "~p4 UID FETCH 9 (FLAGS)\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_TRUE(d.out.command_running);
  store.Reply("* 5 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))");
  EXPECT_THAT(pool_.calls(), IsEmpty());  // not in the middle of the command
  store.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "c OK Fetch completed\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L2, reusable)"));
  EXPECT_EQ(store.client(), nullptr);
  EXPECT_EQ(pool_.lent(), 0u);
  EXPECT_EQ(l2->selected_folder, "INBOX");
  EXPECT_EQ(store.TakeSent(), "");
}

TEST_F(DeviceDriverPoolTest,
       LinkWithAnotherFolderSelectedSelectsTheDevicesFolderFirst) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  PooledLink* l2 = pool_.AddIdle(Warm("Work"));
  FakeStoreLink& store = *pool_.fake(l2);
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L2"));
  EXPECT_EQ(store.TakeSent(), "~p4 SELECT \"INBOX\"\r\n");
  EXPECT_EQ(l2->selected_folder, "");  // unknown until the SELECT completed
  AnswerLinkSelect(store, "~p4");
  // Nothing of the gateway's SELECT reaches the device.
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_EQ(l2->selected_folder, "INBOX");
  EXPECT_FALSE(l2->read_only);
  EXPECT_EQ(store.TakeSent(), "~p5 UID FETCH 9 (FLAGS)\r\n");
  store.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (11))");
  store.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "c OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L2, reusable)"));
  // The view is untouched by the link's own SELECT: MSN 3 is still UID 12.
  Run(d, "d FETCH 3 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L2"));
  EXPECT_EQ(store.TakeSent(), "~p6 UID FETCH 12 (FLAGS)\r\n");
  store.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "d OK Fetch completed\r\n");
}

TEST_F(DeviceDriverPoolTest, LinkWithoutQresyncIsEnabledFirst) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  PooledLink state = Warm("INBOX");
  state.qresync_enabled = false;
  PooledLink* l2 = pool_.AddIdle(state);
  FakeStoreLink& store = *pool_.fake(l2);
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L2"));
  EXPECT_EQ(store.TakeSent(), "~p4 ENABLE QRESYNC\r\n");
  store.Reply("* ENABLED QRESYNC");
  store.Complete("~p4", "OK Enabled");
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(l2->qresync_enabled);
  // INBOX is selected on it already: the command follows.
  EXPECT_EQ(store.TakeSent(), "~p5 UID FETCH 9 (FLAGS)\r\n");
  store.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  store.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "c OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L2, reusable)"));
}

TEST_F(DeviceDriverPoolTest, NewLinkFromBorrowIsEnabledThenSelected) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  pool_.try_borrow_hits = false;
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(d.out.command_running);
  PooledLink* l2 = pool_.CompleteBorrowWith(pool_.AddIdle(PooledLink()));
  ASSERT_NE(l2, nullptr);
  FakeStoreLink& store = *pool_.fake(l2);
  EXPECT_EQ(store.TakeSent(), "~p4 ENABLE QRESYNC\r\n");
  store.Reply("* ENABLED QRESYNC");
  store.Complete("~p4", "OK Enabled");
  EXPECT_EQ(store.TakeSent(), "~p5 SELECT \"INBOX\"\r\n");
  AnswerLinkSelect(store, "~p5");
  EXPECT_EQ(store.TakeSent(), "~p6 UID FETCH 9 (FLAGS)\r\n");
  EXPECT_EQ(d.out.transcript(), "");
  store.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  store.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "c OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L2, reusable)"));
  EXPECT_TRUE(l2->qresync_enabled);
  EXPECT_EQ(l2->selected_folder, "INBOX");
}

TEST_F(DeviceDriverPoolTest, ReadOnlySessionExaminesOnTheBorrowedLink) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "INBOX", "b", "EXAMINE"),
            Selected("b", true));
  pool_.TakeCalls();
  PooledLink* l2 = pool_.AddIdle(Warm("INBOX"));  // selected read-write
  FakeStoreLink& store = *pool_.fake(l2);
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_EQ(store.TakeSent(), "~p4 EXAMINE \"INBOX\"\r\n");
  store.Reply("* 3 EXISTS");
  store.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  store.Complete("~p4", "OK [READ-ONLY] Examine completed");
  EXPECT_TRUE(l2->read_only);
  EXPECT_EQ(store.TakeSent(), "~p5 UID FETCH 9 (FLAGS)\r\n");
  store.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "c OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L2", "Return(L2, reusable)"));
}

// The store reported new mail (the journal has it, the device was told
// "* 4 EXISTS"); a link last synchronised before that may not show UID 13
// yet: a NOOP makes the store catch up before the FETCH of it.
TEST_F(DeviceDriverPoolTest, LinkBehindTheStoresEventsIsSyncedWithNoopFirst) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  PooledLink* l1 = Login(d);
  ASSERT_NE(l1, nullptr);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_EQ(registry_.EventsReceived("alice"), 0u);
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(registry_.EventsReceived("alice"), 1u);
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(l1->synced_events, 0u);

  Run(d, "d FETCH 4 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* 4 EXISTS");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.out.transcript(), "");  // the sync is the gateway's
  EXPECT_EQ(l1->synced_events, 1u);
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 13 (FLAGS)\r\n");
  d.link.Reply("* 4 FETCH (UID 13 FLAGS ())");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 4 FETCH (UID 13 FLAGS ())\r\nd OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));

  // Synchronised now: no NOOP the next time.
  Run(d, "e FETCH 4 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p6 UID FETCH 13 (FLAGS)\r\n");
  d.link.Complete("~p6", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(), "e OK Fetch completed\r\n");
}

TEST_F(DeviceDriverPoolTest,
       EventBetweenCommandsSyncsTheLinkAndComesWithTheAnswer) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 UID FETCH 9 (FLAGS)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS ())");
  d.link.Complete("~p5", "OK Fetch completed");
  EXPECT_EQ(
      d.out.Take(),
      "* 2 FETCH (UID 9 FLAGS ())\r\n* 4 EXISTS\r\nc OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Return(L1, reusable)"));
}

// ---- IDLE
// -----------------------------------------------------------------------

TEST_F(DeviceDriverPoolTest, IdleInAWatchedInboxIsTheGatewaysOwn) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");  // no store IDLE
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(pool_.lent(), 0u);  // no link held while idling
  EXPECT_EQ(d.link.client(), nullptr);
  EXPECT_FALSE(d.driver->holds_command_state());  // an idling device is small

  // News come from the journal, with no link.
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_FALSE(d.driver->holds_command_state());

  // DONE is taken now and answered from a zero-delay timer.
  EXPECT_TRUE(Done(d));
  EXPECT_EQ(d.out.transcript(), "");
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(pool_.lent(), 0u);
}

TEST_F(DeviceDriverPoolTest, IdleInAnUncoveredFolderIsRelayedOnAHeldLink) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  // The watch covers INBOX only: Work's news come over this link, kept.
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  EXPECT_EQ(pool_.lent(), 1u);
  StartRelayedIdle(d);
  EndRelayedIdle(d);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());  // never returned
  EXPECT_EQ(pool_.lent(), 1u);
  EXPECT_NE(d.link.client(), nullptr);
}

TEST_F(DeviceDriverPoolTest, StorePushesCoverEveryFolderForTheGatewaysIdle) {
  config_.pushes = true;
  config_.watch = false;
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Return(L1, reusable)"));
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  registry_.OnStoreEvents("alice", {NewMail(13, "Work")});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(d.link.TakeSent(), "");
}

// A public folder changes by other users' transactions: the user's pushes do
// not report them, so the device's IDLE there is the store's, on a held link.
TEST_F(DeviceDriverPoolTest, StorePushesDoNotCoverAFolderOfAnotherNamespace) {
  config_.pushes = true;
  config_.watch = false;
  config_.default_notification = FilterSpec::All();
  StoreNamespaces namespaces;
  absl::StatusOr<imap::Response> r = imap::testing::ParseResponseBytes(
      "* NAMESPACE ((\"\" \".\")) NIL ((\"Public.\" \".\"))\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  namespaces.Learn(*imap::Namespaces::FromResponse(*r));
  registry_.set_store_namespaces(&namespaces);
  // Whatever fails below, the registry does not keep this stack object.
  absl::Cleanup forget = [this] { registry_.set_store_namespaces(nullptr); };
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Public.News"), Selected());
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  StartRelayedIdle(d);
  EXPECT_EQ(pool_.lent(), 1u);
  EXPECT_NE(d.link.client(), nullptr);
  EndRelayedIdle(d);
}

// A newer connection of the device takes the session over while this one
// holds a lent link: the link goes back to the pool closed, at once, and is
// never handed back as reusable (the pool would lend a freed link).
TEST_F(DeviceDriverPoolTest, TakeOverWithALentLinkGivesItBackNotReusable) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  // Work is not covered by the watch: the link stays with the device.
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  d.driver->device_link()->OnTakenOver(kTakenOverText);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, not reusable)"));
  EXPECT_TRUE(d.link.closed());
  EXPECT_EQ(pool_.lent(), 0u);
  Drop(d);  // the binding releases the driver: nothing more to give back
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

// A notification filter with a search key: the verdict on new mail is the
// store's, asked on a link borrowed in the middle of the gateway's IDLE.
TEST_F(DeviceDriverPoolTest, VerdictInTheGatewaysIdleBorrowsAndReturnsALink) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());

  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  // One NOOP: the verdict's own sync (no extra link sync before it).
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* 4 EXISTS");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p5 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p5\") UID ALL 13");
  EXPECT_THAT(pool_.calls(), IsEmpty());
  EXPECT_TRUE(d.driver->holds_command_state());  // the verdict runs
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_EQ(d.link.TakeSent(), "");               // no store IDLE
  EXPECT_FALSE(d.driver->holds_command_state());  // and is forgotten once done

  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverPoolTest, RejectedVerdictInTheGatewaysIdleComesWithDone) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p5 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p5\") UID");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "");  // held back
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Return(L1, reusable)"));
  EXPECT_TRUE(Done(d));
  FireTimers();
  // Classified already: no store work for the answer.
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverPoolTest, DoneWhileTheVerdictRunsIsAnsweredAfterIt) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  Run(d, "f XFILTER INBOX N FROM boss");
  d.out.Take();
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.transcript(), "");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            "~p5 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p5\") UID ALL 13");
  d.link.Complete("~p5", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Return(L1, reusable)"));
  EXPECT_EQ(d.link.TakeSent(), "");
}

// ---- Links that cannot be had or are lost
// ---------------------------------------

TEST_F(DeviceDriverPoolTest, FailedBorrowIsUnavailableAndTheNextCommandWorks) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  pool_.try_borrow_hits = false;
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(d.out.command_running);
  pool_.FailBorrow(absl::UnavailableError("no store link within 2500 ms"));
  EXPECT_EQ(d.out.Take(),
            "c NO [UNAVAILABLE] The message store is not available; try again "
            "later\r\n");
  EXPECT_FALSE(d.out.command_running);
  EXPECT_TRUE(d.out.end_session.empty());
  EXPECT_EQ(d.link.TakeSent(), "");

  pool_.try_borrow_hits = true;
  Run(d, "d FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (FLAGS)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  d.link.Complete("~p4", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\nd OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
}

TEST_F(DeviceDriverPoolTest,
       LinkLostMidFetchIsUnavailableAndTheSessionSurvives) {
  Device& d = Connect();
  PooledLink* l1 = Login(d);
  ASSERT_NE(l1, nullptr);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "c FETCH 2:3 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9,12 (FLAGS)\r\n");
  d.link.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n");
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Lost(L1)"));
  EXPECT_EQ(pool_.state(l1), FakeLinkPool::State::kLost);
  EXPECT_EQ(d.out.Take(),
            "c NO [UNAVAILABLE] Connection to the message store lost\r\n");
  EXPECT_TRUE(d.out.end_session.empty());
  EXPECT_EQ(d.out.closes, 0);
  EXPECT_FALSE(d.out.command_running);
  EXPECT_EQ(registry_.sessions(), 1u);

  // The next command borrows a new link and brings it to the session's state.
  Run(d, "d FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  PooledLink* l2 = pool_.CompleteBorrow();
  ASSERT_NE(l2, nullptr);
  EXPECT_EQ(pool_.name(l2), "L2");
  FakeStoreLink& store = *pool_.fake(l2);
  EXPECT_EQ(store.TakeSent(), "~p5 ENABLE QRESYNC\r\n");
  store.Complete("~p5", "OK Enabled");
  EXPECT_EQ(store.TakeSent(), "~p6 SELECT \"INBOX\"\r\n");
  AnswerLinkSelect(store, "~p6");
  EXPECT_EQ(store.TakeSent(), "~p7 UID FETCH 9 (FLAGS)\r\n");
  store.Reply("* 2 FETCH (UID 9 FLAGS (\\Seen))");
  store.Complete("~p7", "OK Fetch completed");
  EXPECT_EQ(d.out.Take(),
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\nd OK Fetch completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L2, reusable)"));
  EXPECT_EQ(d.link.TakeSent(), "");
}

TEST_F(DeviceDriverPoolTest,
       LinkLostDuringVerdictsInTheGatewaysIdleSaysNothing) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  Run(d, "f XFILTER INBOX N FROM boss");
  EXPECT_EQ(d.out.Take(), "f OK XFILTER completed\r\n");
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> L1", "Lost(L1)"));
  // The device stays in its IDLE, told nothing.
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(d.out.end_session.empty());
  EXPECT_EQ(d.out.closes, 0);

  // DONE: the unclassified mail needs the store's verdict first.
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  PooledLink* l2 = pool_.CompleteBorrow();
  ASSERT_NE(l2, nullptr);
  FakeStoreLink& store = *pool_.fake(l2);
  EXPECT_EQ(store.TakeSent(), "~p5 ENABLE QRESYNC\r\n");
  store.Complete("~p5", "OK Enabled");
  EXPECT_EQ(store.TakeSent(), "~p6 SELECT \"INBOX\"\r\n");
  AnswerLinkSelect(store, "~p6");
  EXPECT_EQ(store.TakeSent(), "~p7 NOOP\r\n");
  store.Complete("~p7", "OK NOOP completed");
  EXPECT_EQ(store.TakeSent(),
            "~p8 UID SEARCH RETURN (ALL) UID 13 FROM \"boss\"\r\n");
  store.Reply("* ESEARCH (TAG \"~p8\") UID ALL 13");
  store.Complete("~p8", "OK Search completed");
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\nc OK Idle completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L2, reusable)"));
  EXPECT_TRUE(d.out.end_session.empty());
}

TEST_F(DeviceDriverPoolTest, IdleLinkLostInThePoolDoesNotConcernTheDevice) {
  config_.default_notification = FilterSpec::All();
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  Run(d, "c IDLE");
  EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  pool_.TakeCalls();
  // The link the device last used dies while parked (the pool is its client).
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(d.out.transcript(), "");
  EXPECT_TRUE(d.out.end_session.empty());
  registry_.OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(Done(d));
  FireTimers();
  EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
}

// ---- LOGOUT and the device going away
// ------------------------------------------

TEST_F(DeviceDriverPoolTest,
       LogoutIsAnsweredByTheGatewayAndReturnsTheHeldLink) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  Run(d, "z LOGOUT");
  EXPECT_EQ(d.out.Take(), "* BYE Logging out\r\nz OK LOGOUT completed\r\n");
  EXPECT_EQ(d.out.closes, 1);
  EXPECT_EQ(d.link.TakeSent(), "");  // the store link stays for others
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_FALSE(d.link.closed());
  EXPECT_EQ(registry_.sessions(), 0u);
  Drop(d);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

TEST_F(DeviceDriverPoolTest, LogoutWithoutALinkNeedsNone) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "z LOGOUT");
  EXPECT_EQ(d.out.Take(), "* BYE Logging out\r\nz OK LOGOUT completed\r\n");
  EXPECT_EQ(d.out.closes, 1);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(registry_.sessions(), 0u);
}

TEST_F(DeviceDriverPoolTest,
       DetachWithACommandInFlightReturnsTheLinkNotReusable) {
  Device& d = Connect();
  PooledLink* l1 = Login(d);
  ASSERT_NE(l1, nullptr);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (FLAGS)\r\n");
  Drop(d);
  // Its answer would reach the next borrower: the pool closes the link.
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1",
                                             "Return(L1, not reusable)"));
  EXPECT_EQ(pool_.state(l1), FakeLinkPool::State::kClosed);
  EXPECT_TRUE(d.link.closed());
  EXPECT_EQ(registry_.sessions(), 1u);  // the session lives on
}

TEST_F(DeviceDriverPoolTest, DetachBetweenCommandsHasNothingToReturn) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  Drop(d);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  EXPECT_FALSE(d.link.closed());
}

TEST_F(DeviceDriverPoolTest,
       DetachBetweenCommandsInAnUncoveredFolderReturnsTheLink) {
  Device& d = Connect();
  PooledLink* l1 = Login(d);
  ASSERT_NE(l1, nullptr);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  pool_.TakeCalls();
  Drop(d);
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_EQ(pool_.state(l1), FakeLinkPool::State::kIdle);
  EXPECT_EQ(l1->selected_folder, "Work");
  EXPECT_FALSE(d.link.closed());
}

TEST_F(DeviceDriverPoolTest, DetachWhileABorrowWaitsReturnsTheLateLink) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  pool_.try_borrow_hits = false;
  Run(d, "c FETCH 2 (FLAGS)");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  Drop(d);
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
  // The link comes after the driver is gone: straight back, unused.
  pool_.CompleteBorrow();
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(pool_.lent(), 0u);
}

// ---- Folders no event source covers
// -----------------------------------------------

// Control for the next test: news the store volunteers on the held link of an
// uncovered folder reach the device.
TEST_F(DeviceDriverPoolTest,
       VanishedOnTheHeldLinkOfAnUncoveredFolderReachesTheDevice) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  pool_.TakeCalls();
  Run(d, "c NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.Reply("* VANISHED 9");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\nc OK NOOP completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

// Once a bug (device_driver_responses.cc, OnResponseStart): in a folder no
// event source covers (watch mode, "Work"), the device's held link is the only
// source of its news. After any store event of the user (here new mail in
// INBOX), PrepareLink puts a sync NOOP (Job::kLinkSync) before the device's
// next command on that held link. The store's answer to that NOOP carries what
// happened in Work meanwhile, but kLinkSync is "internal" and not a
// maintenance job, so "* VANISHED 9" (and a flag FETCH likewise) is dropped:
// the store never says it again and the device keeps UID 9 in its view.
// Input: SELECT Work; OnStoreEvents(INBOX new mail); "c NOOP"; the store
// answers the link sync NOOP with "* VANISHED 9".
// Observed then: "c OK NOOP completed\r\n". Expected (as without the INBOX
// event, see the control test above): "* 2 EXPUNGE\r\nc OK NOOP completed\r\n".
TEST_F(DeviceDriverPoolTest,
       VanishedSeenByTheLinkSyncInAnUncoveredFolderReachesTheDevice) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  pool_.TakeCalls();
  registry_.OnStoreEvents("alice", {NewMail(20)});  // INBOX news
  Run(d, "c NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");  // the link sync
  d.link.Reply("* VANISHED 9");
  d.link.Complete("~p4", "OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(), "~p5 NOOP\r\n");  // the device's NOOP
  d.link.Complete("~p5", "OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\nc OK NOOP completed\r\n");
  EXPECT_THAT(pool_.TakeCalls(), IsEmpty());
}

// Once a bug (device_driver.cc, ExecuteInSession): in pooled mode UNSELECT (and
// a CLOSE with an empty view under a view filter) is answered by the gateway
// (ok_now) without MaybeReturnLink(). From an uncovered folder ("Work", watch
// mode) the device holds its link; once nothing is selected nothing of the
// device needs it, but it stays lent until the device's next store command
// completes (indefinitely for a device that just sits there), taking a pool
// slot. Input: SELECT Work; "u UNSELECT". Observed: "u OK UNSELECT
// completed\r\n" and no pool call. Expected: the same answer and
// Return(L1, reusable).
TEST_F(DeviceDriverPoolTest, UnselectOfAnUncoveredFolderReturnsTheLink) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("TryBorrow(alice) -> L1"));
  Run(d, "u UNSELECT");
  EXPECT_EQ(d.out.Take(), "u OK UNSELECT completed\r\n");
  EXPECT_EQ(d.link.TakeSent(), "");
  // Nothing of the device needs the link any more.
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Return(L1, reusable)"));
}

// Plays a store whose folder Work holds UIDs 4 and 12 (UIDVALIDITY 7,
// HIGHESTMODSEQ 15; UID 9 was expunged at MODSEQ 14) and answers whatever the
// driver sends on `store` until it sends nothing more: whichever way the
// driver asks (QRESYNC SELECT, CHANGEDSINCE FETCH, SEARCH), the store tells
// the truth.
void AnswerAsWorkWithout9(FakeStoreLink& store) {
  for (int round = 0; round < 20; ++round) {
    const std::string sent = store.TakeSent();
    if (sent.empty()) return;
    for (absl::string_view line :
         absl::StrSplit(sent, "\r\n", absl::SkipEmpty())) {
      const std::string tag(line.substr(0, line.find(' ')));
      const absl::string_view command = line.substr(line.find(' ') + 1);
      if (absl::StartsWith(command, "SELECT") ||
          absl::StartsWith(command, "EXAMINE")) {
        store.Reply("* 2 EXISTS");
        store.Reply("* OK [UIDVALIDITY 7] UIDs valid");
        store.Reply("* OK [HIGHESTMODSEQ 15] Highest");
        if (absl::StrContains(command, "QRESYNC"))
          store.Reply("* VANISHED (EARLIER) 9");
        store.Complete(tag, "OK [READ-WRITE] Select completed");
      } else if (absl::StartsWith(command, "UID SEARCH")) {
        const bool newer = absl::StrContains(command, "UID 13:*");
        store.Reply(absl::StrCat("* ESEARCH (TAG \"", tag, "\") UID ALL ",
                                 newer ? "12" : "4,12"));
        store.Complete(tag, "OK Search completed");
      } else if (absl::StartsWith(command, "UID FETCH") &&
                 absl::StrContains(command, "CHANGEDSINCE")) {
        store.Reply("* VANISHED (EARLIER) 9");
        store.Complete(tag, "OK Fetch completed");
      } else {
        store.Complete(tag, "OK Completed");
      }
    }
  }
}

// Once a bug (device_driver_responses.cc OnStoreClosed,
// device_driver_links.cc): in a folder no event source covers ("Work", watch
// mode) the device's held link is its only source of news, yet losing that link
// between commands is treated as "nothing lost" (quiet, no resync). The next
// command borrows a new link and SELECTs Work afresh, which reports no expunge
// that happened while there was no link: the device keeps UID 9 in its view for
// good. (Without a pool the same loss ends the session and the resume rebuilds
// the view from its MODSEQ or says RESYNC.) Input: SELECT Work (UIDs 4, 9, 12);
// the held link is lost between commands; UID 9 is expunged meanwhile; "c
// NOOP". Observed then: "c OK Completed\r\n" (no EXPUNGE, no RESYNC); "c FETCH
// 3" would still be accepted. Expected: the device learns that UID 9 is gone
// ("* 2 EXPUNGE" or "* RESYNC" with the view rebuilt) before or with the
// answer.
TEST_F(DeviceDriverPoolTest,
       HeldLinkLostInAnUncoveredFolderDoesNotHideExpunges) {
  Device& d = Connect();
  Login(d);
  ASSERT_EQ(SelectFolder(d, d.link, "Work"), Selected());
  pool_.TakeCalls();
  d.link.Lose(absl::UnavailableError("connection reset"));
  EXPECT_THAT(pool_.TakeCalls(), ElementsAre("Lost(L1)"));
  EXPECT_EQ(d.out.transcript(), "");
  Run(d, "c NOOP");
  EXPECT_THAT(pool_.TakeCalls(),
              ElementsAre("TryBorrow(alice) -> none", "Borrow(alice, 2500ms)"));
  PooledLink* l2 = pool_.CompleteBorrow();
  ASSERT_NE(l2, nullptr);
  AnswerAsWorkWithout9(*pool_.fake(l2));
  const std::string got = d.out.Take();
  EXPECT_THAT(got, HasSubstr("c OK "));
  EXPECT_THAT(got,
              AnyOf(HasSubstr("* 2 EXPUNGE\r\n"), HasSubstr("* RESYNC\r\n")));
}

// XDELIVER on pooled links (device_driver_xdeliver.cc), found in review.
class RecordingSubmitter : public MailSubmitter {
 public:
  void Submit(mail::OutgoingMail mail, Done done) override {
    mails.push_back(std::move(mail));
    pending.push_back(std::move(done));
  }
  std::vector<mail::OutgoingMail> mails;
  std::vector<Done> pending;
};

// A flag change in the original's folder (Work) while the gateway fetches the
// original is not news of the device's folder (INBOX, where UID 9 is too).
TEST_F(DeviceDriverPoolTest, XdeliverNewsOfTheOriginalsFolderIsNotTheDevices) {
  RecordingSubmitter submitter;
  config_.smtp_sender_domain = "example.org";
  Device& d = Connect();
  Login(d);
  registry_.set_submitter(&submitter);  // (after: the login's list is fixed)
  ASSERT_EQ(SelectFolder(d, d.link), Selected());  // INBOX: UIDs 4, 9, 12
  pool_.TakeCalls();
  PooledLink* l2 = pool_.AddIdle(Warm("Work"));
  FakeStoreLink& store = *pool_.fake(l2);
  const std::string msg = "To: ann@example.net\r\n\r\nFYI\r\n";
  Run(d, absl::StrCat("f XDELIVER F Work 5 N {", msg.size(), "+}\r\n", msg));
  store.TakeSent();
  store.Reply("* 1 FETCH (UID 9 FLAGS (\\Deleted))");
  const std::string original = "From: a@b.c\r\nSubject: s\r\n\r\nbody\r\n";
  store.Reply(absl::StrCat("* 2 FETCH (UID 5 BODY[] {", original.size(),
                           "}\r\n", original, ")"));
  store.CompleteLast("OK Fetch completed.");
  ASSERT_EQ(submitter.mails.size(), 1u);
  auto done = std::move(submitter.pending[0]);
  done(absl::OkStatus());
  store.TakeSent();
  store.CompleteLast("OK Store completed.");
  std::string out = d.out.Take();
  Run(d, "n NOOP");
  for (FakeStoreLink* l : {&store, &d.link}) {
    const std::string sent = l->TakeSent();
    if (!sent.empty()) {
      l->Complete(sent.substr(0, sent.find(' ')), "OK NOOP completed.");
    }
  }
  out += d.out.Take();
  EXPECT_THAT(out, HasSubstr("f OK"));
  EXPECT_THAT(out, Not(HasSubstr("\\Deleted")));
}

// The store link lost during the SAVETO APPEND, after the MTA took the
// message: OK (it was sent; a NO would have the device send it twice).
TEST_F(DeviceDriverPoolTest, XdeliverSentIsOkWhenTheCopyCannotBeSaved) {
  RecordingSubmitter submitter;
  config_.smtp_sender_domain = "example.org";
  Device& d = Connect();
  Login(d);
  registry_.set_submitter(&submitter);  // (after: the login's list is fixed)
  ASSERT_EQ(SelectFolder(d, d.link), Selected());
  pool_.TakeCalls();
  d.out.Take();
  PooledLink* l2 = pool_.AddIdle(Warm("INBOX"));
  FakeStoreLink& store = *pool_.fake(l2);
  const std::string msg = "To: ann@example.net\r\n\r\nFYI\r\n";
  Run(d, absl::StrCat("s XDELIVER N SAVETO=Sent {", msg.size(), "+}\r\n", msg));
  ASSERT_EQ(submitter.mails.size(), 1u);
  auto done = std::move(submitter.pending[0]);
  done(absl::OkStatus());  // the MTA said 250
  store.TakeSent();
  d.link.TakeSent();
  store.Lose(absl::UnavailableError("connection reset"));
  d.link.Lose(absl::UnavailableError("connection reset"));
  const std::string out = d.out.Take();
  EXPECT_THAT(out, StartsWith("s OK"));
  EXPECT_THAT(out, HasSubstr("no copy was saved"));
}

}  // namespace
}  // namespace pimap::session
