// The device connection's way in (imap_connection.h): STARTTLS, LOGIN and
// AUTHENTICATE PLAIN, the hand-over to the shard that owns the user, the store
// login (or the auth cache for a returning P-IMAP device), and the hand-off of
// the logged-in device to its session driver (relay or P-IMAP engine).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bindings/tcp/imap_connection.h"
#include "bindings/tcp/imap_handoff.h"
#include "bindings/tcp/imap_server.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/shard_for_user.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/imap/sasl.h"
#include "core/imap/writer.h"
#include "core/session/pimap_session_driver.h"
#include "core/session/relay_driver.h"

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
  imap::AppendTaggedStatus(&out, tag, "OK", "", "Begin TLS negotiation now");
  WriteLocal(std::move(out));
  starttls_reset_ = true;  // ProcessInput drops the rest of the clear input
  SSL* ssl = server_->config().tls->NewServerSsl();
  if (ssl == nullptr) {
    Shutdown("TLS unavailable");
    return;
  }
  // The plaintext OK is already queued on the socket ahead of any TLS record.
  transport_ = new tls::TlsTransport(transport_, ssl);
  transport_->SetHandler(this);
  tls_active_ = true;
}

void ImapConnection::DoAuthenticate(const imap::Command& command) {
  const std::string& tag = command.tag;
  if (command.args.empty() || command.args.size() > 2 ||
      command.args[0].type != imap::Arg::Type::kAtom) {
    WriteBad(tag, "AUTHENTICATE expects a mechanism name");
    return;
  }
  if (!absl::EqualsIgnoreCase(command.args[0].value, "PLAIN")) {
    std::string out;
    imap::AppendTaggedStatus(&out, tag, "NO", "CANNOT",
                             "Unsupported authentication mechanism");
    WriteLocal(std::move(out));
    return;
  }
  pre_login_->sasl_tag = tag;      // we run inside its Execute
  if (command.args.size() == 2) {  // SASL-IR (RFC 4959)
    HandleSaslResponse(command.args[1].value);
    return;
  }
  state_ = State::kSaslResponse;
  WriteLocal("+ \r\n");
}

bool ImapConnection::HandleSaslResponse(absl::string_view line) {
  state_ = State::kNotAuthenticated;
  const std::string sasl_tag = pre_login_->sasl_tag;  // a login releases it
  std::string out;
  if (line == "*") {
    imap::AppendTaggedStatus(&out, sasl_tag, "BAD", "",
                             "Authentication cancelled");
    WriteLocal(std::move(out));
    return false;
  }
  absl::StatusOr<imap::SaslPlain> plain = imap::DecodeSaslPlain(line);
  if (!plain.ok()) {
    WriteBad(sasl_tag, plain.status().message());
    return false;
  }
  // Devices authenticate as themselves; acting for another user is the store's
  // master-user business, not a device's.
  if (!plain->authzid.empty() && plain->authzid != plain->authcid) {
    server_->shard().counters().auth_failures.fetch_add(
        1, std::memory_order_relaxed);
    imap::AppendTaggedStatus(&out, sasl_tag, "NO", "AUTHORIZATIONFAILED",
                             "Authorization identity must match the user");
    WriteLocal(std::move(out));
    return false;
  }
  absl::StatusOr<imap::LoginName> name = imap::ParseLoginName(plain->authcid);
  if (!name.ok()) {
    imap::AppendTaggedStatus(&out, sasl_tag, "NO", "AUTHENTICATIONFAILED",
                             name.status().message());
    WriteLocal(std::move(out));
    return false;
  }
  StartLogin({sasl_tag, std::move(*name), std::move(plain->password)});
  return true;
}

// ---- Login and hand-over ----------------------------------------------------

void ImapConnection::StartLogin(PendingLogin login) {
  if (!tls_active_ && !server_->config().allow_plaintext_auth) {
    std::string out;
    imap::AppendTaggedStatus(
        &out, login.tag, "NO", "PRIVACYREQUIRED",
        "Plaintext authentication disallowed: use STARTTLS");
    WriteLocal(std::move(out));
    return;
  }
  engine::Shard& shard = server_->shard();
  const int owner = static_cast<int>(
      ShardForUser(login.name.user, static_cast<uint32_t>(shard.count())));
  if (owner != shard.id()) {
    HandOver(owner, std::move(login));
    return;
  }
  StartStoreLogin(std::move(login));
}

void ImapConnection::HandOver(int owner, PendingLogin login) {
  // Freeze: nothing more is read or parsed here; what was read but not parsed
  // travels along. The framer is at a command boundary (LOGIN just ended).
  blocked_ |= kBlockHandover;
  state_ = State::kLoggingIn;
  transport_->SetReading(false);
  auto payload = std::make_shared<PendingLogin>(std::move(login));
  const bool tls = transport_->is_tls();
  engine::Transport* transport = transport_;
  ImapServer* server = server_;
  // Until the socket is detached its handler (TLS, or us) may still receive
  // bytes from a receive in flight; they are kept (TLS keeps ciphertext in its
  // SSL, we keep plaintext in pending_input_) and travel too.
  // A peer that does not read could keep the last send in flight for ever and
  // pin the connection between shards: give the hand-over the linger time.
  handover_timer_ = server_->shard().timers().Schedule(5000, [this] {
    handover_timer_ = 0;
    Busy busy(this);
    PIMAP_LOG(INFO) << "hand-over did not complete (peer not reading); closing";
    if (transport_ != nullptr) transport_->Abort();
    transport_ = nullptr;
    socket_ = nullptr;
    state_ = State::kClosing;
    Destroy();
  });
  socket_->Detach([this, payload, tls, transport, server, owner](int slot) {
    if (handover_timer_ != 0) server->shard().timers().Cancel(handover_timer_);
    handover_timer_ = 0;
    SSL* ssl = nullptr;
    if (tls) ssl = static_cast<tls::TlsTransport*>(transport)->ReleaseSsl();
    auto handoff =
        MakeImapHandoff(ssl, std::move(pending_input_), std::move(*payload));
    engine::Shard& shard = server->shard();
    socket_ = nullptr;
    transport_ = nullptr;
    Destroy();
    shard.HandOver(slot, owner, std::move(handoff));
  });
}

