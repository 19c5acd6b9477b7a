// SystemdNotifier (tools/pimapd/systemd_notify.h) against a datagram socket
// standing in for systemd's, and a real ShardSet: the watchdog's keep-alive
// goes out only while every shard runs its heartbeat.
#include "tools/pimapd/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"

namespace pimap {
namespace {

using engine::RingOptions;
using engine::Shard;
using engine::ShardSet;

class FakeSystemd {
 public:
  FakeSystemd() {
    path_ = "/tmp/pimap_notify_test_" + std::to_string(getpid()) + ".sock";
    unlink(path_.c_str());
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path_.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{0, 200000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~FakeSystemd() {
    close(fd_);
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // The next datagram, or "" after 200 ms.
  std::string Receive() {
    char buf[512];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, n) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(SystemdNotifierTest, WithoutNotifySocketEverythingIsANoOp) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "1000000", 1);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.beat_interval_ms(), 0);
  n.Notify("READY=1");  // nowhere to go, and no harm
}

TEST(SystemdNotifierTest, ReadsAndClearsTheEnvironment) {
  FakeSystemd systemd;
  setenv("NOTIFY_SOCKET", systemd.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "3000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_TRUE(n.enabled());
  EXPECT_EQ(n.beat_interval_ms(), 750);  // four beats per period
  // A child would not inherit them.
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
  n.Notify("READY=1\nSTATUS=up");
  EXPECT_EQ(systemd.Receive(), "READY=1\nSTATUS=up");
}

TEST(SystemdNotifierTest, AWatchdogForAnotherProcessIsNotOurs) {
  FakeSystemd systemd;
  setenv("NOTIFY_SOCKET", systemd.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "3000000", 1);
  setenv("WATCHDOG_PID", "1", 1);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_TRUE(n.enabled());
  EXPECT_EQ(n.beat_interval_ms(), 0);
}

TEST(SystemdNotifierTest, KeepAliveOnlyWhileEveryShardRunsItsHeartbeat) {
  FakeSystemd systemd;
  setenv("NOTIFY_SOCKET", systemd.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "200000", 1);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  ShardSet set(2, RingOptions{});
  ASSERT_TRUE(set.Start([](Shard&) { return absl::OkStatus(); }).ok());

  auto beat = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    n.Beat(set);
  };
  // Beats until a keep-alive goes out (the posted heartbeats have run).
  auto keep_alive_within_5s = [&] {
    for (int i = 0; i < 25; ++i) {
      beat();
      if (systemd.Receive() == "WATCHDOG=1") return true;
    }
    return false;
  };
  EXPECT_TRUE(keep_alive_within_5s());
  EXPECT_TRUE(keep_alive_within_5s());

  // Shard 1 is stuck in a task: every heartbeat posted to it waits behind it.
  std::atomic<bool> release{false};
  absl::Notification stuck;
  ASSERT_TRUE(set.shard(1).Post([&](Shard&) {
    stuck.Notify();
    while (!release.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }));
  ASSERT_TRUE(stuck.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // The round posted before the stall may still be vouched for, once.
  for (int i = 0; i < 2; ++i) {
    beat();
    systemd.Receive();
  }
  for (int i = 0; i < 4; ++i) {
    beat();
    EXPECT_EQ(systemd.Receive(), "") << "a keep-alive while shard 1 is stuck";
  }
  release = true;
  EXPECT_TRUE(keep_alive_within_5s());
  set.StopAndJoin(1000);
}

}  // namespace
}  // namespace pimap
