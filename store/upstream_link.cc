// Store connection: set-up (TLS, greeting, STARTTLS, ID with the device's
// address, login, capabilities, the device's own ID) and response relay.
#include "store/upstream_link.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bindings/tls/tls_context.h"
#include "bindings/tls/tls_transport.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/imap/sasl.h"
#include "core/imap/writer.h"

namespace pimap::store {

namespace {
// Responses can be far larger than commands (a SEARCH over a big folder is one line);
// literals are streamed, never buffered, so only the line limit costs memory.
imap::ParserLimits ResponseLimits(const imap::ParserLimits& device_limits) {
  imap::ParserLimits limits = device_limits;
  limits.max_line_bytes = std::max<size_t>(device_limits.max_line_bytes, 4 << 20);
  limits.max_literal_bytes = std::max<uint64_t>(device_limits.max_literal_bytes,
                                                uint64_t{1} << 32);
  return limits;
}
constexpr size_t kSetupResponseBytes = 256 * 1024;
// Tags of the gateway's own set-up commands.
constexpr absl::string_view kOriginTag = "I";
constexpr absl::string_view kLoginTag = "L";
constexpr absl::string_view kClientIdTag = "J";
constexpr absl::string_view kNamespaceTag = "N";
constexpr absl::string_view kStartTlsTag = "T";

// The fields a store takes from a trusted proxy to know the real client
// (Dovecot: x-originating-*, x-connected-*); empty when the address is
// unknown.
std::string OriginFields(const ClientAddress& client) {
  if (!client.peer.known()) return "";
  std::string out =
      absl::StrCat("\"x-originating-ip\" \"", client.peer.Ip(),
                   "\" \"x-originating-port\" \"", client.peer.port, "\"");
  if (client.local.known() && !client.local.unspecified()) {
    absl::StrAppend(&out, " \"x-connected-ip\" \"", client.local.Ip(), "\"");
  }
  if (client.local.known()) {
    absl::StrAppend(&out, " \"x-connected-port\" \"", client.local.port, "\"");
  }
  return out;
}

// Interns capability lists per shard thread (no locking: thread_local).
std::shared_ptr<const std::vector<std::string>> Intern(std::vector<std::string> caps) {
  static thread_local std::vector<std::shared_ptr<const std::vector<std::string>>> known;
  for (const auto& k : known) {
    if (*k == caps) return k;
  }
  auto made = std::make_shared<const std::vector<std::string>>(std::move(caps));
  if (known.size() < 16) known.push_back(made);  // a handful of distinct stores at most
  return made;
}

// Whether a login's NO (with this response code) refuses the credentials, as
// opposed to a passing condition (RFC 5530: [UNAVAILABLE], [LIMIT] for too
// many connections, [SERVERBUG], ...) after which the same credentials may
// work. A refused password is not tried again; so only these, or a bare NO.
bool CredentialsRefused(absl::string_view code) {
  if (code.empty()) return true;
  const absl::string_view name = code.substr(0, code.find(' '));
  return absl::EqualsIgnoreCase(name, "AUTHENTICATIONFAILED") ||
         absl::EqualsIgnoreCase(name, "AUTHORIZATIONFAILED") ||
         absl::EqualsIgnoreCase(name, "EXPIRED");
}

std::vector<std::string> CapabilitiesFromCode(absl::string_view code) {
  std::vector<std::string> caps;
  if (!absl::StartsWithIgnoreCase(code, "CAPABILITY ")) return caps;
  code.remove_prefix(11);
  for (absl::string_view token : absl::StrSplit(code, ' ', absl::SkipEmpty())) {
    caps.push_back(absl::AsciiStrToUpper(token));
  }
  return caps;
}
}  // namespace

void UpstreamLink::Open(engine::Shard* shard, const UpstreamConfig& config,
                        session::StoreCredentials credentials,
                        session::StoreConnector::LoginCallback done) {
  auto* link = new UpstreamLink(shard, config, std::move(credentials), std::move(done));
  std::weak_ptr<bool> alive = link->alive_;
  engine::Socket::Connect(
      shard, config.address, config.address_len,
      [link, alive](absl::StatusOr<engine::Socket*> socket) {
        if (alive.expired()) {  // timed out meanwhile
          if (socket.ok()) (*socket)->Abort();
          return;
        }
        if (!socket.ok()) {
          link->FinishSetup(absl::UnavailableError(absl::StrCat(
              "cannot connect to the store: ", socket.status().message())));
          return;
        }
        link->OnConnected(*socket);
      });
}

UpstreamLink::UpstreamLink(engine::Shard* shard, const UpstreamConfig& config,
                           session::StoreCredentials credentials,
                           session::StoreConnector::LoginCallback done)
    : shard_(shard),
      config_(config),
      credentials_(std::move(credentials)),
      done_(std::move(done)),
      framer_(imap::Framer::Mode::kResponses, ResponseLimits(config.limits)),
      assembler_(ResponseLimits(config.limits), kSetupResponseBytes),
      alive_(std::make_shared<bool>(true)) {
  timeout_timer_ = shard_->timers().Schedule(config_.timeout_ms, [this] {
    timeout_timer_ = 0;
    FinishSetup(absl::UnavailableError("store did not answer in time"));
  });
}

UpstreamLink::~UpstreamLink() {
  if (timeout_timer_ != 0) shard_->timers().Cancel(timeout_timer_);
}

void UpstreamLink::OnConnected(engine::Transport* transport) {
  transport_ = transport;
  shard_->counters().upstream_connections.fetch_add(1, std::memory_order_relaxed);
  state_ = State::kGreeting;
  if (config_.tls == StoreTls::kImplicit && !StartTls()) return;
  transport_->SetHandler(this);
}

bool UpstreamLink::StartTls() {
  SSL* ssl = config_.tls_context == nullptr
                 ? nullptr
                 : config_.tls_context->NewClientSsl(config_.tls_name);
  if (ssl == nullptr) {
    FinishSetup(absl::UnavailableError("cannot start TLS to the store"));
    return false;
  }
  // The handshake starts when the caller sets the handler; until it is done,
  // what the link writes waits in the TLS transport.
  transport_ = new tls::TlsTransport(transport_, ssl);
  return true;
}

void UpstreamLink::SetClient(session::StoreLinkClient* client) { client_ = client; }

void UpstreamLink::Send(absl::string_view bytes) {
  if (transport_ != nullptr) transport_->Write(bytes);
}

size_t UpstreamLink::PendingOutput() const {
  return transport_ == nullptr ? 0 : transport_->PendingOutput();
}

void UpstreamLink::SetReading(bool on) {
  if (reading_ == on) return;
  reading_ = on;
  if (transport_ != nullptr) transport_->SetReading(on);
  if (on) Feed();
}

void UpstreamLink::Release() {
  if (busy_ > 0) {
    release_pending_ = true;
  } else {
    delete this;
  }
}

void UpstreamLink::OnTransportData(absl::string_view data) {
  ++busy_;
  if (pending_input_.empty() && reading_) {
    size_t used = framer_.Feed(data, *this);
    data.remove_prefix(std::min(used, data.size()));
  }
  if (drop_clear_input_) {
    drop_clear_input_ = false;
    data = {};
    pending_input_.clear();
  }
  if (state_ != State::kDead && !data.empty()) {
    pending_input_.append(data.data(), data.size());
  }
  --busy_;
  Feed();
}

void UpstreamLink::Feed() {
  ++busy_;
  // Feed even with no bytes left: the framer may owe an event from a pause
  // (an OnEnd right after a paused OnLine).
  while (reading_ && state_ != State::kDead) {
    size_t used = framer_.Feed(pending_input_, *this);
    if (state_ == State::kDead) break;
    pending_input_.erase(0, used);
    if (drop_clear_input_) {
      drop_clear_input_ = false;
      pending_input_.clear();
    }
    if (used == 0 || pending_input_.empty()) break;
  }
  --busy_;
  if (busy_ == 0 && release_pending_) delete this;
}

void UpstreamLink::OnTransportDrained() {
  if (client_ != nullptr && state_ == State::kRelay) client_->OnStoreDrained();
}

void UpstreamLink::OnTransportClosed(absl::Status reason) {
  transport_ = nullptr;
  if (state_ != State::kRelay) {
    shard_->counters().upstream_connections.fetch_sub(
        1, std::memory_order_relaxed);
    // The reason matters here: a TLS failure (certificate not trusted, wrong
    // name) must be told apart from a store that hung up.
    FinishSetup(absl::UnavailableError(
        reason.ok() ? std::string("store closed the connection")
                    : absl::StrCat("store link: ", reason.message())));
    return;
  }
  state_ = State::kDead;
  shard_->counters().upstream_connections.fetch_sub(1, std::memory_order_relaxed);
  session::StoreLinkClient* client = client_;
  client_ = nullptr;
  if (client != nullptr) {
    client->OnStoreClosed(reason.ok() ? absl::UnavailableError(
                                            "store closed the connection")
                                      : reason);
  }
  Release();
}

bool UpstreamLink::OnLine(absl::string_view line, const imap::LiteralHeader* literal) {
  if (state_ != State::kRelay) {
    absl::Status s = assembler_.AddLine(line, literal);
    if (!s.ok()) FinishSetup(absl::UnavailableError(s.message()));
    return state_ != State::kDead;
  }
  if (!in_response_) {
    in_response_ = true;
    size_t space = line.find(' ');
    absl::string_view first = line.substr(0, space);
    current_tag_.clear();
    if (first != "*" && first != "+") current_tag_.assign(first.data(), first.size());
  }
  // The client may close this link from inside the first call (a device over its
  // output bound): check again before the second.
  if (client_ != nullptr) client_->OnStoreBytes(line);
  if (client_ != nullptr) client_->OnStoreBytes("\r\n");
  return reading_ && state_ == State::kRelay;
}

bool UpstreamLink::OnLiteralData(absl::string_view chunk) {
  if (state_ != State::kRelay) {
    absl::Status s = assembler_.AddLiteralData(chunk);
    if (!s.ok()) FinishSetup(absl::UnavailableError(s.message()));
    return state_ != State::kDead;
  }
  if (client_ != nullptr) client_->OnStoreBytes(chunk);
  return reading_ && state_ == State::kRelay;
}

bool UpstreamLink::OnEnd() {
  if (state_ != State::kRelay) {
    absl::StatusOr<imap::Response> response = assembler_.Finish();
    if (!response.ok() && state_ == State::kNamespace) {
      // An answer to the shard's NAMESPACE it cannot read: every folder then
      // counts as the user's own, and the login goes on.
      PIMAP_LOG(WARNING) << "store's NAMESPACE not understood ("
                         << response.status().message()
                         << "): every folder counts as the user's own";
      if (config_.namespaces->wanted()) config_.namespaces->LearnNone();
    } else if (!response.ok()) {
      FinishSetup(absl::UnavailableError(absl::StrCat(
          "unparsable store response: ", response.status().message())));
    } else {
      OnSetupResponse(*response);
    }
    // After STARTTLS's OK the framer stops: what follows in clear is dropped.
    return state_ != State::kDead && !drop_clear_input_;
  }
  in_response_ = false;
  if (client_ != nullptr) client_->OnStoreResponseEnd(current_tag_);
  return reading_ && state_ == State::kRelay;
}

bool UpstreamLink::OnError(const imap::FrameError& error) {
  // A store that breaks framing cannot be relayed faithfully any more.
  PIMAP_LOG(WARNING) << "store response framing error: " << error.message;
  if (state_ != State::kRelay) {
    FinishSetup(absl::UnavailableError(error.message));
    return false;
  }
  if (transport_ != nullptr) transport_->Abort();
  OnTransportClosed(absl::UnavailableError("store sent an invalid response"));
  return false;
}

void UpstreamLink::OnSetupResponse(const imap::Response& response) {
  using Kind = imap::Response::Kind;
  switch (state_) {
    case State::kGreeting:
      if (response.kind != Kind::kUntagged) return;
      if (response.name == "BYE") {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("store refused the connection: ", response.text)));
        return;
      }
      if (response.name == "PREAUTH") {
        FinishSetup(absl::UnavailableError("store pre-authenticated the connection"));
        return;
      }
      capabilities_ = CapabilitiesFromCode(response.code);
      if (config_.tls == StoreTls::kStartTls) {
        // Downgrade protection: no STARTTLS, no login (never in clear).
        if (!capabilities_.empty() &&
            !imap::HasCapability(capabilities_, "STARTTLS")) {
          FinishSetup(absl::UnavailableError(
              "the store does not offer STARTTLS (--store-tls starttls)"));
          return;
        }
        capabilities_.clear();  // learnt in clear: an attacker's, maybe
        state_ = State::kStartTls;
        transport_->Write(absl::StrCat(kStartTlsTag, " STARTTLS\r\n"));
        return;
      }
      state_ = State::kLogin;
      SendLogin();
      return;
    case State::kStartTls:
      if (response.kind == Kind::kUntagged && response.name == "BYE") {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("store closed: ", response.text)));
        return;
      }
      if (response.kind != Kind::kTagged || response.tag != kStartTlsTag)
        return;
      if (response.name != "OK") {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("the store refused STARTTLS: ", response.text)));
        return;
      }
      if (!StartTls()) return;
      drop_clear_input_ = true;
      state_ = State::kTlsCapability;
      transport_->SetHandler(this);  // sends the ClientHello
      if (transport_ != nullptr) transport_->Write("C CAPABILITY\r\n");
      return;
    case State::kTlsCapability:
      if (response.kind == Kind::kUntagged && response.name == "CAPABILITY") {
        capabilities_ = imap::CapabilitiesFrom(response);
      } else if (response.kind == Kind::kUntagged && response.name == "BYE") {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("store closed: ", response.text)));
      } else if (response.kind == Kind::kTagged) {
        state_ = State::kLogin;
        SendLogin();
      }
      return;
    case State::kLogin:
      if (response.kind == Kind::kContinuation) {
        // AUTHENTICATE PLAIN without SASL-IR: the store asks for the response.
        transport_->Write(absl::StrCat(
            imap::EncodeSaslPlain({credentials_.authzid, credentials_.user,
                                   credentials_.password}),
            "\r\n"));
        return;
      }
      if (response.kind == Kind::kUntagged) {
        if (response.name == "CAPABILITY") capabilities_ = imap::CapabilitiesFrom(response);
        if (response.name == "BYE") {
          FinishSetup(absl::UnavailableError(
              absl::StrCat("store closed: ", response.text)));
        }
        return;
      }
      // The answer to our ID: whatever it says, the login goes on.
      if (response.tag != kLoginTag) return;
      if (response.name == "OK") {
        std::vector<std::string> caps = CapabilitiesFromCode(response.code);
        if (!caps.empty()) {
          capabilities_ = std::move(caps);
          LoggedIn();
        } else {
          state_ = State::kCapability;
          transport_->Write("C CAPABILITY\r\n");
        }
      } else if (response.name == "NO" && CredentialsRefused(response.code)) {
        FinishSetup(absl::UnauthenticatedError(response.text));
      } else {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("store rejected the login: ", response.text)));
      }
      return;
    case State::kCapability:
      if (response.kind == Kind::kUntagged && response.name == "CAPABILITY") {
        capabilities_ = imap::CapabilitiesFrom(response);
      } else if (response.kind == Kind::kTagged) {
        LoggedIn();
      }
      return;
    case State::kNamespace:
      if (response.kind == Kind::kUntagged && response.name == "NAMESPACE") {
        absl::StatusOr<imap::Namespaces> namespaces =
            imap::Namespaces::FromResponse(response);
        // Another link of the shard may have answered meanwhile.
        if (namespaces.ok() && config_.namespaces->wanted()) {
          config_.namespaces->Learn(*std::move(namespaces));
        } else if (!namespaces.ok()) {
          PIMAP_LOG(WARNING) << "store's NAMESPACE not understood ("
                             << namespaces.status().message()
                             << "): every folder counts as the user's own";
          if (config_.namespaces->wanted()) config_.namespaces->LearnNone();
        }
      } else if (response.kind == Kind::kUntagged && response.name == "BYE") {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("store closed: ", response.text)));
      } else if (response.kind == Kind::kTagged) {
        // BAD, or a NO that is no passing condition: the store will not say,
        // and asking again would not help. After NO [UNAVAILABLE] (and the
        // like) the next link of the shard asks again.
        if (config_.namespaces->wanted() && response.name != "OK" &&
            (response.name == "BAD" || response.code.empty())) {
          config_.namespaces->LearnNone();
        }
        SendClientId();
      }
      return;
    case State::kClientId:
      // "* ID (...)" is the store's; its tagged answer ends the set-up
      // whatever it says (the ID only informs the store).
      if (response.kind == Kind::kUntagged && response.name == "BYE") {
        FinishSetup(absl::UnavailableError(
            absl::StrCat("store closed: ", response.text)));
      } else if (response.kind == Kind::kTagged) {
        FinishSetup(absl::OkStatus());
      }
      return;
    default:
      return;
  }
}

