// Out-of-band wake-ups (core/session/outband_notifier.h) through the session
// registry: a device away with a channel chosen is woken once for admitted
// mail, coalesced per --outband-min-interval, not for mail its filters
// reject, and no more once it is back; the queue is bounded.
#include "core/session/outband_notifier.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeStoreWatch;
using ::pimap::session::testing::FakeWatchFactory;

class FakeNotifier final : public OutbandNotifier {
 public:
  bool Send(WakeUp wake_up) override {
    if (sent.size() >= capacity) return false;
    sent.push_back(std::move(wake_up));
    return true;
  }
  void Prepare(absl::string_view address) override {
    prepared.emplace_back(address);
  }
  std::vector<WakeUp> sent;
  std::vector<std::string> prepared;
  size_t capacity = SIZE_MAX;
};

class FakeLink final : public DeviceLink {
 public:
  void OnEventsPending() override { ++pending; }
  void OnTakenOver(absl::string_view) override {}
  void OnFolderEvent(const StoreEvent&) override {}
  bool Selecting(absl::string_view) const override { return false; }
  int pending = 0;
};

constexpr char kSubscription[] =
    R"({"endpoint":"https://push.example.net/p/1","keys":{)"
    R"("p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",)"
    R"("auth":"BTBZMqHH6r4Tts7J_aSIgg"}})";

StoreCredentials Credentials() {
  StoreCredentials c;
  c.user = "alice";
  c.password = "pw";
  return c;
}

class OutbandTest : public ::testing::Test {
 protected:
  OutbandTest() : timers_(1000) {
    config_.default_notification = FilterSpec::All();
    outband_config_.min_interval_ms = 60000;
    registry_ = std::make_unique<SessionRegistry>(&timers_, &counters_,
                                                  &config_, &watches_, nullptr);
    outband_ = std::make_unique<OutbandDispatcher>(&timers_, &counters_,
                                                   &outband_config_);
    outband_->Register("WEBPUSH", &notifier_);
    registry_->set_outband(outband_.get());
  }
  ~OutbandTest() override {
    registry_->set_outband(nullptr);
    registry_->Stop();
  }

  // A device that chose Web Push, selected INBOX, then went away.
  DeviceSession* AwayDevice(const std::string& device = "phone") {
    bool resumed = false;
    DeviceSession* s =
        registry_->Attach("alice", device, Credentials(), &link_, &resumed);
    DevicePrefs& p = s->mutable_prefs();
    p.outband_channel = "WEBPUSH";
    p.outband_address = kSubscription;
    s->selected_folder = "INBOX";
    registry_->Detach(s, &link_);
    return s;
  }
  void Mail(uint32_t first_uid, int count = 1,
            const std::string& folder = "INBOX") {
    std::vector<StoreEvent> events;
    for (int i = 0; i < count; ++i) {
      StoreEvent e;
      e.kind = EventKind::kNew;
      e.folder = folder;
      e.uidvalidity = 7;
      e.uid = first_uid + i;
      events.push_back(e);
    }
    registry_->OnStoreEvents("alice", events);
  }
  void Advance(int64_t ms) { timers_.Advance(timers_.now_ms() + ms); }
  // New mail whose events carry a headline (the store's push), or none.
  void MailWithHeadline(uint32_t uid, const char* subject) {
    StoreEvent e;
    e.kind = EventKind::kNew;
    e.folder = "INBOX";
    e.uidvalidity = 7;
    e.uid = uid;
    if (subject != nullptr) e.headline = MakeHeadline(subject, "bob@x.org");
    registry_->OnStoreEvents("alice", {e});
  }
  FakeStoreWatch& Watch() { return *watches_.watches.back(); }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  OutbandConfig outband_config_;
  FakeWatchFactory watches_;
  FakeLink link_;
  FakeNotifier notifier_;
  std::unique_ptr<SessionRegistry> registry_;
  std::unique_ptr<OutbandDispatcher> outband_;
};

// A device that went away before its user's new watch first looked: the
// watch's catch-up starts from its view, so mail in between wakes it.
TEST_F(OutbandTest, JustAwayDeviceWithAChannelCountsForTheWatchsCatchUp) {
  DeviceSession* s = AwayDevice();
  s->view_uidvalidity = 7;
  s->view_modseq = 10;
  s->view.Insert(12);
  ViewStart start = registry_->OldestLiveView("alice", "INBOX", 7);
  EXPECT_EQ(start.modseq, 10u);
  EXPECT_EQ(start.top_uid, 12u);
  // Long gone: rebuilt at its resume instead.
  s->last_activity_ms -= SessionRegistry::kAwayCatchUpMs + 1;
  EXPECT_EQ(registry_->OldestLiveView("alice", "INBOX", 7).modseq, 0u);
  // Without a channel it waits for its resume too.
  s->last_activity_ms += SessionRegistry::kAwayCatchUpMs + 1;
  s->mutable_prefs().outband_channel = "NONE";
  EXPECT_EQ(registry_->OldestLiveView("alice", "INBOX", 7).modseq, 0u);
}

