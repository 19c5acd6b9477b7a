// Device connection state machine: framing, local pre-auth commands, the
// session driver after login, output with backpressure, timers and teardown.
// Login and hand-over are in imap_connection_login.cc.
#include "bindings/tcp/imap_connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bindings/compress/deflate_transport.h"
#include "bindings/tcp/imap_server.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/preauth_gate.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/imap/writer.h"
#include "core/session/capabilities.h"
#include "core/session/pimap_session_driver.h"
#include "core/session/terse.h"

namespace pimap::tcp {

namespace {

// Past this much output waiting for the device, WritePassThrough says so and
// the driver stops reading the store: memory per connection stays bounded by
// this, the driver's store high-water mark and one receive buffer.
constexpr size_t kOutputHighWater = 256 * 1024;
// Hard bound on bytes read from the device but not yet framed (while blocked).
constexpr size_t kMaxPendingInput = 1 << 20;

// The shard's bounds on connections not logged in (preauth_gate.h): the gate
// that counts this one from now on, or null with *refused set when it is past
// a bound (or null when the shard has no gate).
PreAuthGate* AdmitPreAuth(ImapServer* server, const ClientAddress& client,
                          bool* refused) {
  *refused = false;
  PreAuthGate* gate = server->shard().services().Find<PreAuthGate>();
  if (gate == nullptr || gate->Admit(client.peer)) return gate;
  *refused = true;
  CounterAdd(server->shard().counters().preauth_refused);
  PIMAP_LOG(INFO).Conn(client) << "refused: too many connections not logged in";
  return nullptr;
}

constexpr absl::string_view kTooMany =
    "* BYE [UNAVAILABLE] Too many connections\r\n";

}  // namespace

ImapConnection::PreLogin::PreLogin(ImapConnection* c)
    : CommandRouter(&c->server_->shard().counters(), c,
                    c->server_->config().limits),
      c_(c),
      services_(c->Services()) {}

session::CommandRouter::Opening ImapConnection::PreLogin::OpenLine(
    absl::string_view line, const imap::LiteralHeader* literal) {
  if (c_->state_ != State::kSaslResponse) return Opening::kCommand;
  if (literal != nullptr) {
    c_->state_ = State::kNotAuthenticated;
    c_->WriteBad(sasl_tag, "Literal not allowed in an authentication response");
  } else {
    c_->HandleSaslResponse(line);
  }
  return Opening::kTaken;  // the rest of this "command" is the one line
}

void ImapConnection::Accept(ImapServer* server, int slot, bool implicit_tls,
                            const ClientAddress& client) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  bool refused = false;
  PreAuthGate* gate = AdmitPreAuth(server, client, &refused);
  if (refused) {
    // Said in clear on the plain port; on the TLS port a handshake would cost
    // more than the flood is worth: closed without a word.
    if (!implicit_tls) socket->Write(kTooMany);
    socket->Close();
    return;
  }
  engine::Transport* transport = socket;
  if (implicit_tls) {
    SSL* ssl = server->tls()->NewServerSsl();
    if (ssl == nullptr) {
      if (gate != nullptr) gate->Leave(client.peer);
      socket->Abort();
      return;
    }
    transport = new tls::TlsTransport(socket, ssl);
  }
  PIMAP_LOG(DEBUG).Conn(client).Event("conn.open")
      << (implicit_tls ? "IMAPS" : "IMAP") << " connection to "
      << client.local.ToString();
  auto* connection =
      new ImapConnection(server, socket, transport, implicit_tls, client,
                         MonotonicNowMs() + server->config().login_timeout_ms);
  connection->EnterPreAuth(gate);
  connection->Greet();  // queued; on TLS it waits for the handshake
  connection->Start();
}

