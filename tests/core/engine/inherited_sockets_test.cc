// LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES parsing and the inherited pool.
#include "core/engine/inherited_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace pimap::engine {
namespace {

TEST(ParseListenFdsTest, UnsetIsNothing) {
  auto parsed = ParseListenFds(nullptr, nullptr, nullptr, 42);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->empty());
}

TEST(ParseListenFdsTest, ForUsWithNames) {
  auto parsed = ParseListenFds("3", "42", "tcp@a_1:tcp@b_2:unix@/x", 42);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].fd, 3);
  EXPECT_EQ((*parsed)[0].name, "tcp@a_1");
  EXPECT_EQ((*parsed)[2].fd, 5);
  EXPECT_EQ((*parsed)[2].name, "unix@/x");
}

TEST(ParseListenFdsTest, NamesMayBeMissing) {
  auto parsed = ParseListenFds("2", "42", nullptr, 42);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].fd, 4);
  EXPECT_EQ((*parsed)[1].name, "");
  parsed = ParseListenFds("2", "42", "one", 42);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)[0].name, "one");
  EXPECT_EQ((*parsed)[1].name, "");
}

TEST(ParseListenFdsTest, AnotherPidIsIgnored) {
  auto parsed = ParseListenFds("2", "41", "a:b", 42);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->empty());
  parsed = ParseListenFds("2", nullptr, "a:b", 42);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->empty());
  parsed = ParseListenFds("2", "x42", "a:b", 42);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->empty());
}

TEST(ParseListenFdsTest, BadValuesAreErrors) {
  EXPECT_FALSE(ParseListenFds("", "42", nullptr, 42).ok());
  EXPECT_FALSE(ParseListenFds("two", "42", nullptr, 42).ok());
  EXPECT_FALSE(ParseListenFds("-1", "42", nullptr, 42).ok());
  EXPECT_FALSE(ParseListenFds("100000", "42", nullptr, 42).ok());
  EXPECT_FALSE(ParseListenFds("1", "42", "a:b", 42).ok());  // more names
  auto zero = ParseListenFds("0", "42", nullptr, 42);
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->empty());
}

TEST(InheritedPoolTest, TakesTheSocketOfItsAddressOnce) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  const uint16_t port = ntohs(address.sin_port);
  AdoptInheritedSockets({{fd, "tcp@test"}});
  EXPECT_TRUE(HasInheritedSocket("127.0.0.1", port));
  EXPECT_FALSE(HasInheritedSocket("127.0.0.1", port == 1 ? 2 : port - 1));
  sockaddr_in other = address;
  other.sin_port = htons(port == 1 ? 2 : port - 1);
  EXPECT_EQ(
      TakeInheritedSocket(reinterpret_cast<sockaddr*>(&other), sizeof(other)),
      -1);
  EXPECT_EQ(TakeInheritedSocket(reinterpret_cast<sockaddr*>(&address),
                                sizeof(address)),
            fd);
  EXPECT_EQ(TakeInheritedSocket(reinterpret_cast<sockaddr*>(&address),
                                sizeof(address)),
            -1);
  // More shards than sockets: a copy of the one taken.
  const int copy =
      DupTakenSocket(reinterpret_cast<sockaddr*>(&address), sizeof(address));
  EXPECT_GE(copy, 0);
  EXPECT_NE(copy, fd);
  close(copy);
  EXPECT_EQ(DupTakenSocket(reinterpret_cast<sockaddr*>(&other), sizeof(other)),
            -1);
  EXPECT_EQ(CloseUnclaimedInheritedSockets(), 0);
  EXPECT_EQ(
      DupTakenSocket(reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      -1);  // start-up is over
  close(fd);
}

TEST(InheritedPoolTest, UnclaimedAreClosed) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  AdoptInheritedSockets({{fd, ""}});
  EXPECT_EQ(CloseUnclaimedInheritedSockets(), 1);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // closed
}

TEST(ListeningRegistryTest, RegistersAndUnregisters) {
  RegisterListeningSocket(1000, "a");
  RegisterListeningSocket(1001, "b");
  UnregisterListeningSocket(1000);
  auto listening = ListeningSockets();
  ASSERT_EQ(listening.size(), 1u);
  EXPECT_EQ(listening[0].fd, 1001);
  EXPECT_EQ(listening[0].name, "b");
  UnregisterListeningSocket(1001);
  EXPECT_TRUE(ListeningSockets().empty());
}

}  // namespace
}  // namespace pimap::engine
