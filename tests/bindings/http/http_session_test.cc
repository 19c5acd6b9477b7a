// HttpSession against a fake owner and fake response sinks: how POST bodies
// become one command stream and how output is cut into responses, before
// login (no store needed). What needs a store (login, push, resume) is in
// tests/integration/test_http.py.
#include "bindings/http/http_session.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/shard_for_user.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::http_binding {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class FakeOwner final : public HttpSessionOwner {
 public:
  FakeOwner() : timers_(0) {}
  const HttpSessionConfig& session_config() const override { return config_; }
  session::LoginServices LoginServices() override {
    ADD_FAILURE() << "no login may start in these tests";
    return {};
  }
  ShardCounters& counters() override { return counters_; }
  TimerWheel& timers() override { return timers_; }
  int shard_id() const override { return 0; }
  int shard_count() const override { return 2; }
  std::string Authenticated(HttpSession*) override { return "0-cookie"; }
  void Ended(HttpSession*) override { ++ended; }

  int64_t live_sessions() const { return counters_.http_sessions.load(); }

  HttpSessionConfig config_;
  ShardCounters counters_;
  TimerWheel timers_;
  int ended = 0;
};

class FakeSink final : public ResponseSink {
 public:
  void WriteHead(absl::string_view extra_headers, int64_t length) override {
    EXPECT_FALSE(head.has_value());
    head = std::string(extra_headers);
    this->length = length;
  }
  void WriteBody(absl::string_view bytes) override {
    EXPECT_TRUE(head.has_value());
    EXPECT_FALSE(ended);
    body.append(bytes.data(), bytes.size());
    pieces.emplace_back(bytes);
  }
  void EndBody() override {
    EXPECT_FALSE(ended);
    ended = true;
  }
  size_t PendingOutput() const override { return 0; }
  void MoveTo(int owner, std::string replay) override {
    moved_to = owner;
    this->replay = std::move(replay);
  }

  std::optional<std::string> head;
  int64_t length = -2;
  std::string body;
  std::vector<std::string> pieces;
  bool ended = false;
  int moved_to = -1;
  std::string replay;
};

// A user of shard `shard` of 2.
std::string UserOfShard(uint32_t shard) {
  for (int i = 0;; ++i) {
    std::string user = absl::StrCat("user", i);
    if (ShardForUser(user, 2) == shard) return user;
  }
}

TEST(HttpSessionTest, BatchBeforeLoginIsOneResponseWithItsLength) {
  FakeOwner owner;
  auto* session =
      new HttpSession(&owner, /*secure=*/true, /*stale_cookie=*/false);
  FakeSink sink;
  ASSERT_TRUE(session->Submit("c CAPABILITY\r\nn NOOP\r\n", &sink));
  ASSERT_TRUE(sink.ended);
  EXPECT_EQ(sink.length, static_cast<int64_t>(sink.body.size()));
  EXPECT_THAT(sink.body, HasSubstr("* CAPABILITY "));
  EXPECT_THAT(sink.body, HasSubstr("\r\nc OK"));
  EXPECT_THAT(sink.body, HasSubstr("\r\nn OK"));
  EXPECT_LT(sink.body.find("c OK"), sink.body.find("n OK"));
  // Over HTTP there is no STARTTLS and no COMPRESS.
  EXPECT_THAT(sink.body, ::testing::Not(HasSubstr("STARTTLS")));
  // Nothing logged in: the session was only this exchange.
  EXPECT_EQ(owner.live_sessions(), 0);
}

TEST(HttpSessionTest, IncompleteCommandBeforeLoginIsAnsweredNotDropped) {
  FakeOwner owner;
  auto* session = new HttpSession(&owner, false, false);
  FakeSink sink;
  ASSERT_TRUE(session->Submit("c CAPABILITY\r\nl LOGIN {5}\r\nab", &sink));
  ASSERT_TRUE(sink.ended);
  EXPECT_THAT(sink.body, HasSubstr("c OK"));
  EXPECT_THAT(sink.body, HasSubstr("l BAD Command incomplete"));
  EXPECT_EQ(owner.live_sessions(), 0);
}