void ImapConnection::Arrive(ImapServer* server, int slot, SSL* ssl,
                            std::string input, PendingLogin login,
                            int64_t login_deadline_ms) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  engine::Transport* transport = socket;
  if (ssl != nullptr) transport = new tls::TlsTransport(socket, ssl);
  if (server->stopping()) {  // arrived while this shard is saying goodbye
    transport->Write("* BYE Server shutting down\r\n");
    transport->Close();
    return;
  }
  // Counted here too: the owner shard's descriptors are what a client that
  // picks a victim's shard would take (README, "Connection limits").
  bool refused = false;
  PreAuthGate* gate = AdmitPreAuth(server, login.client, &refused);
  if (refused) {
    transport->Write(kTooMany);
    transport->Close();
    return;
  }
  // A device forwarded by another cluster node used TLS there.
  auto* connection = new ImapConnection(
      server, socket, transport, ssl != nullptr || login.forwarded_secure,
      login.client, login_deadline_ms, std::move(input), kBlockLogin);
  connection->EnterPreAuth(gate);
  connection->client_id_ = login.client_id;  // for a login that fails here
  connection->forward_hops_ = login.hops;
  // The login first, then the handler: a TLS session handed over with a
  // close_notify buffered ends the connection inside Start(). A claim that
  // forwards the device to another node answers later, when started.
  Busy busy(connection);
  connection->ClaimThenLogin(std::move(login));  // reading stays off meanwhile
  if (!connection->destroy_pending_) connection->Start();
}

void ImapConnection::ArriveForwarded(ImapServer* server, engine::Socket* socket,
                                     std::string input, PendingLogin login) {
  server->shard().counters().cluster_forwards_in.fetch_add(
      1, std::memory_order_relaxed);
  if (server->stopping()) {
    socket->Write("* BYE Server shutting down\r\n");
    socket->Close();
    return;
  }
  // The accepting node greeted the device and counted it as pre-auth; here
  // it is a login in progress, from the client's real address.
  // Counted as pre-auth here too: the forwarding node stopped counting it,
  // and a device that fails its login goes on as this node's connection.
  bool refused = false;
  PreAuthGate* gate = AdmitPreAuth(server, login.client, &refused);
  if (refused) {
    socket->Write(kTooMany);
    socket->Close();
    return;
  }
  auto* connection = new ImapConnection(
      server, socket, socket, login.forwarded_secure, login.client,
      MonotonicNowMs() + server->config().login_timeout_ms, std::move(input),
      kBlockLogin);
  connection->EnterPreAuth(gate);
  connection->client_id_ = login.client_id;
  connection->forward_hops_ = login.hops;
  // Handler first: the socket's reader (forward_arrival.h) is gone, and a
  // hand-over to the user's shard still delivers bytes in flight to it.
  Busy busy(connection);
  connection->Start();
  if (!connection->destroy_pending_) connection->StartLogin(std::move(login));
}

ImapConnection::ImapConnection(ImapServer* server, engine::Socket* socket,
                               engine::Transport* transport, bool tls_active,
                               const ClientAddress& client,
                               int64_t login_deadline_ms,
                               std::string initial_input,
                               unsigned initial_block)
    : server_(server),
      socket_(socket),
      transport_(transport),
      framer_(imap::Framer::Mode::kCommands, server->config().limits),
      pending_input_(std::move(initial_input)),
      client_(client),
      login_deadline_ms_(login_deadline_ms),
      alive_(std::make_shared<bool>(true)),
      blocked_(static_cast<uint8_t>(initial_block)),
      tls_active_(tls_active) {
  if (initial_block != 0) state_ = State::kLoggingIn;
  server_->Register(this);
  server_->shard().counters().device_connections.fetch_add(
      1, std::memory_order_relaxed);
  TouchActivity();
  ArmActivityTimer(std::max<int64_t>(login_deadline_ms_ - MonotonicNowMs(), 0));
  // The transport's handler is set by Start(), not here: setting it may run a
  // TLS pump that fails and frees this object, which a constructor cannot
  // survive.
}

ImapConnection* ImapConnection::Rebuild(ImapServer* server,
                                        HibernatedTransport transport,
                                        const session::HibernatedIdle& state,
                                        session::DeviceLink* keeper) {
  auto* connection = new ImapConnection(
      server, transport.socket, transport.transport, transport.tls_active,
      state.client, /*login_deadline_ms=*/MonotonicNowMs());
  connection->state_ = State::kAuthenticated;
  connection->compressed_ = transport.compressed;
  connection->user_ = std::move(transport.user);  // still counted logged in
  if (state.session != nullptr) connection->device_ = state.session->device;
  connection->last_activity_ms_ = transport.last_activity_ms;
  connection->driver_ = session::PimapSessionDriver::Wake(
      connection->Services(), connection, server->config().limits,
      connection->user_, state, keeper);
  connection->ArmActivityTimer(connection->AuthenticatedTimerDelay(
      MonotonicNowMs() - connection->last_activity_ms_));
  return connection;
}

