// Test doubles around the session engine (core/session/device_driver.h): a
// store link that records what the driver sends and plays the store's answers
// back, a device output that records what the device would read, a store
// watch factory that records the watches the registry opens, and a link pool
// that lends fake links when the test says so.
#ifndef PIMAP_TESTS_CORE_SESSION_FAKE_STORE_LINK_H_
#define PIMAP_TESTS_CORE_SESSION_FAKE_STORE_LINK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/session/device_driver.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"
#include "core/session/store_watch.h"
#include "gtest/gtest.h"

namespace pimap::session::testing {

// A logged-in store connection. Send() appends to sent(); Reply/Complete
// deliver one whole store response to the client the driver set, the way
// store/upstream_link.cc does: the line without its CRLF, then "\r\n" in a
// second call, then the end of the response with the tag only for a tagged
// completion. With `whole_lines` the line and its CRLF come in one call
// instead (which store_link.h allows as well). Close(), like the real link's,
// detaches the client: nothing is delivered after it.
class FakeStoreLink final : public StoreLink {
 public:
  static std::vector<std::string> DefaultCapabilities() {
    return {"IMAP4REV1", "QRESYNC", "CONDSTORE", "UIDPLUS",
            "LITERAL+",  "ENABLE",  "IDLE"};
  }

  explicit FakeStoreLink(std::vector<std::string> caps = DefaultCapabilities())
      : caps_(std::move(caps)) {}

  // StoreLink
  void SetClient(StoreLinkClient* client) override { client_ = client; }
  void Send(absl::string_view bytes) override {
    sent_.append(bytes.data(), bytes.size());
    for (absl::string_view line :
         absl::StrSplit(bytes, "\r\n", absl::SkipEmpty())) {
      if (line == "DONE") continue;  // IDLE's end carries no tag
      last_tag_ = std::string(line.substr(0, line.find(' ')));
    }
  }
  size_t PendingOutput() const override { return 0; }
  void SetReading(bool on) override { reading_ = on; }
  const std::vector<std::string>& capabilities() const override {
    return caps_;
  }
  void Close() override {
    ++close_calls_;
    client_ = nullptr;
  }

  // Test side.
  StoreLinkClient* client() const { return client_; }
  const std::string& sent() const { return sent_; }
  // What was sent since the last call.
  std::string TakeSent() { return std::exchange(sent_, std::string()); }
  // The tag of the last tagged line sent ("~p3", or a device tag for LOGOUT).
  const std::string& last_tag() const { return last_tag_; }
  bool closed() const { return close_calls_ > 0; }
  int close_calls() const { return close_calls_; }
  bool reading() const { return reading_; }

  // An untagged response or a continuation request ("* 3 EXISTS", "+ idling").
  void Reply(absl::string_view line) { Deliver(line, ""); }
  // A tagged completion of `tag`.
  void Complete(absl::string_view tag, absl::string_view rest) {
    Deliver(absl::StrCat(tag, " ", rest), tag);
  }
  // One response in pieces as the real link delivers a response with
  // literals: each piece is one OnStoreBytes call, then the end.
  void ReplyPieces(const std::vector<std::string>& pieces,
                   absl::string_view completed_tag = "") {
    if (client_ == nullptr) {
      ++undelivered_;
      return;
    }
    for (const std::string& piece : pieces) {
      if (client_ != nullptr) client_->OnStoreBytes(piece);
    }
    if (client_ != nullptr) client_->OnStoreResponseEnd(completed_tag);
  }
  // A tagged completion of the last command sent ("OK done").
  void CompleteLast(absl::string_view rest) { Complete(last_tag_, rest); }
  // The connection to the store is lost.
  void Lose(absl::Status reason) {
    StoreLinkClient* client = std::exchange(client_, nullptr);
    if (client != nullptr) client->OnStoreClosed(std::move(reason));
  }
  // Responses that could not be delivered (the link was closed).
  int undelivered() const { return undelivered_; }

  bool whole_lines = false;

 private:
  void Deliver(absl::string_view line, absl::string_view completed_tag) {
    if (client_ == nullptr) {
      ++undelivered_;
      return;
    }
    if (whole_lines) {
      client_->OnStoreBytes(absl::StrCat(line, "\r\n"));
    } else {
      client_->OnStoreBytes(line);
      // The client may close the link from inside the first call.
      if (client_ != nullptr) client_->OnStoreBytes("\r\n");
    }
    if (client_ != nullptr) client_->OnStoreResponseEnd(completed_tag);
  }

