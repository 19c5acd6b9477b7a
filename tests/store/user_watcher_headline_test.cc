// The watch's headline look-ups (store/user_watcher_headline.cc) against a
// scripted IMAP store on loopback: the two header fields are fetched only when
// asked, with BODY.PEEK, once per message however many ask; decoded; a store
// too slow, another folder or a full list of asks answer null, never late.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"
#include "store/user_watcher.h"

namespace pimap::store {
namespace {

// A store that knows INBOX (UIDVALIDITY 7, UIDs 1..4), answers the watch's
// set-up, idles, announces UID 5 when told to, and answers the header FETCH
// (unless `answer_headers` is off). Every command line it got is recorded.
class ScriptedStore {
 public:
  ScriptedStore() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listener_, 4);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedStore() {
    stop_ = true;
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    {
      absl::MutexLock lock(&mu_);
      if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
    }
    thread_.join();
  }
  uint16_t port() const { return port_; }

  // New mail (UID 5) while the watch idles.
  void NewMail() {
    absl::MutexLock lock(&mu_);
    auto idling = [this] { return idling_; };
    mu_.AwaitWithTimeout(absl::Condition(&idling), absl::Seconds(5));
    mail_ = true;
    Write("* 5 EXISTS\r\n");
  }
  std::vector<std::string> commands() {
    absl::MutexLock lock(&mu_);
    return commands_;
  }
  // Waits until a command containing `text` came (or 5 s).
  bool WaitForCommand(absl::string_view text) {
    absl::MutexLock lock(&mu_);
    auto seen = [&] {
      for (const std::string& c : commands_) {
        if (absl::StrContains(c, text)) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(5));
  }
  std::atomic<bool> answer_headers{true};

 private:
  void Write(absl::string_view s) {
    // MSG_NOSIGNAL: the watch may have closed the connection already (the
    // test ends); a write then must fail, not kill the test with SIGPIPE.
    if (fd_ >= 0) (void)!send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
  }
  void Serve() {
    int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    {
      absl::MutexLock lock(&mu_);
      fd_ = fd;
      Write("* OK [CAPABILITY IMAP4rev1 LITERAL+] scripted\r\n");
    }
    std::string buffer;
    char chunk[4096];
    while (!stop_) {
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      size_t eol;
      while ((eol = buffer.find("\r\n")) != std::string::npos) {
        std::string line = buffer.substr(0, eol);
        buffer.erase(0, eol + 2);
        absl::MutexLock lock(&mu_);
        commands_.push_back(line);
        Answer(line);
      }
    }
    absl::MutexLock lock(&mu_);
    close(fd);
    fd_ = -1;
  }
  void Answer(const std::string& line) {
    if (line == "DONE") {
      idling_ = false;
      Write(absl::StrCat(idle_tag_, " OK idle done\r\n"));
      return;
    }
    std::vector<std::string> w = absl::StrSplit(line, ' ');
    const std::string& tag = w[0];
    const std::string cmd = w.size() > 1 ? w[1] : "";
    if (cmd == "LOGIN") {
      Write(absl::StrCat(tag,
                         " OK [CAPABILITY IMAP4rev1 ENABLE QRESYNC CONDSTORE "
                         "IDLE] in\r\n"));
    } else if (cmd == "ENABLE") {
      Write(absl::StrCat("* ENABLED QRESYNC\r\n", tag, " OK\r\n"));
    } else if (cmd == "NOTIFY") {
      Write(absl::StrCat(tag, " NO not here\r\n"));  // INBOX only
    } else if (cmd == "SELECT") {
      Write(absl::StrCat("* 4 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n",
                         "* OK [UIDNEXT 5] n\r\n* OK [HIGHESTMODSEQ 10] m\r\n",
                         tag, " OK [READ-WRITE] selected\r\n"));
    } else if (cmd == "UID" && absl::StrContains(line, "SEARCH")) {
      Write(absl::StrCat("* ESEARCH (TAG \"", tag, "\") UID ALL 1:4\r\n", tag,
                         " OK\r\n"));
    } else if (cmd == "IDLE") {
      idling_ = true;
      idle_tag_ = tag;
      Write("+ idling\r\n");
    } else if (cmd == "UID" && absl::StrContains(line, "CHANGEDSINCE")) {
      Write(absl::StrCat(
          mail_ ? "* 5 FETCH (UID 5 FLAGS () MODSEQ (11))\r\n" : "", tag,
          " OK\r\n"));
    } else if (cmd == "UID" && absl::StrContains(line, "HEADER.FIELDS")) {
      if (!answer_headers) return;  // a store that never answers in time
      const std::string block =
          "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?Q?_aus_Bonn?=\r\n"
          "From: =?ISO-8859-1?Q?J=FCrgen?= <j@example.org>\r\n\r\n";
      Write(
          absl::StrCat("* 5 FETCH (UID 5 BODY[HEADER.FIELDS (SUBJECT FROM)] {",
                       block.size(), "}\r\n", block, ")\r\n", tag, " OK\r\n"));
    } else {
      Write(absl::StrCat(tag, " OK\r\n"));
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  int fd_ = -1;
  bool idling_ = false;
  bool mail_ = false;
  std::string idle_tag_;
  std::vector<std::string> commands_;
};

struct Answer {
  bool answered = false;
  std::shared_ptr<const session::MessageHeadline> headline;
};

// On new mail the sink asks the watch for its headline `asks` times (as the
// registry would for its away devices), each answer recorded.
class AskingSink final : public session::StoreEventSink {
 public:
  void OnStoreEvents(absl::string_view user,
                     const std::vector<session::StoreEvent>& events) override {
    for (const session::StoreEvent& e : events) {
      if (e.kind != session::EventKind::kNew || e.uid != 5) continue;
      for (int i = 0; i < asks; ++i) {
        watch->LookUpHeadline(
            folder, e.uidvalidity, e.uid, wait_ms,
            [this](std::shared_ptr<const session::MessageHeadline> h) {
              absl::MutexLock lock(&mu);
              answers.push_back({true, std::move(h)});
            });
      }
    }
  }
  std::vector<Answer> WaitForAnswers(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&] { return answers.size() >= n; };
    mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
    return answers;
  }

  UserWatcher* watch = nullptr;
  int asks = 1;
  std::string folder = "INBOX";
  int64_t wait_ms = 2000;
  absl::Mutex mu;
  std::vector<Answer> answers;
};

class UserWatcherHeadlineTest : public ::testing::Test {
 protected:
  void Start() {
    UpstreamConfig config;
    config.host = "127.0.0.1";
    config.port = store_.port();
    auto* addr = reinterpret_cast<sockaddr_in*>(&config.address);
    addr->sin_family = AF_INET;
    addr->sin_port = htons(store_.port());
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    config.address_len = sizeof(sockaddr_in);
    set_ = std::make_unique<engine::ShardSet>(1, engine::RingOptions{});
    ASSERT_TRUE(set_->Start([&](engine::Shard& shard) -> absl::Status {
                      session::StoreCredentials c;
                      c.user = "carol";
                      c.password = "pw";
                      auto* w =
                          new UserWatcher(&shard, config, "carol", c, &sink_);
                      sink_.watch = w;
                      shard.AddStopHook([w] { w->Close(); });
                      return absl::OkStatus();
                    })
                    .ok());
  }
  void TearDown() override {
    if (set_) set_->StopAndJoin(1000);
  }
  int HeaderFetches() {
    int n = 0;
    for (const std::string& c : store_.commands()) {
      if (absl::StrContains(c, "HEADER.FIELDS")) ++n;
    }
    return n;
  }

  ScriptedStore store_;
  AskingSink sink_;
  std::unique_ptr<engine::ShardSet> set_;
};

TEST_F(UserWatcherHeadlineTest, OneFetchPerMessageDecoded) {
  sink_.asks = 2;  // two devices away wait for the same message
  Start();
  store_.NewMail();
  std::vector<Answer> answers = sink_.WaitForAnswers(2);
  ASSERT_EQ(answers.size(), 2u);
  for (const Answer& a : answers) {
    ASSERT_NE(a.headline, nullptr);
    EXPECT_EQ(a.headline->subject, "Grüße aus Bonn");
    EXPECT_EQ(a.headline->from, "Jürgen <j@example.org>");
  }
  EXPECT_EQ(HeaderFetches(), 1);
  // PEEK: the store does not mark the mail seen; only the one UID.
  for (const std::string& c : store_.commands()) {
    if (absl::StrContains(c, "HEADER.FIELDS")) {
      EXPECT_TRUE(absl::StrContains(
          c, "UID FETCH 5 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"))
          << c;
    }
  }
  // The watch idles again afterwards.
  EXPECT_TRUE(store_.WaitForCommand("W5 IDLE"));
}

TEST_F(UserWatcherHeadlineTest, NotAskedNotFetched) {
  sink_.asks = 0;
  Start();
  store_.NewMail();
  ASSERT_TRUE(store_.WaitForCommand("CHANGEDSINCE"));
  // Back to IDLE after the catch-up, without asking for any header.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(HeaderFetches(), 0);
}

TEST_F(UserWatcherHeadlineTest, SlowStoreAnswersNullWithinTheWait) {
  store_.answer_headers = false;
  sink_.wait_ms = 150;
  Start();
  store_.NewMail();
  ASSERT_TRUE(store_.WaitForCommand("HEADER.FIELDS"));
  const auto asked = std::chrono::steady_clock::now();
  std::vector<Answer> answers = sink_.WaitForAnswers(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].headline, nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(2));
}

TEST_F(UserWatcherHeadlineTest, AnotherFolderAnsweredNullAtOnce) {
  sink_.folder = "Work";
  Start();
  store_.NewMail();
  std::vector<Answer> answers = sink_.WaitForAnswers(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].headline, nullptr);
  EXPECT_EQ(HeaderFetches(), 0);
}

}  // namespace
}  // namespace pimap::store
