// End-to-end tests of the io_uring engine on loopback: cross-shard posts,
// accept into direct descriptors (with the peer's address), receive/send
// through the buffer ring, outbound connect, and the hand-over of a live
// connection to another shard.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/engine/handoff.h"
#include "core/engine/listener.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "core/engine/socket.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback.h"

namespace pimap::engine {
namespace {

using ::pimap::testing::ConnectTo;
using ::pimap::testing::FreePort;
using ::pimap::testing::ReadLine;




// Answers each received chunk with "<prefix><chunk>".
class Echo final : public TransportHandler {
 public:
  Echo(Transport* t, std::string prefix) : t_(t), prefix_(std::move(prefix)) {
    t_->SetHandler(this);
  }
  void OnTransportData(absl::string_view data) override {
    t_->Write(absl::StrCat(prefix_, data));
  }
  void OnTransportClosed(absl::Status) override { delete this; }

 private:
  Transport* t_;
  std::string prefix_;
};

TEST(ShardSetTest, PostRunsOnTheTargetShardThread) {
  ShardSet set(2, RingOptions{});
  ASSERT_TRUE(set.Start([](Shard&) { return absl::OkStatus(); }).ok());
  std::atomic<int> seen{-1};
  absl::Notification done;
  ASSERT_TRUE(set.shard(1).Post([&](Shard& shard) {
    seen = shard.id();
    done.Notify();
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(seen.load(), 1);
  set.StopAndJoin(1000);
}

TEST(ListenerTest, AcceptsReceivesAndSendsOnDirectDescriptors) {
  const uint16_t port = FreePort();
  ShardSet set(1, RingOptions{});
  ASSERT_TRUE(set.Start([port](Shard& shard) -> absl::Status {
                   auto listener = Listener::Start(&shard, "127.0.0.1", port, [&shard](int slot) {
                     new Echo(Socket::Adopt(&shard, slot), "echo:");
                   });
                   if (!listener.ok()) return listener.status();
                   shard.AddStopHook([l = *listener] { l->Stop(); });
                   return absl::OkStatus();
                 }).ok());
  int fd = ConnectTo(port);
  ASSERT_GE(fd, 0);
  const std::string message = "hello over io_uring\n";
  ASSERT_EQ(send(fd, message.data(), message.size(), 0), (ssize_t)message.size());
  EXPECT_EQ(ReadLine(fd), "echo:" + message);
  close(fd);
  set.StopAndJoin(1000);
}

// Issue 14: every accepted connection comes with the client's address (for
// logs, login throttling and the store's x-originating-ip) and the listener's.
TEST(ListenerTest, AcceptReportsThePeerAndLocalAddress) {
  const uint16_t port = FreePort();
  ShardSet set(1, RingOptions{});
  ASSERT_TRUE(set.Start([port](Shard& shard) -> absl::Status {
                   auto listener = Listener::Start(
                       &shard, "127.0.0.1", port,
                       [&shard](int slot, const ClientAddress& address) {
                         Socket* socket = Socket::Adopt(&shard, slot);
                         socket->Write(absl::StrCat(address.peer.ToString(), " ",
                                                    address.local.ToString(),
                                                    "\n"));
                         new Echo(socket, "");
                       });
                   if (!listener.ok()) return listener.status();
                   shard.AddStopHook([l = *listener] { l->Stop(); });
                   return absl::OkStatus();
                 }).ok());
  // Two clients from other loopback addresses: each gets its own address back
  // (one accept buffer per accept, never the previous client's).
  for (const char* from : {"127.0.0.2", "127.0.0.3"}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in source{};
    source.sin_family = AF_INET;
    inet_pton(AF_INET, from, &source.sin_addr);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)), 0);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)),
              0);
    socklen_t len = sizeof(source);
    getsockname(fd, reinterpret_cast<sockaddr*>(&source), &len);
    EXPECT_EQ(ReadLine(fd), absl::StrCat(from, ":", ntohs(source.sin_port),
                                         " 127.0.0.1:", port, "\n"));
    close(fd);
  }
  set.StopAndJoin(1000);
}

// Far more connections receive at once than there are provided buffers: a recv
// that finds none (ENOBUFS) retries, and every byte still arrives in order.
TEST(ListenerTest, MoreReceiversThanBuffersLoseNothing) {
  const uint16_t port = FreePort();
  RingOptions options;
  options.buffer_count = 2;
  options.buffer_size = 64;
  ShardSet set(1, options);
  ASSERT_TRUE(set.Start([port](Shard& shard) -> absl::Status {
                   auto listener = Listener::Start(&shard, "127.0.0.1", port, [&shard](int slot) {
                     new Echo(Socket::Adopt(&shard, slot), "");
                   });
                   if (!listener.ok()) return listener.status();
                   shard.AddStopHook([l = *listener] { l->Stop(); });
                   return absl::OkStatus();
                 }).ok());
  constexpr int kClients = 32;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(ConnectTo(port));
    ASSERT_GE(fds.back(), 0);
  }
  // Each message spans several 64-byte buffers.
  std::vector<std::string> messages;
  for (int i = 0; i < kClients; ++i) {
    messages.push_back(absl::StrCat("client ", i, " ", std::string(300, 'a' + i % 26), "\n"));
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(send(fds[i], messages[i].data(), messages[i].size(), 0),
              static_cast<ssize_t>(messages[i].size()));
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(ReadLine(fds[i]), messages[i]) << "client " << i;
    close(fds[i]);
  }
  set.StopAndJoin(1000);
}

