// A device connection's hand-over payload (imap_handoff.h).
#include "bindings/tcp/imap_handoff.h"

#include <utility>

#include "bindings/tcp/imap_server.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::tcp {

namespace {

class ImapHandoff final : public engine::Handoff {
 public:
  ImapHandoff(SSL* ssl, std::string input, PendingLogin login,
              int64_t login_deadline_ms)
      : ssl_(ssl),
        input_(std::move(input)),
        login_(std::move(login)),
        login_deadline_ms_(login_deadline_ms) {}
  ~ImapHandoff() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  void Arrive(engine::Shard& shard, int slot) override {
    std::unique_ptr<ImapHandoff> self(this);
    ImapServer* server = shard.services().Find<ImapServer>();
    if (slot < 0 || server == nullptr) {
      PIMAP_LOG(WARNING).Conn(login_.client)
          << "hand-over arrived without a descriptor";
      return;
    }
    SSL* ssl = ssl_;
    ssl_ = nullptr;
    ImapConnection::Arrive(server, slot, ssl, std::move(input_),
                           std::move(login_), login_deadline_ms_);
  }
  void Failed(engine::Shard& source, int slot, int error) override {
    std::unique_ptr<ImapHandoff> self(this);
    PIMAP_LOG(WARNING).Conn(login_.client)
        << "hand-over to the owner shard failed: errno " << error;
    engine::Socket::Adopt(&source, slot)->Abort();
  }

 private:
  SSL* ssl_;
  std::string input_;
  PendingLogin login_;
  int64_t login_deadline_ms_;
};

}  // namespace

std::unique_ptr<engine::Handoff> MakeImapHandoff(SSL* ssl, std::string input,
                                                 PendingLogin login,
                                                 int64_t login_deadline_ms) {
  return std::make_unique<ImapHandoff>(ssl, std::move(input), std::move(login),
                                       login_deadline_ms);
}

}  // namespace pimap::tcp