session::DeviceLink* ImapConnection::device_link() {
  // Only a rebuilt connection asks, and its driver is a P-IMAP device's.
  return static_cast<session::PimapSessionDriver*>(driver_)->device_link();
}

bool ImapConnection::MaybeHibernate() {
  // Everything of the connection at rest too: no partial command, nothing
  // held back or unsent, no switch (STARTTLS, COMPRESS) or hand-over under
  // way. Only the timer's own Busy scope is on the stack.
  if (state_ != State::kAuthenticated || driver_ == nullptr ||
      transport_ == nullptr || blocked_ != 0 || mid_response_ ||
      !deferred_output_.empty() || !pending_input_.empty() ||
      compress_pending_ || starttls_reset_ || in_feed_ || busy_ != 1 ||
      destroy_pending_ || handover_timer_ != 0 || !framer_.at_command_start() ||
      transport_->PendingOutput() != 0 || !driver_->Hibernatable()) {
    return false;
  }
  HibernatedTransport kept;
  kept.socket = socket_;
  kept.transport = std::exchange(transport_, nullptr);
  kept.tls_active = tls_active_;
  kept.compressed = compressed_;
  kept.user = std::exchange(user_, {});  // the login count goes along
  kept.last_activity_ms = last_activity_ms_;
  session::SessionDriver* driver = std::exchange(driver_, nullptr);
  state_ = State::kClosing;
  Destroy();  // freed when the timer's scope ends
  HibernatedConnection::Start(server_, std::move(kept), driver);
  driver->Release();
  return true;
}

int64_t ImapConnection::AuthenticatedTimerDelay(int64_t idle_ms) const {
  const ImapServerConfig& config = server_->config();
  int64_t delay = config.idle_timeout_ms - idle_ms;
  if (config.hibernate_after_ms > 0) {
    // Quiet for a while first; then a look every hibernate-after.
    const int64_t quiet = config.hibernate_after_ms - idle_ms;
    delay = std::min(delay, quiet > 0 ? quiet : config.hibernate_after_ms);
  }
  return std::max<int64_t>(delay, 0);
}

void ImapConnection::Start() {
  Busy busy(this);
  transport_->SetHandler(this);
}

ImapConnection::~ImapConnection() {
  LeavePreAuth();
  if (activity_timer_ != 0) server_->shard().timers().Cancel(activity_timer_);
  if (handover_timer_ != 0) server_->shard().timers().Cancel(handover_timer_);
  if (driver_ != nullptr) driver_->Release();
  if (pre_login_ != nullptr) pre_login_->Release();
  if (!user_.empty()) server_->UserLoggedOut(user_);
  server_->Unregister(this);
  server_->shard().counters().device_connections.fetch_sub(
      1, std::memory_order_relaxed);
}

void ImapConnection::LeavePreAuth() {
  if (preauth_ == nullptr) return;
  preauth_->Leave(client_.peer);
  preauth_ = nullptr;
}

void ImapConnection::Greet() {
  const ImapServerConfig& config = server_->config();
  const bool login_allowed = tls_active_ || config.allow_plaintext_auth;
  WriteLocal(absl::StrCat(
      "* OK [CAPABILITY ",
      session::PreAuthCapabilities(config.tls != nullptr && !tls_active_,
                                   login_allowed,
                                   /*xzip=*/true),
      "] pimap ready\r\n"));
}

session::SessionDriver& ImapConnection::commands() {
  if (driver_ != nullptr) return *driver_;
  if (pre_login_ == nullptr) {
    pre_login_ = new PreLogin(this);
    pre_login_->SetTerse(terse_);  // back from a failed login: as it was
  }
  return *pre_login_;
}

// ---- Input -----------------------------------------------------------------

void ImapConnection::OnTransportData(absl::string_view data) {
  server_->shard().counters().bytes_in.fetch_add(data.size(),
                                                 std::memory_order_relaxed);
  TouchActivity();
  if (state_ == State::kClosing) return;
  if (pending_input_.size() + data.size() > kMaxPendingInput) {
    // Only a client that ignores the protocol (keeps sending while we wait for
    // the store) gets here: reading is paused while blocked.
    Shutdown("Too much input while a command is pending");
    return;
  }
  pending_input_.append(data.data(), data.size());
  if (driver_ != nullptr) driver_->OnInputArrived();
  ProcessInput();
}