void UpstreamLink::LoggedIn() {
  if (config_.namespaces != nullptr && config_.namespaces->wanted()) {
    if (!imap::HasCapability(capabilities_, "NAMESPACE")) {
      config_.namespaces->LearnNone();
    } else {
      // Once per shard: every later link of the shard skips the round trip.
      state_ = State::kNamespace;
      transport_->Write(absl::StrCat(kNamespaceTag, " NAMESPACE\r\n"));
      return;
    }
  }
  SendClientId();
}

void UpstreamLink::SendClientId() {
  if (credentials_.client_id.empty() ||
      !imap::HasCapability(capabilities_, "ID")) {
    FinishSetup(absl::OkStatus());
    return;
  }
  // The device's own fields after the login (its own link only: see
  // StoreCredentials::client_id), with its address again for the store's
  // session log.
  std::string fields = std::exchange(credentials_.client_id, {});
  if (const std::string origin = OriginFields(credentials_.origin);
      !origin.empty()) {
    absl::StrAppend(&fields, " ", origin);
  }
  state_ = State::kClientId;
  transport_->Write(absl::StrCat(kClientIdTag, " ID (", fields, ")\r\n"));
}

void UpstreamLink::SendLogin() {
  std::string id;
  // Before the login, so that the store authenticates (and logs, and
  // limits) the device's address; pipelined: the login does not wait for it.
  if (const std::string origin = OriginFields(credentials_.origin);
      !origin.empty() && imap::HasCapability(capabilities_, "ID")) {
    id = absl::StrCat(kOriginTag, " ID (", origin, ")\r\n");
  }
  std::string command;
  if (imap::HasCapability(capabilities_, "AUTH=PLAIN")) {
    absl::StrAppend(&command, kLoginTag, " AUTHENTICATE PLAIN");
    if (imap::HasCapability(capabilities_, "SASL-IR")) {
      absl::StrAppend(&command, " ",
                      imap::EncodeSaslPlain({credentials_.authzid, credentials_.user,
                                             credentials_.password}));
    }
  } else {
    // A master user without SASL: Dovecot's "user<separator>master" name.
    absl::StrAppend(&command, kLoginTag, " LOGIN ");
    imap::AppendString(&command, credentials_.authzid.empty()
                                     ? credentials_.user
                                     : absl::StrCat(credentials_.authzid,
                                                    config_.master_separator,
                                                    credentials_.user));
    command += ' ';
    imap::AppendString(&command, credentials_.password);
    if (absl::StrContains(command, '\n')) {
      FinishSetup(absl::UnavailableError(
          "store offers no AUTH=PLAIN and the credentials need a literal"));
      return;
    }
  }
  command += "\r\n";
  transport_->Write(absl::StrCat(id, command));
}

