// Crash consistency of P-IMAP sessions (issue 14): pimapd killed while a
// device holds changes of its view that no checkpoint reflects. The session
// engine (DeviceDriver + SessionRegistry) runs on a StateStore that outlives
// it, as the SQLite file outlives the process; a crash abandons the registry
// and its drivers without another word written, and a new registry restores
// from what was committed. Also the race of a restored session's resume (or
// any view taken from the store) with the user's new watch. Run on both
// backends.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/session/device_driver.h"
#include "core/session/event.h"
#include "core/session/filter.h"
#include "core/session/memory_state_store.h"
#include "core/session/session_registry.h"
#include "gtest/gtest.h"
#include "store/state/sqlite_state_store.h"
#include "tests/core/imap/test_util.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::AnswerSelect;
using ::pimap::session::testing::FakeDeviceOutput;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::SessionIdIn;

StoreEvent Event(EventKind kind, uint32_t uid) {
  StoreEvent e;
  e.kind = kind;
  e.folder = "INBOX";
  e.uidvalidity = 7;
  e.uid = uid;
  return e;
}
StoreEvent NewMail(uint32_t uid) { return Event(EventKind::kNew, uid); }
StoreEvent Expunged(uint32_t uid) { return Event(EventKind::kExpunge, uid); }
StoreEvent Seen(uint32_t uid) {
  StoreEvent e = Event(EventKind::kFlags, uid);
  e.flags = {"\\Seen"};
  return e;
}
StoreEvent FolderCreated(const std::string& name) {
  StoreEvent e;
  e.kind = EventKind::kFolderCreated;
  e.folder = name;
  e.raw = absl::StrCat("* LIST () \"/\" ", name);
  return e;
}

// Forwards to the backend and records the writes this suite is about: how
// many marks and checkpoints, and whether a mark waits in an open batch (it
// is durable only once the outermost batch commits).
class RecordingStateStore final : public StateStore {
 public:
  explicit RecordingStateStore(StateStore* backend) : b_(backend) {}

  int marks = 0;
  int checkpoints = 0;
  int uncommitted_marks = 0;
  // Device records written, and those not inside a batch (one transaction).
  int device_writes = 0;
  int device_writes_alone = 0;

  absl::Status PutDevice(const DeviceRecord& r) override {
    CountDeviceWrite();
    return b_->PutDevice(r);
  }
  absl::StatusOr<std::optional<DeviceRecord>> GetDevice(
      absl::string_view u, absl::string_view d) override {
    return b_->GetDevice(u, d);
  }
  absl::StatusOr<std::vector<DeviceRecord>> ListDevices(
      absl::string_view u) override {
    return b_->ListDevices(u);
  }
  absl::Status DeleteDevice(absl::string_view u, absl::string_view d) override {
    CountDeviceWrite();
    return b_->DeleteDevice(u, d);
  }
  absl::Status PutCheckpoint(absl::string_view u, absl::string_view d,
                             const FolderCheckpoint& c) override {
    ++checkpoints;
    return b_->PutCheckpoint(u, d, c);
  }
  absl::StatusOr<std::optional<FolderCheckpoint>> GetCheckpoint(
      absl::string_view u, absl::string_view d, absl::string_view f) override {
    return b_->GetCheckpoint(u, d, f);
  }
  absl::StatusOr<std::vector<FolderCheckpoint>> ListCheckpoints(
      absl::string_view u, absl::string_view d) override {
    return b_->ListCheckpoints(u, d);
  }
  absl::Status MarkCheckpointDirty(absl::string_view u, absl::string_view d,
                                   absl::string_view f) override {
    ++marks;
    if (depth_ > 0) ++uncommitted_marks;
    return b_->MarkCheckpointDirty(u, d, f);
  }
  absl::StatusOr<int> ExpireBefore(int64_t cutoff) override {
    return b_->ExpireBefore(cutoff);
  }
  absl::Status AppendFolderEvent(absl::string_view u, absl::string_view d,
                                 absl::string_view line,
                                 size_t max_kept) override {
    return b_->AppendFolderEvent(u, d, line, max_kept);
  }
  absl::Status AckFolderEvents(absl::string_view u, absl::string_view d,
                               size_t remaining) override {
    return b_->AckFolderEvents(u, d, remaining);
  }
  absl::StatusOr<std::vector<std::string>> ListFolderEvents(
      absl::string_view u, absl::string_view d) override {
    return b_->ListFolderEvents(u, d);
  }
  absl::Status BeginBatch() override {
    ++depth_;
    return b_->BeginBatch();
  }
  absl::Status CommitBatch() override {
    if (depth_ > 0 && --depth_ == 0) uncommitted_marks = 0;
    return b_->CommitBatch();
  }

