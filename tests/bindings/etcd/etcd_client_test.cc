// EtcdClient (bindings/etcd/etcd_client.h) against a real etcd (Debian's
// /usr/bin/etcd, started on free loopback ports in a temporary directory) on
// a real shard: leases (grant, keep-alive, revoke, expiry), put/range/delete,
// the two transactions the cluster agent relies on, endpoint failover and a
// timeout. Label "integration"; skipped when etcd is not installed.
#include "bindings/etcd/etcd_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"

extern char** environ;

namespace pimap::etcd {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// A loopback socket bound to a free port (listening when asked).
int BoundSocket(bool listening, int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  if (listening) {
    EXPECT_EQ(listen(fd, 16), 0);
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int FreePort() {
  int port = 0;
  close(BoundSocket(false, &port));
  return port;
}

outband_http::HttpsTarget Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  engine::ResolvedAddress address;
  address.len = sizeof(a);
  memcpy(&address.address, &a, sizeof(a));
  return {{address}, "127.0.0.1"};
}

// A blocking GET with "Connection: close": the whole answer, or "".
std::string Get(int port, absl::string_view path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string request = absl::StrCat(
        "GET ", path,
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if (write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        out.append(buffer, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return out;
}

// One etcd member on free loopback ports, its data in a temporary directory.
// A short heartbeat and election timeout: it leads at once, and its minimum
// lease TTL is 1 s (not 2), which keeps the expiry tests short.
class EtcdServer {
 public:
  bool Start() {
    char dir[] = "/tmp/pimap-etcd-test.XXXXXX";
    if (mkdtemp(dir) == nullptr) return false;
    dir_ = dir;
    client_port_ = FreePort();
    const int peer_port = FreePort();
    const std::string client = absl::StrCat("http://127.0.0.1:", client_port_);
    const std::string peer = absl::StrCat("http://127.0.0.1:", peer_port);
    std::vector<std::string> args = {kEtcd,
                                     "--name=default",
                                     absl::StrCat("--data-dir=", dir_, "/data"),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=default=" + peer,
                                     "--heartbeat-interval=10",
                                     "--election-timeout=50"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/etcd.log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc =
        posix_spawn(&pid_, kEtcd, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (absl::StrContains(Get(client_port_, "/health"),
                            "\"health\":\"true\"")) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  ~EtcdServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  int client_port() const { return client_port_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int client_port_ = 0;
};

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kEtcd, X_OK) != 0) return;
    server_ = new EtcdServer;
    started_ = server_->Start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    if (access(kEtcd, X_OK) != 0) {
      GTEST_SKIP() << kEtcd << " is not installed (Debian's etcd-server; "
                   << "tools/setup installs it)";
    }
    ASSERT_TRUE(started_) << "etcd did not start (its log is in /tmp)";
    set_ = std::make_unique<engine::ShardSet>(1, engine::RingOptions{});
    ASSERT_TRUE(
        set_->Start([](engine::Shard&) { return absl::OkStatus(); }).ok());
    UseEndpoints({Loopback(server_->client_port())}, 5000);
    prefix_ = absl::StrCat(
        "test/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }
  void TearDown() override {
    if (set_ != nullptr) {
      // The client goes on the shard's thread, where its calls ran.
      absl::Notification gone;
      set_->shard(0).Post([&](engine::Shard&) {
        client_.reset();
        gone.Notify();
      });
      gone.WaitForNotification();
      set_->StopAndJoin(1000);
    }
  }

  void UseEndpoints(std::vector<outband_http::HttpsTarget> endpoints,
                    int64_t timeout_ms) {
    client_ = std::make_unique<EtcdClient>(&set_->shard(0),
                                           std::move(endpoints), timeout_ms);
  }

  // Runs `call` on the shard and waits for its result.
  template <typename T>
  absl::StatusOr<T> Run(
      absl::AnyInvocable<void(EtcdClient&, EtcdClient::Done<T>)> call) {
    absl::StatusOr<T> result = absl::UnknownError("not run");
    absl::Notification done;
    set_->shard(0).Post([&](engine::Shard&) {
      call(*client_, [&](absl::StatusOr<T> r) {
        result = std::move(r);
        done.Notify();
      });
    });
    done.WaitForNotification();
    return result;
  }

  absl::StatusOr<LeaseGrant> Grant(int64_t ttl) {
    return Run<LeaseGrant>(
        [ttl](EtcdClient& c, auto done) { c.Grant(ttl, std::move(done)); });
  }
  absl::StatusOr<int64_t> KeepAlive(int64_t lease) {
    return Run<int64_t>([lease](EtcdClient& c, auto done) {
      c.KeepAlive(lease, std::move(done));
    });
  }
  absl::Status Revoke(int64_t lease) {
    return Run<bool>([lease](EtcdClient& c, auto done) {
             c.Revoke(lease, [done = std::move(done)](absl::Status s) mutable {
               if (s.ok()) {
                 done(true);
               } else {
                 done(s);
               }
             });
           })
        .status();
  }
  absl::StatusOr<int64_t> Put(std::string key, std::string value,
                              int64_t lease = 0) {
    return Run<int64_t>([=](EtcdClient& c, auto done) {
      c.Put(key, value, lease, std::move(done));
    });
  }
  absl::StatusOr<RangeResult> Range(std::string key,
                                    std::string range_end = "") {
    return Run<RangeResult>([=](EtcdClient& c, auto done) {
      c.Range(key, range_end, std::move(done));
    });
  }
  absl::StatusOr<int64_t> Delete(std::string key, std::string range_end = "") {
    return Run<int64_t>([=](EtcdClient& c, auto done) {
      c.Delete(key, range_end, std::move(done));
    });
  }
  absl::StatusOr<TxnResult> PutIfAbsent(std::string key, std::string value,
                                        int64_t lease = 0) {
    return Run<TxnResult>([=](EtcdClient& c, auto done) {
      c.PutIfAbsent(key, value, lease, std::move(done));
    });
  }
  absl::StatusOr<TxnResult> DeleteIfValue(std::string key,
                                          std::string expected) {
    return Run<TxnResult>([=](EtcdClient& c, auto done) {
      c.DeleteIfValue(key, expected, std::move(done));
    });
  }

  static EtcdServer* server_;
  static bool started_;
  std::unique_ptr<engine::ShardSet> set_;
  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;  // this test's keys
};

EtcdServer* EtcdClientTest::server_ = nullptr;
bool EtcdClientTest::started_ = false;

TEST_F(EtcdClientTest, GrantKeepAliveRevoke) {
  absl::StatusOr<LeaseGrant> grant = Grant(30);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_NE(grant->id, 0);
  EXPECT_EQ(grant->ttl_s, 30);
  absl::StatusOr<int64_t> ttl = KeepAlive(grant->id);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 30);
  EXPECT_TRUE(Revoke(grant->id).ok());
  EXPECT_EQ(KeepAlive(grant->id).status().code(), absl::StatusCode::kNotFound);
  // Revoking it again: already gone, which is what was asked.
  EXPECT_TRUE(Revoke(grant->id).ok());
}

TEST_F(EtcdClientTest, KeepAliveOfAnExpiredLeaseIsNotFound) {
  absl::StatusOr<LeaseGrant> grant = Grant(1);
  ASSERT_TRUE(grant.ok()) << grant.status();
  absl::SleepFor(absl::Seconds(grant->ttl_s) + absl::Milliseconds(1500));
  EXPECT_EQ(KeepAlive(grant->id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdClientTest, PutRangeDelete) {
  const std::string a = prefix_ + "a", b = prefix_ + "b";
  absl::StatusOr<int64_t> r1 = Put(a, "1");
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<int64_t> r2 = Put(b, std::string("\0\xff", 2));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_GT(*r2, *r1);
  ASSERT_TRUE(Put(prefix_ + "c", "").ok());  // an empty value
  ASSERT_TRUE(Put(prefix_.substr(0, prefix_.size() - 1) + "0", "x").ok());

  absl::StatusOr<RangeResult> one = Range(a);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].key, a);
  EXPECT_EQ(one->kvs[0].value, "1");
  EXPECT_EQ(one->kvs[0].create_revision, *r1);
  EXPECT_EQ(one->kvs[0].mod_revision, *r1);
  EXPECT_EQ(one->kvs[0].lease, 0);
  EXPECT_GE(one->revision, *r2);

  absl::StatusOr<RangeResult> all = Range(prefix_, PrefixEnd(prefix_));
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->kvs.size(), 3u);  // not the key just past the prefix
  EXPECT_EQ(all->kvs[0].key, a);
  EXPECT_EQ(all->kvs[1].key, b);
  EXPECT_EQ(all->kvs[1].value, std::string("\0\xff", 2));
  EXPECT_EQ(all->kvs[2].value, "");

  absl::StatusOr<RangeResult> none = Range(prefix_ + "zz");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->kvs.empty());

  absl::StatusOr<int64_t> deleted = Delete(a);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1);
  deleted = Delete(a);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0);
  deleted = Delete(prefix_, PrefixEnd(prefix_));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2);
  all = Range(prefix_, PrefixEnd(prefix_));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->kvs.empty());
}