TEST_F(OutbandTest, ChannelPreparesWhenADeviceGoesAway) {
  // Work a wake-up can do ahead (Web Push: the key agreement) starts when the
  // device leaves, not when mail comes.
  AwayDevice();
  EXPECT_THAT(notifier_.prepared, ::testing::ElementsAre(kSubscription));
  // A device without a channel prepares nothing.
  bool resumed = false;
  DeviceSession* s =
      registry_->Attach("alice", "tablet", Credentials(), &link_, &resumed);
  registry_->Detach(s, &link_);
  EXPECT_EQ(notifier_.prepared.size(), 1u);
}

TEST_F(OutbandTest, AwayDeviceWokenOnceForMail) {
  AwayDevice();
  Mail(5);
  EXPECT_TRUE(notifier_.sent.empty()) << "sent from a timer, not inline";
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 1u);
  const WakeUp& w = notifier_.sent[0];
  EXPECT_EQ(w.user, "alice");
  EXPECT_EQ(w.device, "phone");
  EXPECT_EQ(w.channel, "WEBPUSH");
  EXPECT_EQ(w.address, kSubscription);
  EXPECT_EQ(w.folder, "INBOX");
  EXPECT_EQ(w.new_messages, 1u);
  EXPECT_EQ(w.uidnext, 6u);
  EXPECT_EQ(counters_.outband_wakeups.load(), 1u);
}

TEST_F(OutbandTest, BurstOfHundredIsOneWakeUpThenOneMoreAfterInterval) {
  AwayDevice();
  for (uint32_t uid = 1; uid <= 100; ++uid) {
    Mail(uid);
    Advance(10);
  }
  EXPECT_EQ(notifier_.sent.size(), 1u);
  EXPECT_EQ(counters_.outband_coalesced.load(), 99u);
  // The interval over: one more for the 99 that came after the first.
  Advance(60000);
  Advance(0);  // the queue drains from a timer of its own
  ASSERT_EQ(notifier_.sent.size(), 2u);
  EXPECT_EQ(notifier_.sent[1].new_messages, 99u);
  EXPECT_EQ(notifier_.sent[1].uidnext, 101u);
  // Nothing new: nothing more, and the device is no longer tracked.
  Advance(120000);
  EXPECT_EQ(notifier_.sent.size(), 2u);
  EXPECT_EQ(outband_->tracked(), 0u);
  // Later mail wakes it again at once.
  Mail(200);
  Advance(0);
  EXPECT_EQ(notifier_.sent.size(), 3u);
}

TEST_F(OutbandTest, FilterRejectsNoWakeUp) {
  DeviceSession* s = AwayDevice();
  XFilterCommand none;
  none.all_folders = true;
  none.kind = FilterKind::kNotification;
  none.spec = FilterSpec::None();
  s->filters.Set(none);
  Mail(1, 10);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
  // The event filter too: NONE admits nothing.
  s->filters = DeviceFilters(FilterSpec::All());
  s->mutable_prefs().event_filter = "NONE";
  Mail(20);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
}

TEST_F(OutbandTest, NoChannelOrConnectedNoWakeUp) {
  DeviceSession* s = AwayDevice();
  s->mutable_prefs().outband_channel = "NONE";
  Mail(1);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
  // A channel nobody serves here is counted, not sent.
  s->mutable_prefs().outband_channel = "UDP";
  Mail(2);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
  EXPECT_EQ(counters_.outband_no_channel.load(), 1u);
  // Connected: pushed in band, never out of band.
  s->mutable_prefs().outband_channel = "WEBPUSH";
  bool resumed = false;
  registry_->Attach("alice", "phone", Credentials(), &link_, &resumed);
  Mail(3);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
  EXPECT_EQ(link_.pending, 1);
}

TEST_F(OutbandTest, DeviceBackStopsWakeUps) {
  DeviceSession* s = AwayDevice();
  Mail(1);
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 1u);
  Mail(2);  // coalesced, would go when the interval is over
  bool resumed = false;
  registry_->Attach("alice", "phone", Credentials(), &link_, &resumed);
  Advance(120000);
  Advance(0);
  EXPECT_EQ(notifier_.sent.size(), 1u);
  EXPECT_EQ(outband_->tracked(), 0u);
  // Away again: woken again (a new absence), without waiting.
  registry_->Detach(s, &link_);
  Mail(3);
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 2u);
  EXPECT_EQ(notifier_.sent[1].uidnext, 4u);
}

TEST_F(OutbandTest, QueueBoundedAndFullChannelRetried) {
  outband_config_.max_queue = 3;
  notifier_.capacity = 0;  // the channel takes nothing for now
  for (int i = 0; i < 5; ++i) AwayDevice(absl::StrCat("d", i));
  Mail(1);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
  EXPECT_EQ(outband_->queued(), 3u);
  EXPECT_EQ(counters_.outband_overflow.load(), 2u);
  notifier_.capacity = SIZE_MAX;
  Advance(outband_config_.retry_offer_ms);
  EXPECT_EQ(notifier_.sent.size(), 3u);
  EXPECT_EQ(outband_->queued(), 0u);
}