  std::vector<std::string> caps_;
  StoreLinkClient* client_ = nullptr;
  int undelivered_ = 0;
  std::string sent_;
  std::string last_tag_;
  int close_calls_ = 0;
  bool reading_ = true;
};

// The binding's side: everything the device would read, in order, in one
// transcript, plus the control calls.
class FakeDeviceOutput final : public DeviceOutput {
 public:
  void WriteResponse(std::string bytes) override {
    if (on_write) on_write(bytes);
    transcript_ += bytes;
  }
  // Pushed bursts also go to event_bursts (one frame each with XZSTDEVENTS).
  void WriteEvents(std::string bytes) override {
    event_bursts.push_back(bytes);
    WriteResponse(std::move(bytes));
  }
  bool WritePassThrough(absl::string_view bytes) override {
    if (on_write) on_write(bytes);
    transcript_.append(bytes.data(), bytes.size());
    ++pass_through_writes;
    return !above_high_water;
  }
  void EndPassThrough() override { ++pass_through_ends; }
  void SetCommandRunning(bool running, bool resume) override {
    running_calls.emplace_back(running, resume);
    command_running = running;
  }
  void LoginDone(bool ok) override { login_done.push_back(ok); }
  void RelayedDone(absl::string_view tag) override {
    relayed_done.emplace_back(tag);
  }
  void RelayDrained() override { ++relay_drained; }
  void EndSession(absl::string_view reason) override {
    end_session.emplace_back(reason);
    if (on_end_session) on_end_session();
  }
  void Close() override { ++closes; }

  const std::string& transcript() const { return transcript_; }
  // What the device got since the last call.
  std::string Take() { return std::exchange(transcript_, std::string()); }

  std::vector<std::string> event_bursts;

  // What the binding does on EndSession (bindings/tcp closes the connection
  // at once, which detaches the driver).
  std::function<void()> on_end_session;
  // Sees every write as it leaves (e.g. what is durable by then).
  std::function<void(absl::string_view)> on_write;
  bool above_high_water = false;
  int pass_through_writes = 0;
  int pass_through_ends = 0;
  bool command_running = false;
  std::vector<std::pair<bool, bool>> running_calls;
  std::vector<bool> login_done;
  std::vector<std::string> relayed_done;
  int relay_drained = 0;
  std::vector<std::string> end_session;
  int closes = 0;

 private:
  std::string transcript_;
};

class FakeStoreWatch final : public StoreWatch {
 public:
  void Close() override { closed = true; }
  uint64_t highest_modseq(absl::string_view) const override { return modseq; }
  uint32_t uidvalidity(absl::string_view) const override {
    return uidvalidity_value;
  }
  void UpdateCredentials(StoreCredentials credentials) override {
    updates.push_back(std::move(credentials));
  }
  void CoverFolders(std::vector<std::string> folders) override {
    covered = folders;
    cover_calls.push_back(std::move(folders));
  }
  // Kept for the test to answer (Answer) or look at.
  struct Lookup {
    std::string folder;
    uint32_t uidvalidity = 0;
    uint32_t uid = 0;
    int64_t wait_ms = 0;
    HeadlineDone done;
  };
  void LookUpHeadline(absl::string_view folder, uint32_t uidvalidity,
                      uint32_t uid, int64_t wait_ms,
                      HeadlineDone done) override {
    lookups.push_back(
        {std::string(folder), uidvalidity, uid, wait_ms, std::move(done)});
  }
  // Runs the oldest lookup's `done` with `headline`.
  void Answer(std::shared_ptr<const MessageHeadline> headline) {
    Lookup lookup = std::move(lookups.front());
    lookups.erase(lookups.begin());
    lookup.done(std::move(headline));
  }

  std::vector<Lookup> lookups;
  bool closed = false;
  std::vector<StoreCredentials> updates;  // UpdateCredentials calls, in order
  std::vector<std::string> covered;       // as the last CoverFolders said
  std::vector<std::vector<std::string>> cover_calls;
  uint64_t modseq = 0;
  uint32_t uidvalidity_value = 0;
};

// Records every Watch() call; the watches it hands out stay owned here (the
// registry only closes them), so a test can look at them after Close().
class FakeWatchFactory final : public StoreWatchFactory {
 public:
  struct Call {
    std::string user;
    StoreCredentials credentials;
    StoreEventSink* sink;
    WatchScope scope = WatchScope::kAll;
  };