void ImapConnection::StartStoreLogin(PendingLogin login) {
  state_ = State::kLoggingIn;
  blocked_ |= kBlockLogin;
  transport_->SetReading(false);
  std::weak_ptr<bool> alive = alive_;
  std::string tag = login.tag;
  std::string user = login.name.user;
  std::string device = login.name.device;
  // The password stays in memory past the login only for a session that logs
  // in again later: a P-IMAP session whose store watch must log in as the
  // user, or a stock client that may park (both when no master user is
  // configured; LinkCredentials).
  std::string password =
      device.empty() && server_->config().park.park_after_ms <= 0
          ? ""
          : login.password;
  session::AuthCache* cache = server_->auth_cache();
  if (!device.empty() && cache != nullptr && cache->enabled()) {
    // A returning device whose password matches the last one the store
    // accepted needs no store login: its session borrows a pooled link when a
    // command needs one. A different password goes to the store (it may have
    // changed there).
    if (cache->Check(user, password, MonotonicNowMs()) ==
        session::AuthCache::Verdict::kMatch) {
      CounterAdd(server_->shard().counters().auth_cache_hits);
      LoggedIn(user, device, " (auth cache)");
      StartPimap(tag, user, device, password, nullptr);
      return;
    }
    CounterAdd(server_->shard().counters().auth_cache_misses);
  }
  server_->connector().Login(
      {login.name.user, std::move(login.password), ""},
      [this, alive, tag, user, device, password = std::move(password)](
          absl::StatusOr<session::StoreLink*> link) {
        if (alive.expired()) {
          if (link.ok()) (*link)->Close();
          return;
        }
        OnStoreLogin(tag, user, device, password, std::move(link));
      });
}

void ImapConnection::OnStoreLogin(const std::string& tag,
                                  const std::string& user,
                                  const std::string& device,
                                  const std::string& password,
                                  absl::StatusOr<session::StoreLink*> link) {
  Busy busy(this);
  ShardCounters& counters = server_->shard().counters();
  if (state_ == State::kClosing) {
    if (link.ok()) (*link)->Close();
    return;
  }
  if (link.ok()) {
    LoggedIn(user, device, "");
    if (!device.empty()) {
      // The session engine owns the link and answers the login once the
      // session is ready (LoginDone).
      if (session::AuthCache* cache = server_->auth_cache(); cache != nullptr) {
        cache->Remember(user, password, MonotonicNowMs());
      }
      StartPimap(tag, user, device, password, *link);
      return;
    }
    // A regular session: the relay answers the login (LoginDone).
    const session::SessionConfig& sc = server_->sessions().config();
    session::StoreCredentials credentials =
        sc.master_user.empty()
            ? session::StoreCredentials{user, password, ""}
            : session::StoreCredentials{sc.master_user, sc.master_password,
                                        user};
    auto* relay = new session::RelayDriver(
        Services(), this, server_->config().limits, user,
        std::move(credentials), server_->config().park);
    driver_ = relay;
    relay->Start(*link, tag);
    return;
  }
  state_ = State::kNotAuthenticated;
  std::string out;
  if (absl::IsUnauthenticated(link.status())) {
    if (session::AuthCache* cache = server_->auth_cache(); cache != nullptr) {
      cache->Forget(user);  // it may have changed at the store
    }
    counters.auth_failures.fetch_add(1, std::memory_order_relaxed);
    PIMAP_LOG(INFO) << "login failed user=" << imap::QuoteForLog(user);
    imap::AppendTaggedStatus(&out, tag, "NO", "AUTHENTICATIONFAILED",
                             "Authentication failed.");
  } else {
    PIMAP_LOG(WARNING) << "store login unavailable: "
                       << link.status().message();
    imap::AppendTaggedStatus(
        &out, tag, "NO", "UNAVAILABLE",
        "The message store is not available; try again later");
  }
  WriteLocal(std::move(out));
  SetBlocked(kBlockLogin, false);
}

void ImapConnection::LoggedIn(const std::string& user,
                              const std::string& device,
                              absl::string_view how) {
  state_ = State::kAuthenticated;
  if (pre_login_ != nullptr) {  // commands are the session driver's from now on
    pre_login_->Release();
    pre_login_ = nullptr;
  }
  user_ = user;
  server_->UserLoggedIn(user_);
  CounterAdd(server_->shard().counters().logins);
  PIMAP_LOG(INFO) << "login user=" << imap::QuoteForLog(user)
                  << (device.empty() ? ""
                                     : " device=" + imap::QuoteForLog(device))
                  << how;
  ArmActivityTimer(server_->config().idle_timeout_ms);
}

void ImapConnection::StartPimap(const std::string& tag, const std::string& user,
                                const std::string& device,
                                const std::string& password,
                                session::StoreLink* link) {
  Busy busy(this);
  auto* pimap = new session::PimapSessionDriver(
      Services(), this, server_->config().limits, user, device);
  driver_ = pimap;
  pimap->Start(link, tag, password);
}

session::DriverServices ImapConnection::Services() {
  return {&server_->sessions(), &server_->shard().counters(),
          &server_->shard().timers(), server_->pool(),
          server_->config().store_timeout_ms};
}

}  // namespace pimap::tcp
