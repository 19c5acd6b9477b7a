// vapid-keygen FILE: makes the P-256 key pimapd signs VAPID tokens with
// (--vapid-key FILE, RFC 8292), writes it to FILE as PEM (mode 0600, never
// over an existing file) and prints the public key in the base64url form a
// browser's PushManager.subscribe() wants as applicationServerKey.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "bindings/webpush/vapid.h"

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::cerr << "usage: vapid-keygen FILE\n"
                 "Writes a new P-256 private key to FILE (PEM, mode 0600) for "
                 "pimapd --vapid-key\nand prints its public key (base64url, "
                 "the browsers' applicationServerKey).\n";
    return 2;
  }
  absl::StatusOr<pimap::webpush::VapidKeyPair> pair =
      pimap::webpush::GenerateVapidKey();
  if (!pair.ok()) {
    std::cerr << "vapid-keygen: " << pair.status().message() << "\n";
    return 1;
  }
  const int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::cerr << "vapid-keygen: " << argv[1] << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  const std::string& pem = pair->private_pem;
  const bool written =
      write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  if (close(fd) != 0 || !written) {
    std::cerr << "vapid-keygen: cannot write " << argv[1] << "\n";
    unlink(argv[1]);
    return 1;
  }
  std::cout << pair->public_key << "\n";
  return 0;
}