  StoreWatch* Watch(const std::string& user, StoreCredentials credentials,
                    StoreEventSink* sink, WatchScope scope) override {
    calls.push_back({user, std::move(credentials), sink, scope});
    watches.push_back(std::make_unique<FakeStoreWatch>());
    return watches.back().get();
  }

  std::vector<Call> calls;
  std::vector<std::unique_ptr<FakeStoreWatch>> watches;
};

// A shard's link pool (core/session/store_link_pool.h) under the test's
// control. Every call is recorded, in order, as a line of calls():
//   "TryBorrow(alice) -> L2"   "TryBorrow(alice) -> none"
//   "Borrow(alice, 2500ms)"    "Adopt(alice) -> L1"
//   "Return(L1, reusable)"     "Return(L1, not reusable)"    "Lost(L1)"
// (the user is "authzid via user" for master-user credentials). Links are
// named L1, L2, ... in the order the pool first sees them; each keeps one
// PooledLink across loans, as the real pool does.
//
// Links come from Adopt() (the caller's), AddIdle() (parked with a given
// store-side state: a new FakeStoreLink owned here, or one the test supplies)
// and Borrow completions that find no idle link (a new FakeStoreLink, fresh
// state: nothing selected, no QRESYNC). TryBorrow() lends the most recently
// parked idle link of the same user when `try_borrow_hits`, else nullptr.
// Borrow() only queues its callback: CompleteBorrow()/FailBorrow() run the
// oldest one when the test says so (never inside Borrow()).
// Return(reusable) parks the link again, detached from its borrower (the real
// pool becomes its client); Return(not reusable) closes it; Lost() forgets it.
// Misuse by the borrower (a Return or Lost of a link it does not hold) is
// recorded in violations().
class FakeLinkPool final : public StoreLinkPool {
 public:
  enum class State { kIdle, kLent, kClosed, kLost };

  // StoreLinkPool
  PooledLink* TryBorrow(const StoreCredentials& credentials) override {
    Entry* e = try_borrow_hits ? NewestIdle(credentials) : nullptr;
    calls_.push_back(absl::StrCat("TryBorrow(", Who(credentials), ") -> ",
                                  e != nullptr ? e->name : "none"));
    if (e == nullptr) return nullptr;
    e->state = State::kLent;
    return &e->pooled;
  }
  void Borrow(const StoreCredentials& credentials, int64_t timeout_ms,
              BorrowCallback done) override {
    calls_.push_back(
        absl::StrCat("Borrow(", Who(credentials), ", ", timeout_ms, "ms)"));
    pending_.push_back({credentials, std::move(done)});
  }
  PooledLink* Adopt(const StoreCredentials& credentials,
                    StoreLink* link) override {
    if (refuse_adopt) {
      calls_.push_back(absl::StrCat("Adopt(", Who(credentials), ") -> none"));
      return nullptr;
    }
    Entry& e = NewEntry(credentials, link);
    e.state = State::kLent;
    calls_.push_back(absl::StrCat("Adopt(", Who(credentials), ") -> ", e.name));
    return &e.pooled;
  }
  void Return(PooledLink* link, bool reusable) override {
    Entry* e = Find(link);
    const std::string name = e != nullptr ? e->name : "L?";
    calls_.push_back(absl::StrCat("Return(", name, ", ",
                                  reusable ? "reusable" : "not reusable", ")"));
    if (e == nullptr || e->state != State::kLent) {
      violations_.push_back(absl::StrCat("Return of ", name, ", not lent"));
      return;
    }
    if (reusable && e->fake != nullptr && e->fake->closed()) {
      // The real pool would hand a freed link to the next borrower.
      violations_.push_back(
          absl::StrCat("Return of ", name, " as reusable, closed already"));
    }
    if (reusable) {
      e->pooled.link->SetClient(nullptr);
      e->pooled.link->SetReading(true);
      e->state = State::kIdle;
      e->parked = ++clock_;
    } else {
      e->pooled.link->Close();
      e->state = State::kClosed;
    }
  }
  void Lost(PooledLink* link) override {
    Entry* e = Find(link);
    const std::string name = e != nullptr ? e->name : "L?";
    calls_.push_back(absl::StrCat("Lost(", name, ")"));
    if (e == nullptr || e->state != State::kLent) {
      violations_.push_back(absl::StrCat("Lost of ", name, ", not lent"));
      return;
    }
    e->pooled.link = nullptr;  // the link object is gone for the borrower
    e->state = State::kLost;
  }