TEST(SocketTest, ConnectsOutAndWrites) {
  const uint16_t port = FreePort();
  int server = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(server, 4), 0);

  ShardSet set(1, RingOptions{});
  ASSERT_TRUE(set.Start([](Shard&) { return absl::OkStatus(); }).ok());
  auto target = ResolveAddress("127.0.0.1", port);
  ASSERT_TRUE(target.ok());
  ASSERT_TRUE(set.shard(0).Post([&](Shard& shard) {
    Socket::Connect(&shard, target->first, target->second,
                    [](absl::StatusOr<Socket*> s) {
                      ASSERT_TRUE(s.ok()) << s.status();
                      (*s)->Write(absl::string_view("from the shard\n"));
                      (*s)->Close();  // flushes first
                    });
  }));
  int peer = accept(server, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  timeval tv{5, 0};
  setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(ReadLine(peer), "from the shard\n");
  char c;
  EXPECT_EQ(recv(peer, &c, 1, 0), 0);  // orderly close after the flush
  close(peer);
  close(server);
  set.StopAndJoin(1000);
}

TEST(SocketTest, ConnectFailureIsReported) {
  ShardSet set(1, RingOptions{});
  ASSERT_TRUE(set.Start([](Shard&) { return absl::OkStatus(); }).ok());
  auto target = ResolveAddress("127.0.0.1", FreePort());  // nobody listens
  ASSERT_TRUE(target.ok());
  absl::Notification done;
  absl::Status result;
  ASSERT_TRUE(set.shard(0).Post([&](Shard& shard) {
    Socket::Connect(&shard, target->first, target->second,
                    [&](absl::StatusOr<Socket*> s) {
                      result = s.status();
                      done.Notify();
                    });
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_FALSE(result.ok());
  set.StopAndJoin(1000);
}

// Moves an accepted connection to shard 1 and echoes from there.
class MoveToShardOne final : public Handoff {
 public:
  explicit MoveToShardOne(std::string carried) : carried_(std::move(carried)) {}
  void Arrive(Shard& shard, int slot) override {
    std::unique_ptr<MoveToShardOne> self(this);
    ASSERT_GE(slot, 0);
    Socket* socket = Socket::Adopt(&shard, slot);
    socket->Write(absl::StrCat("arrived on shard ", shard.id(), " with ", carried_));
    new Echo(socket, absl::StrCat("shard", shard.id(), ":"));
  }
  void Failed(Shard& source, int slot, int error) override {
    std::unique_ptr<MoveToShardOne> self(this);
    ADD_FAILURE() << "hand-over failed: " << error;
    Socket::Adopt(&source, slot)->Abort();
  }

 private:
  std::string carried_;
};

// Reads the first chunk on shard 0, then detaches and hands the descriptor over.
class FirstChunkThenMove final : public TransportHandler {
 public:
  FirstChunkThenMove(Shard* shard, Socket* socket) : shard_(shard), socket_(socket) {
    socket_->SetHandler(this);
  }
  void OnTransportData(absl::string_view data) override {
    carried_.append(data.data(), data.size());
    if (moving_) return;
    moving_ = true;
    socket_->Detach([this](int slot) {
      shard_->HandOver(slot, 1, std::make_unique<MoveToShardOne>(carried_));
      delete this;
    });
  }
  void OnTransportClosed(absl::Status) override { delete this; }

 private:
  Shard* shard_;
  Socket* socket_;
  std::string carried_;
  bool moving_ = false;
};

TEST(HandOverTest, ConnectionMovesToAnotherShardWithItsBytes) {
  const uint16_t port = FreePort();
  ShardSet set(2, RingOptions{});
  ASSERT_TRUE(set.Start([port](Shard& shard) -> absl::Status {
                   if (shard.id() != 0) return absl::OkStatus();
                   auto listener = Listener::Start(&shard, "127.0.0.1", port, [&shard](int slot) {
                     new FirstChunkThenMove(&shard, Socket::Adopt(&shard, slot));
                   });
                   if (!listener.ok()) return listener.status();
                   shard.AddStopHook([l = *listener] { l->Stop(); });
                   return absl::OkStatus();
                 }).ok());
  int fd = ConnectTo(port);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "login\n", 6, 0), 6);
  EXPECT_EQ(ReadLine(fd), "arrived on shard 1 with login\n");
  ASSERT_EQ(send(fd, "next\n", 5, 0), 5);
  EXPECT_EQ(ReadLine(fd), "shard1:next\n");
  close(fd);
  usleep(50000);
  EXPECT_EQ(set.shard(0).counters().handovers_out.load(), 1u);
  EXPECT_EQ(set.shard(1).counters().handovers_in.load(), 1u);
  set.StopAndJoin(1000);
}

}  // namespace
}  // namespace pimap::engine