 private:
  void CountDeviceWrite() {
    ++device_writes;
    if (depth_ == 0) ++device_writes_alone;
  }
  StateStore* b_;
  int depth_ = 0;
};

struct Backend {
  std::string name;
  // A new connection to the state in `dir` (as a new process opens it), or
  // for the memory backend the one store all "processes" share.
  std::function<std::shared_ptr<StateStore>(const std::string& dir,
                                            std::shared_ptr<StateStore> last)>
      open;
};
void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

struct Device {
  FakeDeviceOutput out;
  FakeStoreLink link;
  DeviceDriver* driver = nullptr;
};

// One run of pimapd: its state store connection, its registry, its devices.
struct Process {
  std::shared_ptr<StateStore> backend;
  std::unique_ptr<RecordingStateStore> state;
  std::unique_ptr<SessionRegistry> registry;
  std::vector<std::unique_ptr<Device>> devices;
};

class CrashRestoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  CrashRestoreTest() : timers_(MonotonicNowMs()) {
    std::string tmpl = ::testing::TempDir() + "crash_restore.XXXXXX";
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    config_.default_notification = FilterSpec::All();  // pushed in IDLE
    Start();
  }
  ~CrashRestoreTest() override {
    // Only now do the abandoned drivers go (what they write is too late for
    // any assertion).
    for (auto& p : processes_) {
      for (auto& d : p->devices) {
        if (d->driver != nullptr) d->driver->Release();
      }
      p->registry->Stop();
      p->registry.reset();
    }
    processes_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Start() {
    auto p = std::make_unique<Process>();
    p->backend = GetParam().open(
        dir_, processes_.empty() ? nullptr : processes_.back()->backend);
    p->state = std::make_unique<RecordingStateStore>(p->backend.get());
    p->registry = std::make_unique<SessionRegistry>(
        &timers_, &counters_, &config_, &watches_, p->state.get());
    processes_.push_back(std::move(p));
  }
  // SIGKILL: nothing of the running process is called again; a new one opens
  // the state.
  void Crash() { Start(); }
  Process& now() { return *processes_.back(); }
  SessionRegistry& registry() { return *now().registry; }
  RecordingStateStore& state() { return *now().state; }

  Device& Connect(const std::string& user = "alice",
                  const std::string& device = "phone") {
    now().devices.push_back(std::make_unique<Device>());
    Device& d = *now().devices.back();
    d.driver = new DeviceDriver({&registry(), &counters_, &timers_}, &d.out,
                                user, device);
    return d;
  }
  void Drop(Device& d) {
    d.driver->Release();
    d.driver = nullptr;
  }
  uint64_t FirstLogin(Device& d) {
    d.driver->Start(&d.link, "a1", "pw");
    EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    d.link.Complete("~p1", "OK Enabled");
    return SessionIdIn(d.out.Take());
  }
  void Run(Device& d, const std::string& line) {
    auto command = imap::testing::ParseCommandBytes(absl::StrCat(line, "\r\n"));
    ASSERT_TRUE(command.ok()) << command.status();
    d.driver->OnInputArrived();
    ASSERT_FALSE(d.driver->OnCommandLine()) << line;
    d.driver->Execute(*command);
  }
  // SELECT INBOX: UIDs 4, 9, 12 at UIDVALIDITY 7, HIGHESTMODSEQ 10.
  void SelectInbox(Device& d) {
    Run(d, "b SELECT INBOX");
    AnswerSelect(d.link, "INBOX");
    d.out.Take();
  }
  void EnterIdle(Device& d) {
    Run(d, "c IDLE");
    d.link.TakeSent();
    d.link.Reply("+ idling");
    EXPECT_EQ(d.out.Take(), "+ idling\r\n");
  }
  // DONE acknowledges what the IDLE pushed.
  void EndIdle(Device& d) {
    d.driver->OnInputArrived();
    ASSERT_TRUE(d.driver->OnCommandLine());
    EXPECT_EQ(d.link.TakeSent(), "DONE\r\n");
    d.link.CompleteLast("OK Idle completed");
    EXPECT_EQ(d.out.Take(), "c OK Idle completed\r\n");
  }
  // A resumed login up to the folder's SELECT (HIGHESTMODSEQ 20 now): what
  // the store is asked next says how the resume goes on.
  std::string ResumeSelect(Device& d, const std::string& tag) {
    d.driver->Start(&d.link, tag, "pw");
    d.link.Complete("~p1", "OK Enabled");
    EXPECT_EQ(d.link.TakeSent(),
              "~p1 ENABLE QRESYNC\r\n~p2 SELECT \"INBOX\"\r\n");
    d.link.Reply("* OK [UIDVALIDITY 7] UIDs valid");
    d.link.Reply("* OK [HIGHESTMODSEQ 20] Highest");
    d.link.Complete("~p2", "OK [READ-WRITE] Select completed");
    return d.link.TakeSent();
  }
  static constexpr char kResync[] = "~p3 UID SEARCH RETURN (ALL) ALL\r\n";
  // The RESYNC's view search answered with the store's `uids`.
  static std::string AnswerResync(Device& d, const std::string& uids) {
    d.link.Reply(absl::StrCat("* ESEARCH (TAG \"~p3\") UID ALL ", uids));
    d.link.Complete("~p3", "OK Search completed");
    return d.out.Take();
  }
  static std::string Resynced(uint64_t id, const std::string& tag, int n) {
    return absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* RESYNC\r\n",
                        "* ", n, " EXISTS\r\n* SESSIONID ", id, "\r\n",
                        LoginOk(tag));
  }
  std::optional<FolderCheckpoint> Checkpoint() {
    auto got = state().GetCheckpoint("alice", "phone", "INBOX");
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : std::nullopt;
  }

  std::string dir_;
  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  std::vector<std::unique_ptr<Process>> processes_;
};

