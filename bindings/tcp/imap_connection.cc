// Device connection state machine: local pre-auth commands, hand-over to the owner
// shard, store login, and the relay with backpressure both ways.
#include "bindings/tcp/imap_connection.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/session/capabilities.h"
#include "bindings/tcp/imap_server.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/base/shard_for_user.h"
#include "core/engine/handoff.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/imap/sasl.h"
#include "core/imap/writer.h"

namespace pimap::tcp {

namespace {

// Commands handled before login are small; bound what we buffer for them.
constexpr size_t kLocalCommandBytes = 64 * 1024;
// Stop reading from the store once this much waits for the device, and stop reading
// the device once this much waits for the store: memory per connection stays
// bounded by these plus one receive buffer.
constexpr size_t kOutputHighWater = 256 * 1024;
constexpr size_t kStoreHighWater = 256 * 1024;
// Hard bound on bytes read from the device but not yet framed (while blocked).
constexpr size_t kMaxPendingInput = 1 << 20;
constexpr size_t kMaxOutstanding = 1000;

// The tag of a line whose head does not parse, if its first token can be one.
std::string GuessTag(absl::string_view line) {
  absl::string_view first = line.substr(0, line.find(' '));
  if (first.empty() || first.size() > 64 || first == "*" || first == "+") return "";
  for (char c : first) {
    if (c <= ' ' || c >= 0x7f || c == '{' || c == '(' || c == ')' || c == '"' ||
        c == '%' || c == '\\' || c == '+') {
      return "";
    }
  }
  return std::string(first);
}

// Rewrites a synchronising literal header at the end of a relayed line into a
// non-synchronising one: the gateway already answered "+" to the device, so the
// store must not wait for a second go-ahead (LITERAL+, RFC 7888).
std::string UpstreamLine(absl::string_view line, const imap::LiteralHeader* literal) {
  std::string out;
  if (literal == nullptr || !literal->synchronizing) {
    out.reserve(line.size() + 2);
    out.append(line.data(), line.size());
  } else {
    out.append(line.data(), literal->header_offset);
    absl::StrAppend(&out, literal->binary ? "~{" : "{", literal->size, "+}");
  }
  out += "\r\n";
  return out;
}

}  // namespace

void ImapConnection::Accept(ImapServer* server, int slot, bool implicit_tls) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  engine::Transport* transport = socket;
  if (implicit_tls) {
    SSL* ssl = server->config().tls->NewServerSsl();
    if (ssl == nullptr) {
      socket->Abort();
      return;
    }
    transport = new tls::TlsTransport(socket, ssl);
  }
  auto* connection = new ImapConnection(server, socket, transport, implicit_tls);
  connection->Greet();  // queued; on TLS it waits for the handshake
  connection->Start();
}

void ImapConnection::Arrive(ImapServer* server, int slot, SSL* ssl,
                            std::string input, PendingLogin login) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  engine::Transport* transport = socket;
  if (ssl != nullptr) transport = new tls::TlsTransport(socket, ssl);
  if (server->stopping()) {  // arrived while this shard is saying goodbye
    transport->Write("* BYE Server shutting down\r\n");
    transport->Close();
    return;
  }
  auto* connection = new ImapConnection(server, socket, transport, ssl != nullptr,
                                        std::move(input), kBlockLogin);
  connection->StartStoreLogin(std::move(login));  // reading stays off meanwhile
  connection->Start();
}

ImapConnection::ImapConnection(ImapServer* server, engine::Socket* socket,
                               engine::Transport* transport, bool tls_active,
                               std::string initial_input, unsigned initial_block)
    : server_(server),
      socket_(socket),
      transport_(transport),
      tls_active_(tls_active),
      framer_(imap::Framer::Mode::kCommands, server->config().limits),
      assembler_(server->config().limits, kLocalCommandBytes),
      pending_input_(std::move(initial_input)),
      blocked_(initial_block),
      alive_(std::make_shared<bool>(true)) {
  if (initial_block != 0) state_ = State::kLoggingIn;
  server_->Register(this);
  server_->shard().counters().device_connections.fetch_add(
      1, std::memory_order_relaxed);
  TouchActivity();
  ArmActivityTimer(server_->config().login_timeout_ms);
  // The transport's handler is set by Start(), not here: setting it may run a
  // TLS pump that fails and frees this object, which a constructor cannot survive.
}

void ImapConnection::Start() {
  Busy busy(this);
  transport_->SetHandler(this);
}