TEST_F(EtcdClientTest, PutIfAbsentTwice) {
  const std::string key = prefix_ + "user/alice";
  absl::StatusOr<LeaseGrant> grant = Grant(30);
  ASSERT_TRUE(grant.ok()) << grant.status();
  absl::StatusOr<TxnResult> first = PutIfAbsent(key, "node1", grant->id);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->succeeded);
  EXPECT_FALSE(first->current_exists);
  absl::StatusOr<TxnResult> second = PutIfAbsent(key, "node2");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->succeeded);
  ASSERT_TRUE(second->current_exists);
  EXPECT_EQ(second->current.key, key);
  EXPECT_EQ(second->current.value, "node1");
  EXPECT_EQ(second->current.lease, grant->id);
  EXPECT_EQ(second->current.create_revision, first->revision);
  EXPECT_TRUE(Revoke(grant->id).ok());
}

TEST_F(EtcdClientTest, DeleteIfValue) {
  const std::string key = prefix_ + "user/bob";
  ASSERT_TRUE(Put(key, "node1").ok());
  absl::StatusOr<TxnResult> wrong = DeleteIfValue(key, "node2");
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_FALSE(wrong->succeeded);
  ASSERT_TRUE(wrong->current_exists);
  EXPECT_EQ(wrong->current.value, "node1");
  absl::StatusOr<TxnResult> right = DeleteIfValue(key, "node1");
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_TRUE(right->succeeded);
  absl::StatusOr<RangeResult> gone = Range(key);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_TRUE(gone->kvs.empty());
  // Absent: the comparison fails (etcd never matches a missing key's value).
  absl::StatusOr<TxnResult> again = DeleteIfValue(key, "node1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->succeeded);
  EXPECT_FALSE(again->current_exists);
}

TEST_F(EtcdClientTest, KeyUnderALeaseGoesWithIt) {
  const std::string key = prefix_ + "node/1";
  absl::StatusOr<LeaseGrant> grant = Grant(1);
  ASSERT_TRUE(grant.ok()) << grant.status();
  ASSERT_TRUE(Put(key, "up", grant->id).ok());
  absl::StatusOr<RangeResult> there = Range(key);
  ASSERT_TRUE(there.ok()) << there.status();
  ASSERT_EQ(there->kvs.size(), 1u);
  EXPECT_EQ(there->kvs[0].lease, grant->id);
  const absl::Time deadline =
      absl::Now() + absl::Seconds(grant->ttl_s) + absl::Seconds(5);
  bool gone = false;
  while (!gone && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    absl::StatusOr<RangeResult> now = Range(key);
    ASSERT_TRUE(now.ok()) << now.status();
    gone = now->kvs.empty();
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(KeepAlive(grant->id).status().code(), absl::StatusCode::kNotFound);
  // A put under the expired lease: etcd's NotFound.
  EXPECT_EQ(Put(key, "late", grant->id).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EtcdClientTest, FailsOverToTheNextEndpoint) {
  const int closed = FreePort();
  UseEndpoints({Loopback(closed), Loopback(server_->client_port())}, 2000);
  absl::StatusOr<int64_t> put = Put(prefix_ + "k", "v");
  ASSERT_TRUE(put.ok()) << put.status();
  // The next call starts on the endpoint that answered.
  absl::StatusOr<RangeResult> range = Range(prefix_ + "k");
  ASSERT_TRUE(range.ok()) << range.status();
  ASSERT_EQ(range->kvs.size(), 1u);
  // And when every endpoint is down, the error says why.
  UseEndpoints({Loopback(closed), Loopback(FreePort())}, 2000);
  absl::StatusOr<int64_t> down = Put(prefix_ + "k", "v");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable)
      << down.status();
}

TEST_F(EtcdClientTest, AnswerlessEndpointTimesOut) {
  // Connections complete (the kernel's backlog) but nobody ever answers.
  int port = 0;
  const int listener = BoundSocket(true, &port);
  UseEndpoints({Loopback(port)}, 300);
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> put = Put(prefix_ + "k", "v");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(put.status().code(), absl::StatusCode::kDeadlineExceeded)
      << put.status();
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(5));
  // With a second endpoint, the answerless one costs one timeout and the
  // call still succeeds; the one after goes straight to the answering one.
  UseEndpoints({Loopback(port), Loopback(server_->client_port())}, 300);
  ASSERT_TRUE(Put(prefix_ + "k", "v").ok());
  const absl::Time again = absl::Now();
  ASSERT_TRUE(Put(prefix_ + "k", "w").ok());
  EXPECT_LT(absl::Now() - again, absl::Milliseconds(290));
  close(listener);
}

}  // namespace
}  // namespace pimap::etcd