// The case: after an in-band EXISTS and EXPUNGE the checkpoint of the
// SELECT (4, 9, 12) no longer describes the device (4, 12, 13). A rebuild from
// it would send "* 2 EXPUNGE" a second time; the dirty mark makes it a RESYNC.
TEST_P(CrashRestoreTest, PushedExistsAndExpungeThenCrashIsResync) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  EXPECT_FALSE(Checkpoint()->dirty);
  EnterIdle(d);
  registry().OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  registry().OnStoreEvents("alice", {Expunged(9)});
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\n");
  std::optional<FolderCheckpoint> cp = Checkpoint();
  ASSERT_TRUE(cp.has_value());
  EXPECT_TRUE(cp->dirty);
  EXPECT_EQ(cp->view, "4,9,12");

  Crash();
  Device& again = Connect();
  EXPECT_EQ(ResumeSelect(again, "a2"), kResync);
  EXPECT_EQ(AnswerResync(again, "4,12:14"), Resynced(id, "a2", 4));
  EXPECT_EQ(counters_.resyncs.load(), 1u);
}

// An EXISTS alone is not idempotent for a rebuild either: UID 13 announced,
// then expunged while pimapd was down and 14 delivered. A rebuild from 4, 9,
// 12 never names 13 and says "* 4 EXISTS": the device keeps 13 at MSN 4,
// where the store has 14.
TEST_P(CrashRestoreTest, PushedExistsThenCrashIsResync) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  EnterIdle(d);
  registry().OnStoreEvents("alice", {NewMail(13)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n");
  EXPECT_TRUE(Checkpoint()->dirty);

  Crash();
  Device& again = Connect();
  EXPECT_EQ(ResumeSelect(again, "a2"), kResync);
  EXPECT_EQ(AnswerResync(again, "4,9,12,14"), Resynced(id, "a2", 4));
}

// The device's own EXPUNGE is a change of its view like a pushed one.
TEST_P(CrashRestoreTest, OwnExpungeThenCrashIsResync) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  Run(d, "x EXPUNGE");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID EXPUNGE 4,9,12\r\n");
  d.link.Reply("* VANISHED 9");
  d.link.Complete("~p4", "OK Expunge completed");
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\nx OK Expunge completed\r\n");
  EXPECT_TRUE(Checkpoint()->dirty);

  Crash();
  Device& again = Connect();
  EXPECT_EQ(ResumeSelect(again, "a2"), kResync);
  EXPECT_EQ(AnswerResync(again, "4,12"), Resynced(id, "a2", 2));
}

