// Blocking loopback helpers for tests that talk to an engine from the test
// thread: a free port, a connect with retries (the listener may still be
// starting), a line read, a whole exchange with a server that closes.
// Header-only: tests only.
#ifndef PIMAP_TESTS_TESTING_LOOPBACK_H_
#define PIMAP_TESTS_TESTING_LOOPBACK_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace pimap::testing {

// A loopback port that was free a moment ago (bound, read back, released).
inline uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A connected socket with a 5 s receive timeout, or -1 after ~1 s of refusals.
inline int ConnectTo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (int i = 0; i < 100; ++i) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    usleep(10000);
  }
  close(fd);
  return -1;
}

// Bytes up to and including the next '\n' (or what came before EOF/timeout).
inline std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (recv(fd, &c, 1, 0) == 1) {
    line += c;
    if (c == '\n') break;
  }
  return line;
}

// Everything until the server closes (or the 5 s receive timeout).
inline std::string ReadToClose(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

// Connects, sends `request` and reads until the server closes the connection.
inline std::string Exchange(uint16_t port, const std::string& request) {
  int fd = ConnectTo(port);
  if (fd < 0) return "connect failed";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply = ReadToClose(fd);
  close(fd);
  return reply;
}

}  // namespace pimap::testing

#endif  // PIMAP_TESTS_TESTING_LOOPBACK_H_