void ImapConnection::ProcessInput() {
  Busy busy(this);
  // Feed even when no bytes are left: the framer may owe an OnEnd from a pause.
  while (blocked_ == 0 && state_ != State::kClosing && !destroy_pending_) {
    in_feed_ = true;
    size_t used = framer_.Feed(pending_input_, *this);
    in_feed_ = false;
    pending_input_.erase(0, used);
    if (starttls_reset_) {
      // Anything the client sent after STARTTLS came in the clear and must not
      // run as if it came over TLS (the STARTTLS command-injection hazard).
      starttls_reset_ = false;
      pending_input_.clear();
      framer_.Reset();
      break;
    }
    if (compress_pending_) {
      // Everything the client sends after the tagged OK is compressed: the
      // rest of what was read goes through the inflater (RFC 4978 section 3).
      compress_pending_ = false;
      if (transport_ == nullptr || state_ == State::kClosing) break;
      auto* deflate = static_cast<compress::DeflateTransport*>(transport_);
      deflate->Feed(pending_input_);
      pending_input_.clear();
      deflate->SetHandler(this);
      break;  // reading resumes below and pumps what was fed
    }
    if (framer_.fatal()) break;
    if (used == 0 || pending_input_.empty()) break;
  }
  if (state_ != State::kClosing && !destroy_pending_ && transport_ != nullptr) {
    transport_->SetReading(blocked_ == 0);
  }
}

void ImapConnection::SetBlocked(unsigned bit, bool on) {
  blocked_ = static_cast<uint8_t>(on ? (blocked_ | bit) : (blocked_ & ~bit));
  // Unblocking always resumes reading (reading was turned off while blocked),
  // unless we are inside Feed, whose loop goes on by itself.
  if (!on && blocked_ == 0 && !in_feed_) ProcessInput();
}

bool ImapConnection::OnLine(absl::string_view line,
                            const imap::LiteralHeader* literal) {
  if (commands().OnCommandLine(line, literal) ==
      session::SessionDriver::Next::kRejectLiteral) {
    framer_.RejectLiteral();
  }
  return reading();
}

bool ImapConnection::OnLiteralData(absl::string_view chunk) {
  commands().OnLiteralData(chunk);
  return reading();
}

bool ImapConnection::OnEnd() {
  commands().OnCommandEnd();
  return reading() && !starttls_reset_ && !compress_pending_;
}

absl::Status ImapConnection::StartCompression(std::string ok) {
  if (compressed_) return absl::FailedPreconditionError("already compressed");
  if (mid_response_ || !deferred_output_.empty() || transport_ == nullptr) {
    // The OK must be the last byte in clear: nothing may be held back now.
    return absl::UnavailableError("Output in progress; try again");
  }
  WriteLocal(std::move(ok));
  compressed_ = true;
  // The OK may have crossed the output bound (or failed to go out): the
  // connection is closing then, and there is nothing to compress.
  if (transport_ == nullptr || state_ == State::kClosing)
    return absl::OkStatus();
  // Output is compressed from the next byte on, whatever writes it (a store
  // push, the session engine), so the switch is now. The inflater gets no
  // handler until the input read after the command has been handed to it,
  // so older bytes stay ahead of newer ones.
  auto* deflate = new compress::DeflateTransport(
      transport_, server_->config().deflate, &server_->shard().counters(),
      &server_->shard().timers());
  transport_ = deflate;
  if (in_feed_) {
    // The framer is still reading pending_input_: the rest of it is handed
    // over once it stops at this command's end (ProcessInput).
    compress_pending_ = true;
  } else {
    // A deferred COMPRESS (run after relayed commands completed): all of
    // pending_input_ was read after it.
    deflate->Feed(pending_input_);
    pending_input_.clear();
    deflate->SetHandler(this);
  }
  return absl::OkStatus();
}

bool ImapConnection::OnError(const imap::FrameError& error) {
  server_->shard().counters().parse_errors.fetch_add(1,
                                                     std::memory_order_relaxed);
  commands().OnFrameError(error);
  if (state_ == State::kSaslResponse) state_ = State::kNotAuthenticated;
  if (error.fatal) {
    Shutdown("Input cannot be resynchronised");
    return false;
  }
  return reading();
}

// ---- Local commands (before login) ------------------------------------------

void ImapConnection::ExecuteLocal(const imap::Command& command) {
  TakePreAuthStep(session::ExecutePreAuth(command, PreAuth()), command.tag);
}

