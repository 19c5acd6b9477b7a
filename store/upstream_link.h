// One connection from the gateway to the message store, as an IMAP client:
// connect, TLS (implicit, or STARTTLS with no way back to clear text),
// greeting, ID with the device's address (x-originating-ip, for a
// store that trusts the gateway: Dovecot's login_trusted_networks) sent ahead
// of the login (SASL PLAIN with SASL-IR where the store offers it, else
// LOGIN), capabilities, and the device's own ID fields after the login (its
// own link only); then it relays: command bytes go up verbatim, responses come
// back framed (lines and streamed literals) so the device side only ever writes
// at response boundaries.
#ifndef PIMAP_STORE_UPSTREAM_LINK_H_
#define PIMAP_STORE_UPSTREAM_LINK_H_

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/imap/framer.h"
#include "core/imap/response.h"
#include "core/session/store_link.h"
#include "core/session/store_namespaces.h"

namespace pimap::engine {
class Shard;
}
namespace pimap::tls {
class TlsContext;
}

namespace pimap::store {

// How the store link is protected (--store-tls).
enum class StoreTls { kNone, kStartTls, kImplicit };

struct UpstreamConfig {
  std::string host;  // for logs
  uint16_t port = 0;
  sockaddr_storage address{};  // resolved once at start-up, never on the data path
  socklen_t address_len = 0;
  int64_t timeout_ms = 15000;  // connect + greeting + login
  imap::ParserLimits limits;
  StoreTls tls = StoreTls::kNone;
  // Set unless kNone: the trusted CAs (the store's certificate is always
  // verified), and the name it must be valid for.
  std::shared_ptr<const tls::TlsContext> tls_context;
  std::string tls_name;
  // Dovecot's auth_master_user_separator: a master-user login to a store
  // without AUTH=PLAIN is LOGIN "user<separator>master" password.
  std::string master_separator = "*";
  // The shard's knowledge of the store's namespaces (one per shard, so set on
  // the shard's own copy of this config): a link that logs in while it is
  // wanted asks NAMESPACE once before it is handed over. Null: never asked.
  session::StoreNamespaces* namespaces = nullptr;
};

class UpstreamLink final : public session::StoreLink,
                           private engine::TransportHandler,
                           private imap::Framer::Visitor {
 public:
  // Connects and logs in; `done` runs exactly once on the shard thread.
  static void Open(engine::Shard* shard, const UpstreamConfig& config,
                   session::StoreCredentials credentials,
                   session::StoreConnector::LoginCallback done);

  void SetClient(session::StoreLinkClient* client) override;
  void Send(absl::string_view bytes) override;
  size_t PendingOutput() const override;
  void SetReading(bool on) override;
  const std::vector<std::string>& capabilities() const override {
    static const std::vector<std::string> kNone;
    return shared_capabilities_ ? *shared_capabilities_ : kNone;
  }
  void Close() override;

 private:
  enum class State {
    kConnecting,
    kGreeting,
    kStartTls,       // STARTTLS sent, awaiting its answer
    kTlsCapability,  // TLS is up: the capabilities again (RFC 3501 6.2.1)
    kLogin,
    kCapability,
    kNamespace,  // NAMESPACE for the shard (StoreNamespaces), awaiting it
    kClientId,   // the device's ID after the login, awaiting its answer
    kRelay,
    kDead
  };

  UpstreamLink(engine::Shard* shard, const UpstreamConfig& config,
               session::StoreCredentials credentials,
               session::StoreConnector::LoginCallback done);
  ~UpstreamLink() override;

  void OnConnected(engine::Transport* transport);
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;
  bool OnLine(absl::string_view line, const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view chunk) override;
  bool OnEnd() override;
  bool OnError(const imap::FrameError& error) override;

  void OnSetupResponse(const imap::Response& response);
  // Puts TLS over the current transport; false (after FinishSetup) if it
  // cannot.
  bool StartTls();
  void SendLogin();
  // After the login (and CAPABILITY): NAMESPACE when the shard wants it,
  // then the device's ID, or the end of set-up.
  void LoggedIn();
  void SendClientId();
  void FinishSetup(absl::Status status);
  void Feed();
  // Frees this now, or once the framer callbacks on the stack have unwound (the
  // framer is a member: freeing from inside one of its callbacks would pull the
  // floor from under it).
  void Release();

  engine::Shard* shard_;
  UpstreamConfig config_;
  session::StoreCredentials credentials_;
  session::StoreConnector::LoginCallback done_;
  session::StoreLinkClient* client_ = nullptr;
  engine::Transport* transport_ = nullptr;
  State state_ = State::kConnecting;
  imap::Framer framer_;
  imap::ResponseAssembler assembler_;  // set-up phase only
  std::string pending_input_;          // bytes read but not yet framed (paused)
  bool reading_ = true;
  bool in_response_ = false;
  // STARTTLS was accepted: clear-text bytes that came after the OK are not
  // the store's (RFC 3501 6.2.1: an injection attack) and are dropped.
  bool drop_clear_input_ = false;
  std::string current_tag_;            // tag of the response being relayed
  std::vector<std::string> capabilities_;  // during set-up only
  // After login: every link of a shard to the same store shares one list (a
  // store's capability list is ~1 KiB and identical for all its sessions).
  std::shared_ptr<const std::vector<std::string>> shared_capabilities_;
  TimerWheel::TimerId timeout_timer_ = 0;
  std::shared_ptr<bool> alive_;        // guards the connect callback
  int busy_ = 0;
  bool release_pending_ = false;
};

}  // namespace pimap::store

#endif  // PIMAP_STORE_UPSTREAM_LINK_H_