  // Test side.
  // Parks an idle link of `user` in `state` (its `link` is ignored): `link` if
  // given (the test keeps it alive), else a new FakeStoreLink owned here.
  PooledLink* AddIdle(PooledLink state, FakeStoreLink* link = nullptr,
                      const std::string& user = "alice") {
    Entry& e = NewEntry({user, "", ""}, link);
    StoreLink* const kept = e.pooled.link;
    e.pooled = std::move(state);
    e.pooled.link = kept;
    e.state = State::kIdle;
    e.parked = ++clock_;
    return &e.pooled;
  }
  // Completes the oldest pending Borrow with the most recently parked idle
  // link of its user, or (none) a new one; returns it.
  PooledLink* CompleteBorrow() {
    if (pending_.empty()) {
      ADD_FAILURE() << "CompleteBorrow() without a pending Borrow()";
      return nullptr;
    }
    Entry* e = NewestIdle(pending_.front().credentials);
    if (e == nullptr) e = &NewEntry(pending_.front().credentials, nullptr);
    return CompleteBorrowWith(&e->pooled);
  }
  // Completes the oldest pending Borrow with `link` (idle, or new from here).
  PooledLink* CompleteBorrowWith(PooledLink* link) {
    Entry* e = Find(link);
    if (pending_.empty() || e == nullptr || e->state != State::kIdle) {
      ADD_FAILURE() << "CompleteBorrowWith() without a pending Borrow() or an "
                       "idle link";
      return nullptr;
    }
    e->state = State::kLent;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    p.done(&e->pooled);
    return link;
  }
  // Completes the oldest pending Borrow with an error.
  void FailBorrow(absl::Status status) {
    if (pending_.empty()) {
      ADD_FAILURE() << "FailBorrow() without a pending Borrow()";
      return;
    }
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    p.done(std::move(status));
  }
  size_t pending_borrows() const { return pending_.size(); }

  // The calls so far / since the last TakeCalls().
  const std::vector<std::string>& calls() const { return calls_; }
  std::vector<std::string> TakeCalls() {
    return std::exchange(calls_, std::vector<std::string>());
  }
  const std::vector<std::string>& violations() const { return violations_; }

  // The FakeStoreLink behind a PooledLink (null for a link that is no fake);
  // valid after Lost() too.
  FakeStoreLink* fake(const PooledLink* link) {
    Entry* e = Find(link);
    return e != nullptr ? e->fake : nullptr;
  }
  FakeStoreLink* fake(const std::string& name) {
    for (auto& e : entries_) {
      if (e->name == name) return e->fake;
    }
    return nullptr;
  }
  PooledLink* pooled(const std::string& name) {
    for (auto& e : entries_) {
      if (e->name == name) return &e->pooled;
    }
    return nullptr;
  }
  std::string name(const PooledLink* link) {
    Entry* e = Find(link);
    return e != nullptr ? e->name : "";
  }
  State state(const PooledLink* link) {
    Entry* e = Find(link);
    if (e == nullptr) {
      ADD_FAILURE() << "state() of a link the pool does not know";
      return State::kLost;
    }
    return e->state;
  }
  size_t lent() const {
    size_t n = 0;
    for (const auto& e : entries_) n += e->state == State::kLent;
    return n;
  }

  bool try_borrow_hits = true;
  bool refuse_adopt = false;  // Adopt() answers nullptr (shutting down)

 private:
  struct Entry {
    std::string name;
    std::string user;  // credentials' identity: "authzid via user" or user
    PooledLink pooled;
    std::unique_ptr<FakeStoreLink> owned;
    FakeStoreLink* fake = nullptr;
    State state = State::kIdle;
    uint64_t parked = 0;
  };
  struct Pending {
    StoreCredentials credentials;
    BorrowCallback done;
  };