bool ImapConnection::TakePreAuthStep(session::PreAuthStep step,
                                     const std::string& tag) {
  using Action = session::PreAuthStep::Action;
  if (step.auth_failure) {
    CounterAdd(server_->shard().counters().auth_failures);
    session::LogPreAuthFailure(step, client_);
  }
  if (step.client_id.has_value()) client_id_ = *std::move(step.client_id);
  switch (step.action) {
    case Action::kRespond:
      if (pre_login_ != nullptr) {
        pre_login_->Respond(std::move(step.response));
      } else {
        WriteLocal(std::move(step.response));
      }
      return false;
    case Action::kLogout:
      WriteLocal(pre_login_ != nullptr && pre_login_->Terse()
                     ? session::TerseResponses(step.response)
                     : std::move(step.response));
      Close();
      return false;
    case Action::kStartTls:
      DoStartTls(tag);
      return false;
    case Action::kSaslChallenge:
      pre_login_->sasl_tag = tag;  // we run inside its Execute
      state_ = State::kSaslResponse;
      WriteLocal(std::move(step.response));
      return false;
    case Action::kLogin:
      step.login.client = client_;
      step.login.client_id = client_id_;
      step.login.terse = pre_login_ != nullptr && pre_login_->Terse();
      step.login.hops = forward_hops_;
      StartLogin(std::move(step.login));
      return true;
  }
  return false;
}

// ---- Output -----------------------------------------------------------------

void ImapConnection::WriteLocal(std::string bytes) {
  if (transport_ == nullptr || state_ == State::kClosing) return;
  if (mid_response_) {
    deferred_output_ += bytes;
    return;
  }
  server_->shard().counters().bytes_out.fetch_add(bytes.size(),
                                                  std::memory_order_relaxed);
  transport_->Write(std::move(bytes));
  CheckOutputBound();
}

void ImapConnection::WriteBad(absl::string_view tag,
                              absl::string_view message) {
  std::string out;
  if (tag.empty()) {
    imap::AppendUntaggedStatus(&out, "BAD", "", message);
  } else {
    imap::AppendTaggedStatus(&out, tag, "BAD", "", message);
  }
  WriteLocal(std::move(out));
}

bool ImapConnection::WritePassThrough(absl::string_view bytes) {
  if (transport_ == nullptr) return true;
  mid_response_ = true;
  server_->shard().counters().bytes_out.fetch_add(bytes.size(),
                                                  std::memory_order_relaxed);
  transport_->Write(bytes);
  const bool below = transport_->PendingOutput() <= kOutputHighWater;
  CheckOutputBound();
  return below;
}

void ImapConnection::EndPassThrough() {
  mid_response_ = false;
  if (!deferred_output_.empty())
    WriteLocal(std::exchange(deferred_output_, {}));
}

void ImapConnection::CheckOutputBound() {
  // Backpressure keeps output near the high-water mark; only a device that
  // stops reading while a huge response line is in flight gets here.
  if (transport_ != nullptr &&
      transport_->PendingOutput() > server_->config().max_output_bytes) {
    PIMAP_LOG(INFO).Conn(client_) << "device does not read its output; closing";
    if (driver_ != nullptr) driver_->Detach();
    state_ = State::kClosing;
    transport_->Abort();
    transport_ = nullptr;
    Destroy();
  }
}

void ImapConnection::OnTransportDrained() {
  Busy busy(this);
  if (driver_ != nullptr) driver_->OnOutputDrained();
}

// ---- The session driver's control -------------------------------------------

void ImapConnection::SetCommandRunning(bool running, bool resume) {
  if (running || !resume) {
    blocked_ = static_cast<uint8_t>(running ? (blocked_ | kBlockSession)
                                            : (blocked_ & ~kBlockSession));
    return;
  }
  SetBlocked(kBlockSession, false);
}

void ImapConnection::LoginDone(bool ok) {
  if (!ok) {
    // The store cannot carry a P-IMAP session: back to not authenticated.
    // Freed once its call (which is on the stack) has unwound.
    driver_->Release();
    driver_ = nullptr;
    state_ = State::kNotAuthenticated;
    server_->UserLoggedOut(user_);
    user_.clear();
  }
  SetBlocked(kBlockLogin, false);
  if (!ok) CheckLoginDeadline();
}

// ---- Timers, shutdown, teardown ---------------------------------------------

void ImapConnection::TouchActivity() { last_activity_ms_ = MonotonicNowMs(); }

