// The store-event intake on a real engine: two shards on loopback,
// notifications routed to the shard that owns the user, secret (required unless
// insecure), bad and invalid input (400/413 counted by reason), overload (503).
#include "store/events/event_intake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/base/log.h"
#include "core/base/shard_counters.h"
#include "core/base/shard_for_user.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback.h"

namespace pimap::store {
namespace {

using ::pimap::testing::ConnectTo;
using ::pimap::testing::Exchange;
using ::pimap::testing::FreePort;
using ::pimap::testing::ReadLine;
using ::pimap::testing::ReadToClose;

std::string Post(const std::string& body, const std::string& extra_headers = "",
                 bool close = true, const std::string& path = "/dovecot") {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                      "Content-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\n", extra_headers, close ? "Connection: close\r\n" : "",
                      "\r\n", body);
}

std::string NewMail(const std::string& user, int uid) {
  return absl::StrCat(
      R"({"user":")", user, R"(","service":"lmtp","events":[{"event":"MessageNew","mailbox":"INBOX","uid":)",
      uid, R"(,"uidvalidity":1795879213,"flags":[],"keywords":[]}],"status":{"INBOX":{"uidvalidity":1795879213,"uidnext":)",
      uid + 1, R"(,"messages":1,"unseen":1,"highestmodseq":)", uid + 1, "}}}");
}

// A user name owned by `shard` of 2.
std::string UserOfShard(int shard, int n = 0) {
  for (int i = 0;; ++i) {
    std::string user = absl::StrCat("user", i);
    if (ShardForUser(user, 2) == static_cast<uint32_t>(shard) && n-- == 0) return user;
  }
}

struct Delivery {
  int thread_shard;
  std::string user;
  std::vector<session::StoreEvent> events;
};

class RecordingSink final : public session::StoreEventSink {
 public:
  void OnStoreEvents(absl::string_view user,
                     const std::vector<session::StoreEvent>& events) override {
    absl::MutexLock lock(&mu_);
    deliveries_.push_back({GetThreadShard(), std::string(user), events});
  }
  // Waits until `count` deliveries arrived (or 5 s).
  std::vector<Delivery> WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return deliveries_.size() >= count; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
    return deliveries_;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return deliveries_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<Delivery> deliveries_;
};

// No secret: only with `insecure` (the tests that are not about the secret).
EventIntakeConfig Insecure() {
  EventIntakeConfig config;
  config.insecure = true;
  return config;
}

uint64_t Rejected(engine::ShardSet& set, IntakeReject reason) {
  uint64_t n = 0;
  for (int i = 0; i < set.count(); ++i) {
    n += set.shard(i)
             .counters()
             .intake_rejected_by_reason[static_cast<size_t>(reason)]
             .load();
  }
  return n;
}

class EventIntakeTest : public ::testing::Test {
 protected:
  // Starts 2 shards; the intake runs on the shards in `intake_shards`.
  void StartSet(std::vector<int> intake_shards, EventIntakeConfig config) {
    port_ = FreePort();
    config.host = "127.0.0.1";
    config.port = port_;
    set_ = std::make_unique<engine::ShardSet>(2, engine::RingOptions{});
    SinkOfShard sinks = [this](int shard) -> session::StoreEventSink* {
      return &sinks_[shard];
    };
    ASSERT_TRUE(set_->Start([&](engine::Shard& shard) -> absl::Status {
                     bool want = false;
                     for (int s : intake_shards) want = want || s == shard.id();
                     if (!want) return absl::OkStatus();
                     auto intake = EventIntake::Start(&shard, config, sinks);
                     if (!intake.ok()) return intake.status();
                     shard.AddStopHook([i = *intake] { i->Stop(); });
                     return absl::OkStatus();
                   }).ok());
  }
  void TearDown() override {
    if (set_) set_->StopAndJoin(1000);
  }

  uint16_t port_ = 0;
  std::unique_ptr<engine::ShardSet> set_;
  RecordingSink sinks_[2];
};

TEST_F(EventIntakeTest, RoutesToTheOwnerShard) {
  // Only shard 0 accepts, so a user of shard 1 must cross shards.
  StartSet({0}, Insecure());
  const std::string bob = UserOfShard(1);
  const std::string alice = UserOfShard(0);
  const std::string reply = Exchange(port_, Post(NewMail(bob, 7)));
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 204 No Content\r\n")) << reply;
  std::vector<Delivery> got = sinks_[1].WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].thread_shard, 1);
  EXPECT_EQ(got[0].user, bob);
  ASSERT_EQ(got[0].events.size(), 1u);
  EXPECT_EQ(got[0].events[0].kind, session::EventKind::kNew);
  EXPECT_EQ(got[0].events[0].uid, 7u);
  EXPECT_EQ(got[0].events[0].uidvalidity, 1795879213u);
  EXPECT_EQ(got[0].events[0].modseq, 8u);

  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post(NewMail(alice, 1))), "HTTP/1.1 204"));
  got = sinks_[0].WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].thread_shard, 0);
  EXPECT_EQ(got[0].user, alice);
  EXPECT_EQ(sinks_[1].size(), 1u);

  std::vector<const ShardCounters*> counters;
  for (int i = 0; i < set_->count(); ++i) counters.push_back(&set_->shard(i).counters());
  const std::string metrics = RenderPrometheus(counters);
  EXPECT_TRUE(absl::StrContains(metrics, "pimap_store_notifications_received_total{shard=\"0\"}"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "# TYPE pimap_store_intake_queue_seconds summary"));
}