  // The identity a link is shared by: user (or authzid via master user) and
  // the profile, if any.
  static std::string Who(const StoreCredentials& c) {
    std::string who =
        c.authzid.empty() ? c.user : absl::StrCat(c.authzid, " via ", c.user);
    if (!c.profile.empty()) absl::StrAppend(&who, " [", c.profile, "]");
    return who;
  }
  Entry& NewEntry(const StoreCredentials& credentials, StoreLink* link) {
    auto e = std::make_unique<Entry>();
    e->name = absl::StrCat("L", entries_.size() + 1);
    e->user = Who(credentials);
    if (link == nullptr) {
      e->owned = std::make_unique<FakeStoreLink>();
      e->fake = e->owned.get();
      link = e->fake;
    } else {
      e->fake = dynamic_cast<FakeStoreLink*>(link);
    }
    e->pooled.link = link;
    entries_.push_back(std::move(e));
    return *entries_.back();
  }
  Entry* Find(const PooledLink* link) {
    for (auto& e : entries_) {
      if (&e->pooled == link) return e.get();
    }
    return nullptr;
  }
  Entry* NewestIdle(const StoreCredentials& credentials) {
    Entry* best = nullptr;
    for (auto& e : entries_) {
      if (e->state == State::kIdle && e->user == Who(credentials) &&
          (best == nullptr || e->parked > best->parked)) {
        best = e.get();
      }
    }
    return best;
  }

  std::deque<std::unique_ptr<Entry>> entries_;
  std::deque<Pending> pending_;
  std::vector<std::string> calls_;
  std::vector<std::string> violations_;
  uint64_t clock_ = 0;
};

// One device connection: its output, its store link and its driver.
struct Device {
  FakeDeviceOutput out;
  FakeStoreLink link;
  DeviceDriver* driver = nullptr;
};

// What the login answer advertises for FakeStoreLink's default store
// capabilities: the store's list without QRESYNC (not offered to a P-IMAP
// device), plus the P-IMAP tokens.
inline constexpr absl::string_view kCaps =
    "IMAP4rev1 CONDSTORE UIDPLUS LITERAL+ ENABLE IDLE XFILTER XPIMAPPREF "
    "XPROVISION XZIP ID XTERSE XSYNC XCONVERT XPSEARCH COMPRESS=DEFLATE";

inline std::string LoginOk(absl::string_view tag) {
  return absl::StrCat(tag, " OK [CAPABILITY ", kCaps, "] Logged in\r\n");
}

// The session id of "* SESSIONID <n>" in a transcript (0 when absent).
inline uint64_t SessionIdIn(absl::string_view transcript) {
  const size_t at = transcript.find("* SESSIONID ");
  if (at == absl::string_view::npos) return 0;
  absl::string_view rest = transcript.substr(at + 12);
  rest = rest.substr(0, rest.find("\r\n"));
  uint64_t id = 0;
  return absl::SimpleAtoi(rest, &id) ? id : 0;
}

// Plays the store's side of a device's SELECT (or EXAMINE) of `folder` that the
// driver has just sent: UIDVALIDITY 7, HIGHESTMODSEQ 10, UIDs 4, 9, 12, then the
// driver's view search.
inline void AnswerSelect(FakeStoreLink& store, absl::string_view folder,
                         absl::string_view verb = "SELECT") {
  const std::string select_tag = store.last_tag();
  EXPECT_TRUE(absl::StartsWith(select_tag, "~p")) << select_tag;
  EXPECT_EQ(store.TakeSent(), absl::StrCat(select_tag, " ", verb, " ", folder, "\r\n"));
  store.Reply("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
  store.Reply("* 3 EXISTS");
  store.Reply("* 0 RECENT");
  store.Reply("* OK [UIDVALIDITY 7] UIDs valid");
  store.Reply("* OK [HIGHESTMODSEQ 10] Highest");
  store.Complete(select_tag, verb == "EXAMINE" ? "OK [READ-ONLY] Examine completed"
                                               : "OK [READ-WRITE] Select completed");
  const std::string search_tag = store.last_tag();
  EXPECT_NE(search_tag, select_tag);
  EXPECT_EQ(store.TakeSent(), absl::StrCat(search_tag, " UID SEARCH RETURN (ALL) ALL\r\n"));
  store.Reply(absl::StrCat("* ESEARCH (TAG \"", search_tag, "\") UID ALL 4,9,12"));
  store.Complete(search_tag, "OK Search completed");
}

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_FAKE_STORE_LINK_H_