void ImapConnection::ArmActivityTimer(int64_t delay_ms) {
  TimerWheel& timers = server_->shard().timers();
  if (activity_timer_ != 0) timers.Cancel(activity_timer_);
  activity_timer_ = timers.Schedule(delay_ms, [this] {
    activity_timer_ = 0;
    OnActivityTimer();
  });
}

// One timer per connection, re-armed lazily: activity only stamps a time.
// Before login the limit is absolute (from the accept): a client that
// trickles bytes must not hold a connection (and a login slot) for ever.
void ImapConnection::OnActivityTimer() {
  Busy busy(this);
  const ImapServerConfig& config = server_->config();
  const int64_t now = MonotonicNowMs();
  switch (state_) {
    case State::kLoggingIn:
      // The store login and the login throttle have their own bounds; a
      // login that fails past the deadline ends the connection
      // (CheckLoginDeadline).
      ArmActivityTimer(config.login_timeout_ms);
      return;
    case State::kAuthenticated: {
      const int64_t idle = now - last_activity_ms_;
      if (idle < config.idle_timeout_ms) {
        if (config.hibernate_after_ms > 0 &&
            idle >= config.hibernate_after_ms && MaybeHibernate()) {
          return;
        }
        ArmActivityTimer(AuthenticatedTimerDelay(idle));
        return;
      }
      Shutdown("Autologout; idle for too long");
      return;
    }
    case State::kNotAuthenticated:
    case State::kSaslResponse:
      if (now < login_deadline_ms_) {
        ArmActivityTimer(login_deadline_ms_ - now);
        return;
      }
      Shutdown("Autologout; no login within the login timeout");
      return;
    case State::kClosing:
      return;
  }
}

void ImapConnection::CheckLoginDeadline() {
  if (state_ != State::kNotAuthenticated && state_ != State::kSaslResponse) {
    return;
  }
  if (MonotonicNowMs() >= login_deadline_ms_) {
    Shutdown("Autologout; no login within the login timeout");
  }
}

void ImapConnection::Shutdown(absl::string_view reason) {
  // A connection on its way to the owner shard is said goodbye to there.
  if (state_ == State::kClosing || transport_ == nullptr ||
      (blocked_ & kBlockHandover)) {
    return;
  }
  Busy busy(this);
  PIMAP_LOG(INFO)
          .Conn(client_)
          .User(user_)
          .Device(device_)
          .Event("conn.bye")
          .Field("reason", reason)
      << "BYE";
  // The session first (saved, with --state-dir), then the goodbye: a device
  // that reconnects at once, perhaps to a new process (an upgrade), finds it.
  if (driver_ != nullptr) driver_->Detach();
  std::string out;
  imap::AppendUntaggedStatus(&out, "BYE", "", reason);
  mid_response_ = false;  // the connection ends: the goodbye goes out now
  WriteLocal(std::move(out));
  Close();
}

void ImapConnection::LogClose(absl::string_view why) const {
  // A logged-in session's end is news (Dovecot's "Disconnected"); the
  // comings and goings before login are not, unless asked for.
  if (user_.empty()) {
    PIMAP_LOG(DEBUG).Conn(client_).Event("conn.close").Field("why", why)
        << "closed";
  } else {
    PIMAP_LOG(INFO)
            .Conn(client_)
            .User(user_)
            .Device(device_)
            .Event("conn.close")
            .Field("why", why)
        << "closed";
  }
}

void ImapConnection::Close() {
  if (state_ == State::kClosing) return;
  LogClose("server");
  state_ = State::kClosing;
  if (driver_ != nullptr) driver_->Detach();
  if (transport_ != nullptr) {
    transport_->Close();  // flushes what is queued, then closes
    transport_ = nullptr;
  }
  Destroy();
}

void ImapConnection::OnTransportClosed(absl::Status reason) {
  Busy busy(this);
  if (state_ != State::kClosing) LogClose(reason.ok() ? "client" : "error");
  transport_ = nullptr;
  state_ = State::kClosing;
  if (driver_ != nullptr) driver_->Detach();
  Destroy();
}

void ImapConnection::Destroy() {
  if (destroy_pending_) return;
  if (driver_ != nullptr) driver_->Detach();
  alive_.reset();
  destroy_pending_ = true;
  if (busy_ == 0) delete this;
}

}  // namespace pimap::tcp