ImapConnection::~ImapConnection() {
  if (activity_timer_ != 0) server_->shard().timers().Cancel(activity_timer_);
  if (handover_timer_ != 0) server_->shard().timers().Cancel(handover_timer_);
  if (driver_ != nullptr) driver_->Release();
  if (!user_.empty()) server_->UserLoggedOut(user_);
  server_->Unregister(this);
  server_->shard().counters().device_connections.fetch_sub(
      1, std::memory_order_relaxed);
}

void ImapConnection::Greet() {
  const ImapServerConfig& config = server_->config();
  const bool login_allowed = tls_active_ || config.allow_plaintext_auth;
  WriteLocal(absl::StrCat(
      "* OK [CAPABILITY ",
      session::PreAuthCapabilities(config.tls != nullptr && !tls_active_, login_allowed),
      "] pimap ready\r\n"));
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
    if (framer_.fatal()) break;
    if (used == 0 || pending_input_.empty()) break;
  }
  if (state_ != State::kClosing && !destroy_pending_ && transport_ != nullptr) {
    transport_->SetReading(blocked_ == 0);
  }
}

void ImapConnection::SetBlocked(unsigned bit, bool on) {
  blocked_ = on ? (blocked_ | bit) : (blocked_ & ~bit);
  // Unblocking always resumes reading (reading was turned off while blocked),
  // unless we are inside Feed, whose loop goes on by itself.
  if (!on && blocked_ == 0 && !in_feed_) ProcessInput();
}

bool ImapConnection::OnLine(absl::string_view line,
                            const imap::LiteralHeader* literal) {
  if (mode_ == CommandMode::kNone) {
    if (!StartCommand(line, literal)) return blocked_ == 0;
  }
  switch (mode_) {
    case CommandMode::kLocal: {
      absl::Status status = assembler_.AddLine(line, literal);
      if (!status.ok()) {
        WriteBad(command_tag_, status.message());
        mode_ = CommandMode::kSkip;
        if (literal != nullptr && literal->synchronizing) {
          framer_.RejectLiteral();
          mode_ = CommandMode::kNone;
        }
        break;
      }
      if (literal != nullptr && literal->synchronizing) {
        WriteLocal("+ Ready for literal data\r\n");
      }
      break;
    }
    case CommandMode::kRelay:
      return RelayLine(line, literal);
    case CommandMode::kSkip:
      if (literal != nullptr && literal->synchronizing) {
        framer_.RejectLiteral();
        mode_ = CommandMode::kNone;
      }
      break;
    case CommandMode::kNone:
      break;
  }
  return blocked_ == 0 && state_ != State::kClosing;
}