TEST(HttpSessionTest, StaleCookieNeverReachesASession) {
  FakeOwner owner;
  auto* session = new HttpSession(&owner, true, /*stale_cookie=*/true);
  FakeSink sink;
  ASSERT_TRUE(session->Submit("s SELECT INBOX\r\nc CAPABILITY\r\n", &sink));
  ASSERT_TRUE(sink.ended);
  EXPECT_THAT(sink.body, HasSubstr("s NO [AUTHENTICATIONFAILED]"));
  EXPECT_THAT(sink.body, HasSubstr("c OK"));
  EXPECT_THAT(*sink.head, HasSubstr("Set-Cookie: pimap=; Max-Age=0"));
  EXPECT_THAT(*sink.head, HasSubstr("Secure"));
}

TEST(HttpSessionTest, WhatHttpCannotCarryIsRefusedClearly) {
  FakeOwner owner;
  auto* session = new HttpSession(&owner, false, false);
  FakeSink sink;
  ASSERT_TRUE(
      session->Submit("l LOGIN plainuser secret\r\n"
                      "a AUTHENTICATE PLAIN\r\n"
                      "t STARTTLS\r\n",
                      &sink));
  ASSERT_TRUE(sink.ended);
  EXPECT_THAT(sink.body, HasSubstr("l NO [CANNOT]"));
  EXPECT_THAT(sink.body, HasSubstr("a NO [CANNOT]"));
  EXPECT_THAT(sink.body, HasSubstr("t BAD"));
  EXPECT_THAT(sink.body, ::testing::Not(HasSubstr("secret")));
  EXPECT_THAT(*sink.head, ::testing::Not(HasSubstr("Set-Cookie")));
}

TEST(HttpSessionTest, PersistentExchangeWritesOneLinePerChunk) {
  FakeOwner owner;
  auto* session = new HttpSession(&owner, false, false);
  FakeSink sink;
  ASSERT_TRUE(session->Open(&sink, false));
  ASSERT_TRUE(sink.head.has_value());
  EXPECT_EQ(sink.length, -1);  // streams
  session->Append("1 CAPABILITY\r\n2 NO");
  session->Append("OP\r\n");
  EXPECT_THAT(sink.body, HasSubstr("2 OK"));
  EXPECT_FALSE(sink.ended);  // the request goes on
  for (const std::string& piece : sink.pieces) {
    EXPECT_TRUE(absl::EndsWith(piece, "\r\n")) << piece;
    EXPECT_EQ(piece.find("\r\n"), piece.size() - 2) << piece;
  }
  session->EndInput();
  EXPECT_TRUE(sink.ended);
  EXPECT_EQ(owner.live_sessions(), 0);
}

TEST(HttpSessionTest, PersistentLoginForAnotherShardMovesTheExchange) {
  FakeOwner owner;
  auto* session = new HttpSession(&owner, false, false);
  FakeSink sink;
  ASSERT_TRUE(session->Open(&sink, false));
  const std::string user = UserOfShard(1);
  const std::string name = absl::StrCat(user, "#phone");
  session->Append(absl::StrCat("1 NOOP\r\nL LOGIN \"", name,
                               "\" \"p w\\\"d\"\r\ns SELECT INBOX\r\n"));
  EXPECT_EQ(sink.moved_to, 1);
  EXPECT_EQ(sink.replay, absl::StrCat("L LOGIN {", name.size(), "+}\r\n", name,
                                      " {5+}\r\np w\"d\r\ns SELECT INBOX\r\n"));
  // What was answered here stays answered; nothing of the login was.
  EXPECT_THAT(sink.body, HasSubstr("1 OK"));
  EXPECT_THAT(sink.body, ::testing::Not(HasSubstr("L ")));
  EXPECT_FALSE(sink.ended);
  EXPECT_EQ(owner.live_sessions(), 0);
}

TEST(HttpSessionTest, FirstLoginUserRoutesABatch) {
  imap::ParserLimits limits;
  EXPECT_EQ(FirstLoginUser("c CAPABILITY\r\nL LOGIN \"bob#d\" pw\r\n", limits),
            "bob");
  // AUTHENTICATE PLAIN with an initial response: "\0bob#d\0pw".
  EXPECT_EQ(FirstLoginUser("a AUTHENTICATE PLAIN AGJvYiNkAHB3\r\n", limits),
            "bob");
  EXPECT_EQ(FirstLoginUser("n NOOP\r\n", limits), std::nullopt);
  EXPECT_EQ(FirstLoginUser("L LOGIN {3+}\r\nbob pw\r\n", limits), "bob");
}

}  // namespace
}  // namespace pimap::http_binding