// Once the device has acknowledged the changes (its next command), a clean
// checkpoint of its view replaces the dirty one, and a crash after that is
// rebuilt exactly from it.
TEST_P(CrashRestoreTest, AcknowledgedChangesAreRebuiltExactly) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  EnterIdle(d);
  registry().OnStoreEvents("alice", {NewMail(13), Expunged(9)});
  EXPECT_EQ(d.out.Take(), "* 4 EXISTS\r\n* 2 EXPUNGE\r\n");
  EndIdle(d);
  std::optional<FolderCheckpoint> cp = Checkpoint();
  ASSERT_TRUE(cp.has_value());
  EXPECT_FALSE(cp->dirty);
  EXPECT_EQ(cp->view, "4,12:13");
  EXPECT_EQ(cp->acked_modseq, 10u);

  Crash();
  Device& again = Connect();
  EXPECT_EQ(ResumeSelect(again, "a2"),
            "~p3 UID FETCH 4,12:13 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  again.link.Reply("* VANISHED (EARLIER) 13");
  again.link.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(again.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 13:* ALL\r\n");
  again.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 14");
  again.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(again.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n"
                         "* 3 EXPUNGE\r\n* 3 EXISTS\r\n* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
  EXPECT_EQ(counters_.resyncs.load(), 0u);
}

// Flag changes move no message: the checkpoint stays clean (the rebuild sends
// every flag changed since its MODSEQ again).
TEST_P(CrashRestoreTest, PushedFlagsLeaveTheCheckpointClean) {
  Device& d = Connect();
  FirstLogin(d);
  SelectInbox(d);
  EnterIdle(d);
  registry().OnStoreEvents("alice", {Seen(9)});
  EXPECT_EQ(d.out.Take(), "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n");
  EXPECT_FALSE(Checkpoint()->dirty);
  EXPECT_EQ(state().marks, 0);

  Crash();
  Device& again = Connect();
  EXPECT_EQ(ResumeSelect(again, "a2"),
            "~p3 UID FETCH 4,9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
}

// The RESYNC after a crash is a change of the device's view too: until the
// device acknowledges it the checkpoint stays dirty (a second crash resyncs
// again), then the RESYNC's view is the clean checkpoint.
TEST_P(CrashRestoreTest,
       TheResyncMustBeAcknowledgedBeforeTheCheckpointIsClean) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  EnterIdle(d);
  registry().OnStoreEvents("alice", {Expunged(9)});
  EXPECT_EQ(d.out.Take(), "* 2 EXPUNGE\r\n");

  Crash();
  Device& second = Connect();
  EXPECT_EQ(ResumeSelect(second, "a2"), kResync);
  EXPECT_EQ(AnswerResync(second, "4,12"), Resynced(id, "a2", 2));
  EXPECT_TRUE(Checkpoint()->dirty);

  Crash();
  Device& third = Connect();
  EXPECT_EQ(ResumeSelect(third, "a3"), kResync);
  EXPECT_EQ(AnswerResync(third, "4,12"), Resynced(id, "a3", 2));
  Run(third, "n NOOP");
  third.link.CompleteLast("OK NOOP completed");
  EXPECT_EQ(third.out.Take(), "n OK NOOP completed\r\n");
  std::optional<FolderCheckpoint> cp = Checkpoint();
  ASSERT_TRUE(cp.has_value());
  EXPECT_FALSE(cp->dirty);
  EXPECT_EQ(cp->view, "4,12");
  EXPECT_EQ(cp->acked_modseq, 20u);

  Crash();
  Device& fourth = Connect();
  EXPECT_EQ(ResumeSelect(fourth, "a4"),
            "~p3 UID FETCH 4,12 (FLAGS) (CHANGEDSINCE 20 VANISHED)\r\n");
}

// A rebuild cut short by a disconnect has changed the view without telling
// the device: the checkpoint Detach writes of it is dirty.
TEST_P(CrashRestoreTest, RebuildCutShortLeavesTheCheckpointDirty) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  Crash();
  Device& second = Connect();
  EXPECT_EQ(ResumeSelect(second, "a2"),
            "~p3 UID FETCH 4,9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  second.link.Reply("* VANISHED (EARLIER) 9");
  Drop(second);  // gone before the login was answered
  std::optional<FolderCheckpoint> cp = Checkpoint();
  ASSERT_TRUE(cp.has_value());
  EXPECT_TRUE(cp->dirty);

  Crash();
  Device& third = Connect();
  EXPECT_EQ(ResumeSelect(third, "a3"), kResync);
  EXPECT_EQ(AnswerResync(third, "4,12"), Resynced(id, "a3", 2));
}

// One mark per dirty period, one clean checkpoint to end it: not a write per
// event.
TEST_P(CrashRestoreTest, OneMarkPerDirtyPeriod) {
  Device& d = Connect();
  FirstLogin(d);
  SelectInbox(d);
  const int checkpoints = state().checkpoints;
  EnterIdle(d);
  registry().OnStoreEvents("alice", {NewMail(13)});
  registry().OnStoreEvents("alice", {NewMail(14), Expunged(4)});
  registry().OnStoreEvents("alice", {Expunged(13)});
  EXPECT_EQ(d.out.Take(),
            "* 4 EXISTS\r\n* 5 EXISTS\r\n* 1 EXPUNGE\r\n* 3 EXPUNGE\r\n");
  EXPECT_EQ(state().marks, 1);
  EXPECT_EQ(state().checkpoints, checkpoints);
  EndIdle(d);
  EXPECT_EQ(state().checkpoints, checkpoints + 1);
  EXPECT_EQ(Checkpoint()->view, "9,12,14");
  // The next command finds nothing new to acknowledge: no write.
  Run(d, "n NOOP");
  d.link.CompleteLast("OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "n OK NOOP completed\r\n");
  EXPECT_EQ(state().checkpoints, checkpoints + 1);
  EnterIdle(d);
  registry().OnStoreEvents("alice", {NewMail(15)});
  EXPECT_EQ(state().marks, 2);
}

// The mark is committed before the bytes leave, also when the same store
// events keep folder events for absent devices in one batch (that batch is
// committed before any connection is told of its events).
TEST_P(CrashRestoreTest, TheMarkIsCommittedBeforeTheBytesLeave) {
  // Several users, each with absent devices: whatever order a user's
  // devices come in, a push inside the folder-event batch would show.
  for (const std::string user : {"alice", "bob", "carol"}) {
    for (int i = 0; i < 6; ++i) {
      Device& absent = Connect(user, absl::StrCat("absent", i));
      FirstLogin(absent);
      Drop(absent);
    }
    Device& d = Connect(user, "phone");
    FirstLogin(d);
    SelectInbox(d);
    EnterIdle(d);
    int checked = 0;
    d.out.on_write = [&](absl::string_view bytes) {
      if (!absl::StrContains(bytes, "EXISTS")) return;
      ++checked;
      EXPECT_EQ(state().uncommitted_marks, 0) << user;
      auto cp = state().GetCheckpoint(user, "phone", "INBOX");
      EXPECT_TRUE(cp.ok() && cp->has_value() && (*cp)->dirty) << user;
    };
    registry().OnStoreEvents(user, {FolderCreated("Work"), NewMail(13)});
    EXPECT_EQ(checked, 1) << user;
    d.out.on_write = nullptr;
    auto kept = state().ListFolderEvents(user, "absent0");
    ASSERT_TRUE(kept.ok());
    EXPECT_EQ(kept->size(), 1u);
  }
}

// ---- The watch's first look
// A view taken from the store before the user's watch took its first look
// (every resume right after a restart, and a first SELECT racing the watch)
// lacks what changed between the two: the watch never reports it.

// A live RESYNC at the device's next command (the journal has nothing).
std::string NoopResyncs(Device& d, const std::string& uids, int n) {
  d.driver->OnInputArrived();
  EXPECT_FALSE(d.driver->OnCommandLine());
  auto command = imap::testing::ParseCommandBytes("n NOOP\r\n");
  EXPECT_TRUE(command.ok());
  d.driver->Execute(*command);
  d.link.CompleteLast("OK NOOP completed");
  EXPECT_EQ(d.link.TakeSent(),
            absl::StrCat("~p", n, " NOOP\r\n~p", n + 1,
                         " UID SEARCH RETURN (ALL) ALL\r\n"));
  d.link.Reply(
      absl::StrCat("* ESEARCH (TAG \"~p", n + 1, "\") UID ALL ", uids));
  d.link.CompleteLast("OK Search completed");
  return d.out.Take();
}

TEST_P(CrashRestoreTest, ResumeBeforeTheWatchsFirstLookIsResyncedAfterIt) {
  Device& d = Connect();
  const uint64_t id = FirstLogin(d);
  SelectInbox(d);
  Crash();
  Device& again = Connect();
  // Restored clean: rebuilt from MODSEQ 10 up to the SELECT's 20.
  EXPECT_EQ(ResumeSelect(again, "a2"),
            "~p3 UID FETCH 4,9,12 (FLAGS) (CHANGEDSINCE 10 VANISHED)\r\n");
  again.link.Complete("~p3", "OK Fetch completed");
  EXPECT_EQ(again.link.TakeSent(),
            "~p4 UID SEARCH RETURN (ALL) UID 13:* ALL\r\n");
  again.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 12");
  again.link.Complete("~p4", "OK Search completed");
  EXPECT_EQ(again.out.Take(),
            absl::StrCat("* SESSION SELECTED\r\n* FOLDER INBOX\r\n* SESSIONID ",
                         id, "\r\n", LoginOk("a2")));
  // The watch's first look is at 23: 21 to 23 were never events.
  registry().OnWatchBaseline("alice", "INBOX", 7, 23);
  EXPECT_EQ(NoopResyncs(again, "4,12,15", 5),
            "* RESYNC\r\n* 3 EXISTS\r\nn OK NOOP completed\r\n");
  EXPECT_EQ(counters_.resyncs.load(), 1u);
}

TEST_P(CrashRestoreTest, WatchLookingAtTheViewsModseqChangesNothing) {
  Device& d = Connect();
  FirstLogin(d);
  SelectInbox(d);  // MODSEQ 10
  registry().OnWatchBaseline("alice", "INBOX", 7, 10);
  registry().OnWatchBaseline("alice", "INBOX", 8, 12);  // another UIDVALIDITY
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p4 NOOP\r\n");
  d.link.CompleteLast("OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "n OK NOOP completed\r\n");
}

TEST_P(CrashRestoreTest, SelectOlderThanTheWatchsFirstLookIsResynced) {
  Device& d = Connect();
  FirstLogin(d);
  // The watch looked first (at 12), the SELECT's MODSEQ is older (10): the
  // SELECT's answer comes with a RESYNC.
  registry().OnWatchBaseline("alice", "INBOX", 7, 12);
  Run(d, "b SELECT INBOX");
  AnswerSelect(d.link, "INBOX");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID SEARCH RETURN (ALL) ALL\r\n");
  d.link.Reply("* ESEARCH (TAG \"~p4\") UID ALL 4,12");
  d.link.CompleteLast("OK Search completed");
  EXPECT_TRUE(
      absl::EndsWith(d.out.Take(),
                     "* 3 EXISTS\r\n* 0 RECENT\r\n* RESYNC\r\n* 2 EXISTS\r\n"
                     "b OK [READ-WRITE] Select completed\r\n"));
}

// Issue 14 (low): LOGOUT deleted the device's session and wrote back its
// filters and prefs in two transactions; a crash between lost the settings.
TEST_P(CrashRestoreTest, LogoutEndsTheSessionInOneTransaction) {
  Device& d = Connect();
  FirstLogin(d);
  SelectInbox(d);
  const int before = state().device_writes;
  Run(d, "z LOGOUT");
  EXPECT_EQ(registry().sessions(), 0u);
  EXPECT_EQ(state().device_writes, before + 2);  // the delete and the record
  EXPECT_EQ(state().device_writes_alone, 0);
}

// A watch about to look first asks for the oldest view a connected device
// holds, to report what changed since (store/user_watcher.cc).
TEST_P(CrashRestoreTest, OldestLiveViewNamesAConnectedDevicesView) {
  EXPECT_EQ(registry().OldestLiveView("alice", "INBOX", 7).modseq, 0u);
  Device& d = Connect();
  FirstLogin(d);
  EXPECT_EQ(registry().OldestLiveView("alice", "INBOX", 7).modseq, 0u);
  SelectInbox(d);  // MODSEQ 10, UIDs 4, 9 and 12
  const ViewStart start = registry().OldestLiveView("alice", "INBOX", 7);
  EXPECT_EQ(start.modseq, 10u);
  EXPECT_EQ(start.top_uid, 12u);
  EXPECT_EQ(registry().OldestLiveView("alice", "inbox", 7).modseq, 10u);
  // Another UIDVALIDITY, another folder, another user: none.
  EXPECT_EQ(registry().OldestLiveView("alice", "INBOX", 8).modseq, 0u);
  // Of any UIDVALIDITY (a covered folder's first look): the view's is named.
  EXPECT_EQ(registry().OldestLiveView("alice", "INBOX", 0).modseq, 10u);
  EXPECT_EQ(registry().OldestLiveView("alice", "INBOX", 0).uidvalidity, 7u);
  EXPECT_EQ(registry().OldestLiveView("alice", "Sent", 7).modseq, 0u);
  EXPECT_EQ(registry().OldestLiveView("bob", "INBOX", 7).modseq, 0u);
  // An absent device is rebuilt at its resume instead.
  Drop(d);
  EXPECT_EQ(registry().OldestLiveView("alice", "INBOX", 7).modseq, 0u);
}

std::shared_ptr<StateStore> OpenMemory(const std::string&,
                                       std::shared_ptr<StateStore> last) {
  return last != nullptr ? last : std::make_shared<MemoryStateStore>();
}

std::shared_ptr<StateStore> OpenSqlite(const std::string& dir,
                                       std::shared_ptr<StateStore>) {
  auto store = store::SqliteStateStore::Open(dir, 0);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  return std::shared_ptr<StateStore>(*std::move(store));
}

INSTANTIATE_TEST_SUITE_P(Backends, CrashRestoreTest,
                         ::testing::Values(Backend{"Memory", OpenMemory},
                                           Backend{"Sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace pimap::session