void UpstreamLink::FinishSetup(absl::Status status) {
  if (state_ == State::kRelay || state_ == State::kDead) return;
  if (timeout_timer_ != 0) {
    shard_->timers().Cancel(timeout_timer_);
    timeout_timer_ = 0;
  }
  // The password is not needed any more; do not keep a secret around.
  std::fill(credentials_.password.begin(), credentials_.password.end(), '\0');
  credentials_.password.clear();
  auto done = std::move(done_);
  if (status.ok()) {
    state_ = State::kRelay;
    assembler_.Reset();
    shared_capabilities_ = Intern(std::move(capabilities_));
    capabilities_ = std::vector<std::string>();
    done(this);
    return;
  }
  state_ = State::kDead;
  alive_.reset();
  if (transport_ != nullptr) {
    shard_->counters().upstream_connections.fetch_sub(1, std::memory_order_relaxed);
    transport_->Abort();
    transport_ = nullptr;
  }
  if (done) done(status);
  Release();
}

void UpstreamLink::Close() {
  if (state_ == State::kDead) return;
  if (state_ != State::kRelay) {
    done_ = nullptr;
    FinishSetup(absl::CancelledError("closed"));
    return;
  }
  state_ = State::kDead;
  client_ = nullptr;
  if (transport_ != nullptr) {
    shard_->counters().upstream_connections.fetch_sub(1, std::memory_order_relaxed);
    transport_->Write("Z LOGOUT\r\n");
    transport_->Close();
    transport_ = nullptr;
  }
  Release();
}

}  // namespace pimap::store