// Decides what the command that starts with `line` is. Returns false when the
// line has been dealt with entirely (e.g. answered BAD).
bool ImapConnection::StartCommand(absl::string_view line,
                                  const imap::LiteralHeader* literal) {
  relay_started_ = false;
  if (state_ == State::kSaslResponse) {
    if (literal != nullptr) {
      if (literal->synchronizing) framer_.RejectLiteral();
      state_ = State::kNotAuthenticated;
      WriteBad(sasl_tag_, "Literal not allowed in an authentication response");
      mode_ = literal->synchronizing ? CommandMode::kNone : CommandMode::kSkip;
      return false;
    }
    mode_ = CommandMode::kSkip;  // the rest of this "command" is the one line
    HandleSaslResponse(line);
    return false;
  }
  if (state_ == State::kAuthenticated && driver_ != nullptr && driver_->OnCommandLine()) {
    // The line that ended IDLE: the session engine has it; skip the rest.
    if (literal != nullptr && literal->synchronizing) {
      framer_.RejectLiteral();
      mode_ = CommandMode::kNone;
    } else {
      mode_ = CommandMode::kSkip;
    }
    blocked_ |= kBlockJob;
    return false;
  }
  if (state_ == State::kAuthenticated && !idle_tag_.empty()) {
    // The line that ends IDLE ("DONE", or anything else, which the store answers
    // BAD) goes to the store verbatim: the store owns the IDLE command.
    idle_tag_.clear();
    mode_ = CommandMode::kRelay;
    return true;
  }
  absl::StatusOr<imap::CommandHead> head = imap::ParseCommandHead(line);
  if (!head.ok()) {
    server_->shard().counters().parse_errors.fetch_add(1, std::memory_order_relaxed);
    WriteBad(GuessTag(line), head.status().message());
    if (literal != nullptr && literal->synchronizing) {
      framer_.RejectLiteral();
      mode_ = CommandMode::kNone;
    } else {
      mode_ = CommandMode::kSkip;
    }
    return false;
  }
  command_tag_ = head->tag;
  const std::string& name = head->name;
  bool local = true;
  if (state_ == State::kAuthenticated) {
    local = name == "CAPABILITY" || name == "STARTTLS" || name == "LOGIN" ||
            name == "AUTHENTICATE" || name == "COMPRESS" ||
            session::DeviceDriver::IsExtensionCommand(name) ||
            // A P-IMAP session renders MSNs itself: the engine handles every
            // command but APPEND, whose (large) literal streams through untouched.
            (driver_ != nullptr && !session::DeviceDriver::RelaysVerbatim(name));
  }
  if (local) {
    assembler_.Reset();
    mode_ = CommandMode::kLocal;
    return true;
  }
  mode_ = CommandMode::kRelay;
  outstanding_.push_back(head->tag);
  if (driver_ != nullptr) driver_->BeginRelayed();
  // Bounded pipelining: past this many commands in flight, read nothing more
  // until the store has answered them all.
  if (outstanding_.size() >= kMaxOutstanding) blocked_ |= kBlockOrdered;
  if (name == "IDLE") idle_tag_ = head->tag;
  if (name == "LOGOUT") logout_tag_ = head->tag;
  server_->shard().counters().commands_relayed.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool ImapConnection::RelayLine(absl::string_view line,
                               const imap::LiteralHeader* literal) {
  if (literal != nullptr && literal->synchronizing) {
    WriteLocal("+ Ready for literal data\r\n");
  }
  SendUp(UpstreamLine(line, literal));
  relay_started_ = true;
  return blocked_ == 0;
}

bool ImapConnection::OnLiteralData(absl::string_view chunk) {
  switch (mode_) {
    case CommandMode::kLocal: {
      absl::Status status = assembler_.AddLiteralData(chunk);
      if (!status.ok()) {
        WriteBad(command_tag_, status.message());
        mode_ = CommandMode::kSkip;
      }
      break;
    }
    case CommandMode::kRelay:
      SendUp(chunk);
      break;
    default:
      break;
  }
  return blocked_ == 0 && state_ != State::kClosing;
}

bool ImapConnection::OnEnd() {
  const CommandMode mode = mode_;
  mode_ = CommandMode::kNone;
  if (mode == CommandMode::kLocal) {
    absl::StatusOr<imap::Command> command = assembler_.Finish();
    if (!command.ok()) {
      server_->shard().counters().parse_errors.fetch_add(1, std::memory_order_relaxed);
      WriteBad(command_tag_, command.status().message());
    } else if (!outstanding_.empty()) {
      // Answering now would put our response before the store's answers to
      // earlier commands; wait until those have completed.
      deferred_command_ = std::move(*command);
      blocked_ |= kBlockOrdered;
    } else {
      ExecuteLocal(*command);
    }
  }
  return blocked_ == 0 && state_ != State::kClosing && !starttls_reset_;
}

bool ImapConnection::OnError(const imap::FrameError& error) {
  server_->shard().counters().parse_errors.fetch_add(1, std::memory_order_relaxed);
  const CommandMode mode = mode_;
  mode_ = CommandMode::kNone;
  if (mode == CommandMode::kRelay && relay_started_) {
    // Part of this command already went to the store. End it with a token no
    // grammar accepts, so the store answers it BAD under the device's tag rather
    // than running a truncated command; that BAD is the device's answer.
    SendUp(" (\r\n");
  } else {
    if (mode == CommandMode::kRelay && !outstanding_.empty()) outstanding_.pop_back();
    WriteBad(error.tag.empty() ? command_tag_ : error.tag, error.message);
  }
  if (state_ == State::kSaslResponse) state_ = State::kNotAuthenticated;
  if (error.fatal) {
    Shutdown("Input cannot be resynchronised");
    return false;
  }
  return blocked_ == 0 && state_ != State::kClosing;
}

// ---- Local commands ----------------------------------------------------------

void ImapConnection::ExecuteLocal(const imap::Command& command) {
  const std::string& tag = command.tag;
  const std::string& name = command.name;
  const ImapServerConfig& config = server_->config();
  std::string out;
  if (name == "CAPABILITY") {
    if (state_ == State::kAuthenticated) {
      absl::StrAppend(&out, "* CAPABILITY ",
                      session::PostAuthCapabilities(driver_ != nullptr
                                                        ? driver_->store_capabilities()
                                                        : link_->capabilities(),
                                                    driver_ != nullptr),
                      "\r\n");
    } else {
      absl::StrAppend(&out, "* CAPABILITY ",
                      session::PreAuthCapabilities(config.tls != nullptr && !tls_active_,
                                          tls_active_ || config.allow_plaintext_auth),
                      "\r\n");
    }
    imap::AppendTaggedStatus(&out, tag, "OK", "", "CAPABILITY completed");
    WriteLocal(std::move(out));
    return;
  }
  if (state_ == State::kAuthenticated && driver_ != nullptr && name != "COMPRESS" &&
      name != "STARTTLS" && name != "LOGIN" && name != "AUTHENTICATE") {
    driver_->Execute(command);
    return;
  }
  if (state_ == State::kAuthenticated && session::DeviceDriver::IsExtensionCommand(name)) {
    imap::AppendTaggedStatus(&out, tag, "NO", "CANNOT", "P-IMAP session required");
    WriteLocal(std::move(out));
    return;
  }
  if (state_ == State::kAuthenticated) {
    if (name == "COMPRESS") {
      imap::AppendTaggedStatus(&out, tag, "NO", "CANNOT",
                               "Compression is not offered on this connection");
    } else {
      imap::AppendTaggedStatus(&out, tag, "BAD", "",
                               absl::StrCat(name, " not allowed: already authenticated"));
    }
    WriteLocal(std::move(out));
    return;
  }
  if (name == "NOOP") {
    imap::AppendTaggedStatus(&out, tag, "OK", "", "NOOP completed");
    WriteLocal(std::move(out));
    return;
  }
  if (name == "LOGOUT") {
    out = "* BYE Logging out\r\n";
    imap::AppendTaggedStatus(&out, tag, "OK", "", "LOGOUT completed");
    WriteLocal(std::move(out));
    Close();
    return;
  }
  if (name == "STARTTLS") {
    DoStartTls(tag);
    return;
  }
  if (name == "LOGIN") {
    if (command.args.size() != 2 || !command.args[0].is_astring() ||
        !command.args[1].is_astring()) {
      WriteBad(tag, "LOGIN expects a user name and a password");
      return;
    }
    absl::StatusOr<imap::LoginName> name_or = imap::ParseLoginName(command.args[0].value);
    if (!name_or.ok()) {
      imap::AppendTaggedStatus(&out, tag, "NO", "AUTHENTICATIONFAILED",
                               name_or.status().message());
      WriteLocal(std::move(out));
      return;
    }
    StartLogin({tag, std::move(*name_or), command.args[1].value});
    return;
  }
  if (name == "AUTHENTICATE") {
    DoAuthenticate(command);
    return;
  }
  imap::AppendTaggedStatus(&out, tag, "BAD", "",
                           absl::StrCat("Command ", name,
                                        " unknown or not valid before login"));
  WriteLocal(std::move(out));
}

// ---- Store side ------------------------------------------------------------------

void ImapConnection::OnStoreBytes(absl::string_view bytes) {
  Busy busy(this);
  if (transport_ == nullptr) return;
  mid_response_ = true;
  server_->shard().counters().bytes_out.fetch_add(bytes.size(),
                                                  std::memory_order_relaxed);
  transport_->Write(bytes);
  if (transport_->PendingOutput() > kOutputHighWater && !store_paused_) {
    store_paused_ = true;
    link_->SetReading(false);
  }
  CheckOutputBound();
}

void ImapConnection::OnStoreResponseEnd(absl::string_view completed_tag) {
  Busy busy(this);
  mid_response_ = false;
  if (!deferred_output_.empty()) {
    std::string out = std::move(deferred_output_);
    deferred_output_.clear();
    WriteLocal(std::move(out));
  }
  if (completed_tag.empty()) return;
  OnRelayedCompleted(completed_tag);
}

void ImapConnection::OnRelayedCompleted(absl::string_view completed_tag) {
  for (auto it = outstanding_.begin(); it != outstanding_.end(); ++it) {
    if (*it == completed_tag) {
      outstanding_.erase(it);
      break;
    }
  }
  if (completed_tag == idle_tag_) idle_tag_.clear();
  if (!logout_tag_.empty() && completed_tag == logout_tag_) {
    Close();
    return;
  }
  if (!outstanding_.empty() || !(blocked_ & kBlockOrdered)) return;
  if (!deferred_bad_.empty()) {
    std::string out = std::move(deferred_bad_);
    deferred_bad_.clear();
    WriteLocal(std::move(out));
  }
  if (deferred_command_.has_value()) {
    imap::Command command = std::move(*deferred_command_);
    deferred_command_.reset();
    ExecuteLocal(command);
  }
  SetBlocked(kBlockOrdered, false);
}

void ImapConnection::OnStoreDrained() {
  Busy busy(this);
  if (blocked_ & kBlockStore) SetBlocked(kBlockStore, false);
}

void ImapConnection::OnStoreClosed(absl::Status reason) {
  Busy busy(this);
  link_ = nullptr;
  if (!logout_tag_.empty()) {
    Close();
    return;
  }
  PIMAP_LOG(INFO) << "store connection lost for user=" << imap::QuoteForLog(user_)
                  << ": " << reason.message();
  mid_response_ = false;
  Shutdown("Connection to the message store lost");
}

// ---- Output ------------------------------------------------------------------

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

void ImapConnection::WriteBad(absl::string_view tag, absl::string_view message) {
  std::string out;
  if (tag.empty()) {
    imap::AppendUntaggedStatus(&out, "BAD", "", message);
  } else {
    imap::AppendTaggedStatus(&out, tag, "BAD", "", message);
  }
  if (!outstanding_.empty()) {
    // Keep answers in command order: this BAD follows the store's answers to
    // the commands relayed before it. Input waits meanwhile.
    deferred_bad_ += out;
    blocked_ |= kBlockOrdered;
    return;
  }
  WriteLocal(std::move(out));
}

void ImapConnection::CheckOutputBound() {
  // Backpressure keeps output near the high-water mark; only a device that stops
  // reading while a huge response line is in flight gets here.
  if (transport_ != nullptr &&
      transport_->PendingOutput() > server_->config().max_output_bytes) {
    PIMAP_LOG(INFO) << "device does not read its output; closing";
    if (link_ != nullptr) {
      link_->Close();
      link_ = nullptr;
    }
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
  if (store_paused_ && link_ != nullptr) {
    store_paused_ = false;
    link_->SetReading(true);
  }
}

// ---- Timers, shutdown, teardown ------------------------------------------------

void ImapConnection::TouchActivity() {
  last_activity_ms_ = MonotonicNowMs();
}

void ImapConnection::ArmActivityTimer(int64_t delay_ms) {
  TimerWheel& timers = server_->shard().timers();
  if (activity_timer_ != 0) timers.Cancel(activity_timer_);
  activity_timer_ = timers.Schedule(delay_ms, [this] {
    activity_timer_ = 0;
    OnActivityTimer();
  });
}

// One timer per connection, re-armed lazily: activity only stamps a time.
void ImapConnection::OnActivityTimer() {
  Busy busy(this);
  const ImapServerConfig& config = server_->config();
  const int64_t limit = state_ == State::kAuthenticated ? config.idle_timeout_ms
                                                        : config.login_timeout_ms;
  const int64_t idle = MonotonicNowMs() - last_activity_ms_;
  if (state_ == State::kLoggingIn) {  // the store has its own timeout
    ArmActivityTimer(limit);
    return;
  }
  if (idle < limit) {
    ArmActivityTimer(limit - idle);
    return;
  }
  Shutdown("Autologout; idle for too long");
}

void ImapConnection::Shutdown(absl::string_view reason) {
  // A connection on its way to the owner shard is said goodbye to there.
  if (state_ == State::kClosing || transport_ == nullptr ||
      (blocked_ & kBlockHandover)) {
    return;
  }
  Busy busy(this);
  std::string out;
  imap::AppendUntaggedStatus(&out, "BYE", "", reason);
  mid_response_ = false;  // the connection ends: the goodbye goes out now
  WriteLocal(std::move(out));
  Close();
}

void ImapConnection::Close() {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
  if (driver_ != nullptr) driver_->Detach();
  if (transport_ != nullptr) {
    transport_->Close();  // flushes what is queued, then closes
    transport_ = nullptr;
  }
  Destroy();
}

void ImapConnection::OnTransportClosed(absl::Status reason) {
  Busy busy(this);
  transport_ = nullptr;
  state_ = State::kClosing;
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
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

// ---- The P-IMAP session engine's output -----------------------------------------

void ImapConnection::SendUp(absl::string_view bytes) {
  if (driver_ != nullptr) {
    driver_->RelayBytes(bytes);
    if (driver_->RelayPending() > kStoreHighWater) blocked_ |= kBlockStore;
    return;
  }
  link_->Send(bytes);
  if (link_->PendingOutput() > kStoreHighWater) blocked_ |= kBlockStore;
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
  if (!deferred_output_.empty()) {
    std::string out = std::move(deferred_output_);
    deferred_output_.clear();
    WriteLocal(std::move(out));
  }
}

void ImapConnection::SetCommandRunning(bool running, bool resume) {
  if (running || !resume) {
    blocked_ = running ? (blocked_ | kBlockJob) : (blocked_ & ~kBlockJob);
    return;
  }
  SetBlocked(kBlockJob, false);
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
}

}  // namespace pimap::tcp