// Issue 14, item 5: the store's name for the user, in whatever case it reports
// it, reaches the sessions keyed by the folded name, on the folded name's
// shard.
TEST_F(EventIntakeTest, UserNamesAreFoldedBeforeRouting) {
  StartSet({0}, Insecure());
  std::string user = UserOfShard(1);
  user[0] = 'U';  // "User..." may hash to the other shard: the folded one counts
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post(NewMail(user, 3))), "HTTP/1.1 204"));
  std::vector<Delivery> got = sinks_[1].WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].thread_shard, 1);
  EXPECT_EQ(got[0].user, UserOfShard(1));
}

TEST_F(EventIntakeTest, KeepAliveAndPipelinedRequestsKeepTheirOrder) {
  StartSet({0, 1}, Insecure());  // SO_REUSEPORT on both shards
  const std::string bob = UserOfShard(1);
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  std::string requests;
  for (int uid = 1; uid <= 20; ++uid) requests += Post(NewMail(bob, uid), "", false);
  // Byte-sized sends for the first request, then the rest in one go.
  for (size_t i = 0; i < 100; ++i) ASSERT_EQ(send(fd, &requests[i], 1, 0), 1);
  ASSERT_EQ(send(fd, requests.data() + 100, requests.size() - 100, 0),
            static_cast<ssize_t>(requests.size() - 100));
  std::string replies;
  char buf[4096];
  while (replies.size() < 20 * strlen("HTTP/1.1 204 No Content\r\n\r\n")) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    replies.append(buf, n);
  }
  close(fd);
  std::vector<Delivery> got = sinks_[1].WaitFor(20);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i].events[0].uid, static_cast<uint32_t>(i + 1));
}

TEST_F(EventIntakeTest, SecretIsRequired) {
  EventIntakeConfig config;
  config.secret = "s3cret";
  StartSet({0}, config);
  const std::string bob = UserOfShard(1);
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post(NewMail(bob, 1))), "HTTP/1.1 401"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, Post(NewMail(bob, 1), "X-Pimap-Secret: s3cre\r\n")), "HTTP/1.1 401"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, Post(NewMail(bob, 1), "X-Pimap-Secret: s3cret!\r\n")), "HTTP/1.1 401"));
  EXPECT_EQ(sinks_[1].size(), 0u);
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, Post(NewMail(bob, 2), "X-Pimap-Secret: s3cret\r\n")), "HTTP/1.1 204"));
  std::vector<Delivery> got = sinks_[1].WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].events[0].uid, 2u);
}

TEST(EventIntakeStartTest, NoSecretRefusesToStartUnlessInsecure) {
  engine::ShardSet set(1, engine::RingOptions{});
  EventIntakeConfig config;
  config.host = "127.0.0.1";
  config.port = FreePort();
  absl::Status refused = set.Start([&](engine::Shard& shard) -> absl::Status {
    auto intake = EventIntake::Start(&shard, config, nullptr);
    if (!intake.ok()) return intake.status();
    shard.AddStopHook([i = *intake] { i->Stop(); });
    return absl::OkStatus();
  });
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_TRUE(
      absl::StrContains(refused.message(), "--store-events-secret-file"));
  EXPECT_TRUE(absl::StrContains(refused.message(), "--store-events-insecure"));
  set.StopAndJoin(1000);
}

TEST_F(EventIntakeTest, SecretIsComparedWholly) {
  EventIntakeConfig config;
  config.secret = "s3cret";
  config.insecure = true;  // a secret, when given, is checked all the same
  StartSet({0}, config);
  const std::string bob = UserOfShard(1);
  for (const char* wrong :
       {"", "s", "s3cre", "S3cret", "s3c ret", "s3cretx", "x3cret"}) {
    EXPECT_TRUE(absl::StartsWith(
        Exchange(port_, Post(NewMail(bob, 1),
                             absl::StrCat("X-Pimap-Secret: ", wrong, "\r\n"))),
        "HTTP/1.1 401"))
        << wrong;
  }
  usleep(50000);
  EXPECT_EQ(sinks_[1].size(), 0u);
  EXPECT_EQ(set_->shard(0).counters().intake_unauthorized.load(), 7u);
}