// --outband-payload minimal (the default): no headline, whatever the events
// carry, and the store is never asked.
TEST_F(OutbandTest, MinimalPayloadCarriesNoHeadline) {
  AwayDevice();
  MailWithHeadline(5, "Secret plans");
  MailWithHeadline(6, nullptr);
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 1u);
  EXPECT_EQ(notifier_.sent[0].headline, nullptr);
  EXPECT_EQ(notifier_.sent[0].headline_uid, 0u);
  EXPECT_TRUE(Watch().lookups.empty());
}

// Push mode: the events carry it; the newest admitted one is shown.
TEST_F(OutbandTest, FullPayloadTakesTheHeadlineTheEventsCarry) {
  outband_config_.full_payload = true;
  AwayDevice();
  StoreEvent a, b;
  a.kind = b.kind = EventKind::kNew;
  a.folder = b.folder = "INBOX";
  a.uidvalidity = b.uidvalidity = 7;
  a.uid = 5;
  a.headline = MakeHeadline("older", "a@x.org");
  b.uid = 6;
  b.headline = MakeHeadline("=?UTF-8?Q?newest_=C3=BC?=", "b@x.org");
  registry_->OnStoreEvents("alice", {a, b});
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 1u);
  ASSERT_NE(notifier_.sent[0].headline, nullptr);
  EXPECT_EQ(notifier_.sent[0].headline->subject, "newest ü");
  EXPECT_EQ(notifier_.sent[0].headline_uid, 6u);
  EXPECT_TRUE(Watch().lookups.empty());
}

// Notify mode: the watch is asked once per message, however many devices
// wait; the wake-ups go when it answers.
TEST_F(OutbandTest, FullPayloadAsksTheWatchOncePerMessage) {
  outband_config_.full_payload = true;
  outband_config_.headline_wait_ms = 150;
  AwayDevice("phone");
  AwayDevice("tablet");
  MailWithHeadline(9, nullptr);
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty()) << "waits for the headline";
  ASSERT_EQ(Watch().lookups.size(), 1u);
  EXPECT_EQ(Watch().lookups[0].folder, "INBOX");
  EXPECT_EQ(Watch().lookups[0].uidvalidity, 7u);
  EXPECT_EQ(Watch().lookups[0].uid, 9u);
  EXPECT_EQ(Watch().lookups[0].wait_ms, 150);
  Watch().Answer(MakeHeadline("Lunch?", "Bob <bob@x.org>"));
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 2u);
  for (const WakeUp& w : notifier_.sent) {
    ASSERT_NE(w.headline, nullptr);
    EXPECT_EQ(w.headline->subject, "Lunch?");
    EXPECT_EQ(w.headline->from, "Bob <bob@x.org>");
    EXPECT_EQ(w.headline_uid, 9u);
    EXPECT_EQ(w.uidnext, 10u);
  }
}

// Not learnt in time (the watch answers null): the wake-up still goes.
TEST_F(OutbandTest, FullPayloadWithoutAHeadlineStillWakes) {
  outband_config_.full_payload = true;
  AwayDevice();
  MailWithHeadline(3, nullptr);
  ASSERT_EQ(Watch().lookups.size(), 1u);
  Watch().Answer(nullptr);
  Advance(0);
  ASSERT_EQ(notifier_.sent.size(), 1u);
  EXPECT_EQ(notifier_.sent[0].headline, nullptr);
  EXPECT_EQ(notifier_.sent[0].new_messages, 1u);
}

// Back in band while the headline was asked for: no wake-up.
TEST_F(OutbandTest, FullPayloadDeviceBackWhileWaiting) {
  outband_config_.full_payload = true;
  AwayDevice();
  MailWithHeadline(3, nullptr);
  bool resumed = false;
  registry_->Attach("alice", "phone", Credentials(), &link_, &resumed);
  Watch().Answer(MakeHeadline("late", "x@x.org"));
  Advance(0);
  EXPECT_TRUE(notifier_.sent.empty());
}

// Only Web Push shows content: another channel neither asks nor carries it.
TEST_F(OutbandTest, FullPayloadOnlyForWebPush) {
  outband_config_.full_payload = true;
  FakeNotifier udp;
  outband_->Register("UDP", &udp);
  DeviceSession* s = AwayDevice();
  s->mutable_prefs().outband_channel = "UDP";
  s->mutable_prefs().outband_address = "192.0.2.1:9";
  MailWithHeadline(3, nullptr);
  MailWithHeadline(4, "pushed");
  Advance(0);
  EXPECT_TRUE(Watch().lookups.empty());
  ASSERT_EQ(udp.sent.size(), 1u);
  EXPECT_EQ(udp.sent[0].headline, nullptr);
}

}  // namespace
}  // namespace pimap::session
