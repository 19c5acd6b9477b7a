// The device connection's way in (imap_connection.h): STARTTLS, LOGIN and
// AUTHENTICATE PLAIN, the hand-over to the shard that owns the user, the store
// login (or the auth cache for a returning P-IMAP device), and the hand-off of
// the logged-in device to its session driver (relay or P-IMAP engine).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bindings/tcp/imap_connection.h"
#include "bindings/tcp/imap_handoff.h"
#include "bindings/tcp/imap_server.h"
#include "bindings/tls/detach.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/shard_for_user.h"
#include "core/convert/transcoder.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/http/content_coding.h"
#include "core/imap/writer.h"
#include "core/session/login_throttle.h"
#include "core/session/terse.h"

namespace pimap::tcp {

void ImapConnection::DoStartTls(const std::string& tag) {
  std::string out;
  if (server_->config().tls == nullptr || tls_active_) {
    imap::AppendTaggedStatus(
        &out, tag, "BAD", "",
        tls_active_ ? "TLS is already active" : "STARTTLS is not configured");
    WriteLocal(std::move(out));
    return;
  }
  imap::AppendTaggedStatus(&out, tag, "OK", "",
                           pre_login_ != nullptr && pre_login_->Terse()
                               ? ""
                               : "Begin TLS negotiation now");
  WriteLocal(std::move(out));
  starttls_reset_ = true;  // ProcessInput drops the rest of the clear input
  SSL* ssl = server_->tls()->NewServerSsl();
  if (ssl == nullptr) {
    Shutdown("TLS unavailable");
    return;
  }
  // The plaintext OK is already queued on the socket ahead of any TLS record.
  transport_ = new tls::TlsTransport(transport_, ssl);
  transport_->SetHandler(this);
  tls_active_ = true;
}

session::PreAuthPolicy ImapConnection::PreAuth() const {
  return {server_->config().tls != nullptr && !tls_active_,
          tls_active_ || server_->config().allow_plaintext_auth,
          /*xzip=*/true, &server_->config().user_name_format};
}

bool ImapConnection::HandleSaslResponse(absl::string_view line) {
  state_ = State::kNotAuthenticated;
  const std::string sasl_tag = pre_login_->sasl_tag;  // a login releases it
  return TakePreAuthStep(
      session::DecodeSaslResponse(sasl_tag, line, PreAuth()), sasl_tag);
}

// ---- Login and hand-over ----------------------------------------------------

void ImapConnection::StartLogin(PendingLogin login) {
  engine::Shard& shard = server_->shard();
  const int owner = static_cast<int>(
      ShardForUser(login.name.user, static_cast<uint32_t>(shard.count())));
  if (owner != shard.id()) {
    HandOver(owner, std::move(login));
    return;
  }
  StartStoreLogin(std::move(login));
}

namespace {
// A peer that does not read could keep the last send in flight for ever and
// pin the connection between shards: the hand-over gets the linger time.
constexpr int64_t kHandoverTimeoutMs = 5000;
}  // namespace

void ImapConnection::HandOver(int owner, PendingLogin login) {
  // Freeze: nothing more is read or parsed here; what was read but not parsed
  // travels along. The framer is at a command boundary (LOGIN just ended).
  blocked_ |= kBlockHandover;
  state_ = State::kLoggingIn;
  auto payload = std::make_shared<PendingLogin>(std::move(login));
  ImapServer* server = server_;
  // Until the socket is detached its handler (TLS, or us) may still receive
  // bytes from a receive in flight; they are kept (TLS keeps ciphertext in its
  // SSL, we keep plaintext in pending_input_) and travel too.
  handover_timer_ = tls::DetachForHandOver(
      socket_, transport_, server_->shard().timers(), kHandoverTimeoutMs,
      [this, payload, server, owner](int slot, SSL* ssl) {
        handover_timer_ = 0;
        PIMAP_LOG(DEBUG)
                .Conn(client_)
                .User(payload->name.user)
                .Event("conn.handover")
                .Field("to", absl::StrCat(owner))
            << "handed over to the user's shard";
        auto handoff = MakeImapHandoff(ssl, std::move(pending_input_),
                                       std::move(*payload), login_deadline_ms_);
        engine::Shard& shard = server->shard();
        socket_ = nullptr;
        transport_ = nullptr;
        Destroy();
        shard.HandOver(slot, owner, std::move(handoff));
      },
      [this] {
        handover_timer_ = 0;
        Busy busy(this);
        PIMAP_LOG(INFO).Conn(client_).Event("conn.handover.fail")
            << "hand-over did not complete (peer not reading); closing";
        transport_ = nullptr;
        socket_ = nullptr;
        state_ = State::kClosing;
        Destroy();
      });
}

void ImapConnection::StartStoreLogin(PendingLogin login) {
  terse_ = login.terse;  // it may have come from another shard
  state_ = State::kLoggingIn;
  blocked_ |= kBlockLogin;
  transport_->SetReading(false);
  session::LoginServices services{
      Services(),
      &server_->connector(),
      server_->auth_cache(),
      server_->config().limits,
      server_->config().park,
      server_->shard().services().Find<session::LoginThrottle>()};
  session::StartSessionLogin(services, this, std::move(login), alive_, this);
}

bool ImapConnection::OnAuthenticated(const std::string& user,
                                     const std::string& device,
                                     absl::string_view how) {
  Busy busy(this);
  if (state_ == State::kClosing) return false;
  state_ = State::kAuthenticated;
  LeavePreAuth();  // its descriptor is a session's now
  if (pre_login_ != nullptr) {  // commands are the session driver's from now on
    pre_login_->Release();
    pre_login_ = nullptr;
  }
  user_ = user;
  device_ = device;
  server_->UserLoggedIn(user_);
  ArmActivityTimer(AuthenticatedTimerDelay(0));
  return true;
}

void ImapConnection::OnLoginFailed(std::string response) {
  Busy busy(this);
  if (state_ == State::kClosing) return;
  state_ = State::kNotAuthenticated;
  WriteLocal(terse_ ? session::TerseResponses(response) : std::move(response));
  SetBlocked(kBlockLogin, false);
  CheckLoginDeadline();
}

session::DriverServices ImapConnection::Services() {
  return {&server_->sessions(),
          &server_->shard().counters(),
          &server_->shard().timers(),
          server_->pool(),
          server_->config().store_timeout_ms,
          server_->shard().services().Find<http::ShardCompressor>(),
          server_->config().max_output_bytes,
          server_->shard().services().Find<convert::Transcoder>()};
}

}  // namespace pimap::tcp