TEST_F(EventIntakeTest, InjectedFlagsAreRefusedAndNothingIsRouted) {
  StartSet({0}, Insecure());
  const std::string bob = UserOfShard(1);
  // Issue 14, as seen: flags that close the FETCH and forge an EXPUNGE.
  const std::string injected = absl::StrCat(
      R"({"user":")", bob,
      R"(","events":[{"event":"FlagsClear","mailbox":"INBOX","uid":1,)",
      R"("uidvalidity":7,"flags":[],"flags_old":[],"keywords":[],"keywords_old":[]},)",
      R"({"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":7,)",
      R"("flags":["\\Seen \\Flagged","\\Flagged))\r\n* 1 EXPUNGE"],"keywords":[]}]})");
  const std::string reply = Exchange(port_, Post(injected));
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 400")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "event 1: flags: not a flag")) << reply;
  EXPECT_FALSE(absl::StrContains(reply, "EXPUNGE"))
      << "no value echoed: " << reply;
  // A mailbox name with CRLF.
  EXPECT_TRUE(absl::StartsWith(
      Exchange(
          port_,
          Post(absl::StrCat(
              R"({"user":")", bob,
              R"(","events":[{"event":"MailboxCreate","mailbox":"A\r\nB"}]})"))),
      "HTTP/1.1 400"));
  usleep(50000);
  EXPECT_EQ(sinks_[1].size(), 0u);
  EXPECT_EQ(Rejected(*set_, IntakeReject::kBadFlag), 1u);
  EXPECT_EQ(Rejected(*set_, IntakeReject::kBadMailbox), 1u);
  std::vector<const ShardCounters*> counters;
  for (int i = 0; i < set_->count(); ++i)
    counters.push_back(&set_->shard(i).counters());
  const std::string metrics = RenderPrometheus(counters);
  EXPECT_TRUE(absl::StrContains(
      metrics, "pimap_intake_rejected_total{reason=\"bad_flag\"} 1\n"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, "pimap_intake_rejected_total{reason=\"bad_mailbox\"} 1\n"));
  // A valid notification still goes through.
  EXPECT_TRUE(
      absl::StartsWith(Exchange(port_, Post(NewMail(bob, 2))), "HTTP/1.1 204"));
  EXPECT_EQ(sinks_[1].WaitFor(1).size(), 1u);
}

TEST_F(EventIntakeTest, BoundsAreRefusedByReason) {
  EventIntakeConfig config = Insecure();
  config.max_body_bytes = 4096;
  config.limits.max_events = 3;
  config.limits.max_flags = 2;
  config.limits.max_user_bytes = 16;
  StartSet({0}, config);
  auto events = [](int n) {
    std::string e;
    for (int i = 0; i < n; ++i) {
      absl::StrAppend(&e, i ? "," : "",
                      R"({"event":"MessageExpunge","mailbox":"INBOX","uid":)",
                      i + 1, R"(,"uidvalidity":7})");
    }
    return absl::StrCat(R"({"user":"u","events":[)", e, "]}");
  };
  EXPECT_TRUE(
      absl::StartsWith(Exchange(port_, Post(events(3))), "HTTP/1.1 204"));
  EXPECT_TRUE(
      absl::StartsWith(Exchange(port_, Post(events(4))), "HTTP/1.1 400"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, Post(std::string(5000, ' ') + events(1))),
      "HTTP/1.1 413"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, Post(R"({"user":"a-user-name-of-17b","events":[]})")),
      "HTTP/1.1 400"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(
          port_,
          Post(
              R"({"user":"u","events":[{"event":"MessageNew","mailbox":"INBOX",)"
              R"("uid":1,"uidvalidity":7,"flags":["\\Seen","a"],"keywords":["b"]}]})")),
      "HTTP/1.1 400"));
  EXPECT_EQ(Rejected(*set_, IntakeReject::kTooManyEvents), 1u);
  EXPECT_EQ(Rejected(*set_, IntakeReject::kBodyTooLarge), 1u);
  EXPECT_EQ(Rejected(*set_, IntakeReject::kUserTooLong), 1u);
  EXPECT_EQ(Rejected(*set_, IntakeReject::kTooManyFlags), 1u);
}

