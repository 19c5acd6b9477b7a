// The device connection's way in (imap_connection.h): STARTTLS, LOGIN and
// AUTHENTICATE PLAIN, the hand-over to the shard that owns the user, the store
// login (or the auth cache for a returning P-IMAP device), and the hand-off of
// the logged-in device to its session driver (relay or P-IMAP engine).
#include <openssl/mem.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bindings/tcp/forwarded_connection.h"
#include "bindings/tcp/imap_connection.h"
#include "bindings/tcp/imap_handoff.h"
#include "bindings/tcp/imap_server.h"
#include "bindings/tls/detach.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/shard_for_user.h"
#include "core/cluster/forward_record.h"
#include "core/cluster/shard_cluster.h"
#include "core/convert/transcoder.h"
#include "core/engine/resolver.h"
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
  return TakePreAuthStep(session::DecodeSaslResponse(sasl_tag, line, PreAuth()),
                         sasl_tag);
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
  ClaimThenLogin(std::move(login));
}

void ImapConnection::ClaimThenLogin(PendingLogin login) {
  auto* cluster = server_->shard().services().Find<cluster::ShardCluster>();
  if (cluster == nullptr) {
    StartStoreLogin(std::move(login));
    return;
  }
  // On the user's shard, whose claims are the node's truth about the user:
  // a user held here stays here whatever the hashing says now. A forwarded
  // login is not placed by the hashing again (two nodes' views may briefly
  // disagree): only the claim can move it on.
  if (login.hops == 0) {
    cluster::Placement placement =
        cluster->Place(login.name.user, MonotonicNowMs());
    switch (placement.kind) {
      case cluster::Placement::Kind::kUnavailable:
        RefuseUnplaced(login, placement.reason);
        return;
      case cluster::Placement::Kind::kForward:
        ForwardToNode(placement.member, std::move(login));
        return;
      case cluster::Placement::Kind::kHere:
        break;
    }
  }
  state_ = State::kLoggingIn;
  blocked_ |= kBlockLogin;
  // Not even a receive in flight while the claim runs: if it forwards the
  // device, every byte must reach the splice, none this object.
  if (transport_ != nullptr) transport_->SetReading(false);
  const std::string user = login.name.user;
  auto payload = std::make_shared<PendingLogin>(std::move(login));
  cluster->Claim(user, [this, alive = std::weak_ptr<bool>(alive_),
                        payload](cluster::Placement placement) {
    if (alive.expired()) return;
    Busy busy(this);
    if (state_ == State::kClosing) return;
    switch (placement.kind) {
      case cluster::Placement::Kind::kHere:
        if (placement.local_state_stale) {
          const size_t forgotten =
              server_->sessions().ForgetStaleUser(payload->name.user);
          if (forgotten > 0) {
            PIMAP_LOG(INFO)
                    .User(payload->name.user)
                    .Event("cluster.state.stale")
                    .Field("devices", absl::StrCat(forgotten))
                << "another node served the user since: its sessions here "
                   "start anew";
          }
        }
        StartStoreLogin(std::move(*payload));
        return;
      case cluster::Placement::Kind::kForward:
        if (payload->hops < cluster::kMaxForwardHops) {
          ForwardToNode(placement.member, std::move(*payload));
          return;
        }
        RefuseUnplaced(*payload, "forwarded too often (cluster views differ)");
        return;
      case cluster::Placement::Kind::kUnavailable:
        RefuseUnplaced(*payload, placement.reason);
        return;
    }
  });
}

void ImapConnection::RefuseUnplaced(const PendingLogin& login,
                                    absl::string_view why) {
  terse_ = login.terse;  // it may have come from another shard
  PIMAP_LOG(INFO)
          .Conn(client_)
          .User(login.name.user)
          .Event("cluster.login.unplaced")
      << "login not served: " << why;
  std::string out;
  imap::AppendTaggedStatus(
      &out, login.tag, "NO", "UNAVAILABLE",
      absl::StrCat("Cannot serve this user now (", why, "); try again"));
  OnLoginFailed(std::move(out));
}

void ImapConnection::ForwardToNode(const cluster::Member& member,
                                   PendingLogin login) {
  // Frozen as for a hand-over. Inside the framer's Feed the LOGIN line is
  // still at the front of pending_input_ (Feed erases what it used when it
  // returns): the splice starts on the next turn of the loop, with exactly
  // what followed the LOGIN.
  blocked_ |= kBlockHandover;
  state_ = State::kLoggingIn;
  if (in_feed_) {
    server_->shard().timers().Schedule(
        0, [this, alive = std::weak_ptr<bool>(alive_), member,
            payload = std::make_shared<PendingLogin>(std::move(login))] {
          if (alive.expired()) return;
          Busy busy(this);
          SpliceToNode(member, std::move(*payload));
        });
    return;
  }
  SpliceToNode(member, std::move(login));
}

void ImapConnection::SpliceToNode(const cluster::Member& member,
                                  PendingLogin login) {
  if (transport_ == nullptr || destroy_pending_) return;
  absl::StatusOr<engine::ResolvedAddress> target =
      engine::ParseIpPort(member.forward);
  auto* cluster = server_->shard().services().Find<cluster::ShardCluster>();
  if (!target.ok() || cluster == nullptr) {
    blocked_ &= ~kBlockHandover;
    RefuseUnplaced(login, "the user's node has no usable address");
    return;
  }
  cluster::ForwardRecord record;
  record.tag = login.tag;
  record.user = login.name.user;
  record.device = login.name.device;
  record.password = std::move(login.password);
  record.client_id = login.client_id;
  record.terse = login.terse;
  record.secure = tls_active_ || login.forwarded_secure;
  record.hops = static_cast<uint8_t>(login.hops + 1);
  record.client = client_;
  record.issued_unix = absl::ToUnixSeconds(absl::Now());
  std::string first =
      cluster::EncodeForwardLine(record, cluster->config().secret);
  OPENSSL_cleanse(record.password.data(), record.password.size());
  first += pending_input_;
  pending_input_.clear();
  PIMAP_LOG(DEBUG)
          .Conn(client_)
          .User(login.name.user)
          .Event("conn.forward")
          .Field("to", member.id)
      << "forwarded to the user's node";
  // The transport (and its TLS) is the splice's now; this object goes.
  engine::Transport* transport = transport_;
  transport_ = nullptr;
  socket_ = nullptr;
  state_ = State::kClosing;
  LeavePreAuth();
  ForwardedConnection::Start(server_, transport, client_, member.id,
                             target->address, target->len, std::move(first),
                             login.tag);
  Destroy();
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
      server_->shard().services().Find<session::LoginThrottle>(),
      server_->shard().services().Find<cluster::ShardCluster>()};
  session::StartSessionLogin(services, this, std::move(login), alive_, this);
}

bool ImapConnection::OnAuthenticated(const std::string& user,
                                     const std::string& device,
                                     absl::string_view how) {
  Busy busy(this);
  if (state_ == State::kClosing) return false;
  state_ = State::kAuthenticated;
  LeavePreAuth();               // its descriptor is a session's now
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