TEST_F(EventIntakeTest, BadInputIsAnsweredAndClosed) {
  StartSet({0}, Insecure());
  // Garbage HTTP: 400 and the server closes (Exchange returns on close).
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, "garbage\r\n\r\n"), "HTTP/1.1 400"));
  // Good HTTP, bad JSON (and no Connection: close: the error still closes).
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post("{not json", "", false)), "HTTP/1.1 400"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, "POST /dovecot HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n"),
      "HTTP/1.1 501"));
  // A chunked body is decoded (and this one is not JSON).
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, "POST /dovecot HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n"),
      "HTTP/1.1 400"));
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post("{}", "", true, "/other")), "HTTP/1.1 404"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, "GET /dovecot HTTP/1.1\r\nHost: h\r\n\r\n"), "HTTP/1.1 405"));
  // Only noise: accepted, nothing routed.
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port_, Post(R"({"user":"x","events":[{"event":"MailboxSubscribe","mailbox":"A"}]})")),
      "HTTP/1.1 204"));
  usleep(50000);
  EXPECT_EQ(sinks_[0].size() + sinks_[1].size(), 0u);
}

TEST_F(EventIntakeTest, FullOwnerQueueAnswers503) {
  EventIntakeConfig config = Insecure();
  config.max_queued_per_shard = 1;
  StartSet({0}, config);
  const std::string bob = UserOfShard(1);
  const uint64_t lost_before = set_->shard(1).counters().intake_lost.load();
  // Hold shard 1's thread so that nothing drains its inbox.
  absl::Notification blocked, release;
  ASSERT_TRUE(set_->shard(1).Post([&](engine::Shard&) {
    blocked.Notify();
    release.WaitForNotification();
  }));
  blocked.WaitForNotification();
  const std::string first = Exchange(port_, Post(NewMail(bob, 1)));
  const std::string second = Exchange(port_, Post(NewMail(bob, 2)));
  release.Notify();
  EXPECT_TRUE(absl::StartsWith(first, "HTTP/1.1 204")) << first;
  EXPECT_TRUE(absl::StartsWith(second, "HTTP/1.1 503")) << second;
  EXPECT_TRUE(absl::StrContains(second, "\r\nRetry-After: 1\r\n")) << second;
  EXPECT_EQ(set_->shard(1).counters().intake_lost.load(), lost_before + 1);
  std::vector<Delivery> got = sinks_[1].WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].events[0].uid, 1u);
  // Drained: accepted again.
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post(NewMail(bob, 3))), "HTTP/1.1 204"));
  EXPECT_EQ(sinks_[1].WaitFor(2).size(), 2u);
}

// The HTTP core's connection bound and gauge feed the intake's counters; a
// store that sends "Expect: 100-continue" gets its 100 before the body.
TEST_F(EventIntakeTest, ConnectionsAreCountedAndBounded) {
  EventIntakeConfig config = Insecure();
  config.max_connections = 1;
  StartSet({0}, config);
  ShardCounters& counters = set_->shard(0).counters();
  const std::string body = NewMail(UserOfShard(1), 1);
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  const std::string request = Post(body, "Expect: 100-continue\r\n");
  const std::string head = request.substr(0, request.size() - body.size());
  ASSERT_EQ(send(fd, head.data(), head.size(), 0),
            static_cast<ssize_t>(head.size()));
  EXPECT_EQ(ReadLine(fd), "HTTP/1.1 100 Continue\r\n");
  EXPECT_EQ(counters.intake_connections.load(), 1);
  EXPECT_TRUE(absl::StartsWith(Exchange(port_, Post(body)), "HTTP/1.1 503"));
  EXPECT_EQ(counters.intake_overloaded.load(), 1u);
  ASSERT_EQ(send(fd, body.data(), body.size(), 0),
            static_cast<ssize_t>(body.size()));
  EXPECT_TRUE(absl::StrContains(ReadToClose(fd), "HTTP/1.1 204"));
  close(fd);
  EXPECT_EQ(sinks_[1].WaitFor(1).size(), 1u);
  usleep(50000);
  EXPECT_EQ(counters.intake_connections.load(), 0);
}

// Intake handling time as the client sees it (printed, not asserted).
TEST_F(EventIntakeTest, ReportsRoundTripLatency) {
  StartSet({0, 1}, Insecure());
  const std::string body = NewMail(UserOfShard(1), 1);
  std::vector<double> us;
  for (int i = 0; i < 200; ++i) {
    int fd = ConnectTo(port_);
    ASSERT_GE(fd, 0);
    const std::string request = Post(body);
    const auto t0 = std::chrono::steady_clock::now();
    send(fd, request.data(), request.size(), 0);
    char buf[256];
    ASSERT_GT(recv(fd, buf, sizeof(buf), 0), 0);
    us.push_back(std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - t0).count());
    close(fd);
  }
  std::sort(us.begin(), us.end());
  printf("POST -> 204 round trip over loopback: p50 %.1f us, p99 %.1f us, max %.1f us\n",
         us[us.size() / 2], us[us.size() * 99 / 100], us.back());
  sinks_[1].WaitFor(200);
}

}  // namespace
}  // namespace pimap::store
