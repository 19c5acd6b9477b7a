#include "bench/loadgen/fleet.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/loadgen/probes.h"
#include "bindings/compress/deflate_transport.h"
#include "bindings/tls/tls_transport.h"

namespace pimap::bench {

namespace {

int64_t Mono() { return NowUs(); }

}  // namespace

const char* RelayKindName(int kind) {
  static const char* kNames[] = {"fetch", "fetch_flags_all", "store", "search"};
  return kind >= 0 && kind < Fleet::kRelayKinds ? kNames[kind] : "?";
}

// ---------------------------------------------------------------- Device

Device::Device(Fleet* fleet, int index, int user)
    : fleet_(fleet),
      framer_(imap::Framer::Mode::kResponses, imap::ParserLimits{}),
      index_(index),
      user_(user) {}

Device::~Device() = default;

void Device::Start() {
  state_ = State::kConnecting;
  started_us_ = Mono();
  fleet_->Connect(this);
}

void Device::OnConnected(engine::Socket* socket) {
  if (fleet_->closing() ||
      (state_ != State::kConnecting && state_ != State::kResumeConnecting)) {
    socket->Abort();
    return;
  }
  // TLS: the ClientHello goes at SetHandler.
  engine::Transport* transport = fleet_->Wrap(socket);
  if (transport == nullptr)
    return Fail("TLS: SSL_new failed", LastTlsErrorText());
  if (fleet_->config().http) {
    transport =
        new HttpTransport(fleet_, transport, &fleet_->config().http_target);
  }
  socket_ = transport;
  if (state_ == State::kResumeConnecting) {
    state_ = State::kResumeGreeting;
    counting_bytes_ = true;
  } else {
    fleet_->counters().connected.fetch_add(1, std::memory_order_relaxed);
    state_ = State::kGreeting;
  }
  socket_->SetHandler(this);
  // HTTP has no greeting: the login batch goes at once.
  if (fleet_->config().http && socket_ != nullptr) SendLogin();
}

void Device::SendLogin() {
  state_ = state_ == State::kGreeting ? State::kLogin : State::kResumeLogin;
  tag_ = absl::StrCat("a", ++tag_seq_);
  // The resume scenario's devices have names of their own, so that sessions
  // left by earlier runs against the same gateway do not interfere.
  const std::string login =
      fleet_->config().device_logins
          ? absl::StrCat(fleet_->options().user_prefix, user_,
                         fleet_->config().resume ? "#res" : "#dev", index_)
          : absl::StrCat(fleet_->options().user_prefix, user_);
  std::string cmd = absl::StrCat(tag_, " LOGIN \"", login, "\" \"",
                                 fleet_->options().password, "\"\r\n");
  // HTTP: one batch logs in and selects (a resume is the LOGIN alone).
  select_batched_ = fleet_->config().http && state_ == State::kLogin;
  if (select_batched_)
    absl::StrAppend(&cmd, "a", tag_seq_ + 1, " SELECT INBOX\r\n");
  Send(std::move(cmd));
}

void Device::OnConnectFailed(int err, const char* what) {
  if (fleet_->closing()) {
    state_ = State::kDone;
    return;
  }
  Fail(ConnectErrorKind(err), absl::StrCat(what, ": ", strerror(err)));
}

void Device::Send(std::string cmd) {
  if (socket_ != nullptr) socket_->Write(std::move(cmd));
}

void Device::Fail(const std::string& kind, const std::string& detail) {
  const State was = state_;
  state_ = State::kFailed;
  if (timer_ != 0) {
    fleet_->shard()->timers().Cancel(timer_);
    timer_ = 0;
  }
  if (socket_ != nullptr) {
    socket_->Abort();
    socket_ = nullptr;
  }
  const bool during_setup = ready_at_us_ == 0;
  fleet_->RecordError(kind, absl::StrCat("device ", index_, ": ", detail));
  if (rs_.parked) {  // failed during the resume
    counting_bytes_ = false;
    if (!rs_.synced) fleet_->ResumeFinished(this, false);
    if (!rs_.finished) {
      rs_.finished = true;
      fleet_->ResumeDone();
    }
    return;
  }
  if (was == State::kRelayBusy) {
    fleet_->counters().relay_busy.fetch_sub(1, std::memory_order_relaxed);
    fleet_->counters().relay_failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (during_setup) {
    fleet_->SetupFinished(this, false, 0);
  } else {
    fleet_->counters().lost.fetch_add(1, std::memory_order_relaxed);
    fleet_->shared()->ready_per_user[user_].fetch_sub(1, std::memory_order_relaxed);
  }
}

void Device::Close() {
  if (timer_ != 0) {
    fleet_->shard()->timers().Cancel(timer_);
    timer_ = 0;
  }
  if (socket_ != nullptr) {
    socket_->Close();
    socket_ = nullptr;
  }
  if (state_ != State::kFailed) state_ = State::kDone;
}

void Device::OnTransportData(absl::string_view data) {
  if (counting_bytes_) rs_.bytes += static_cast<int64_t>(data.size());
  // Feed consumes everything (the visitor pauses only at COMPRESS's OK) unless
  // the stream is broken.
  while (!data.empty() && socket_ != nullptr) {
    size_t n = framer_.Feed(data, *this);
    if (framer_.fatal()) break;
    data.remove_prefix(n);
    if (compress_switch_) {
      // Everything after the tagged OK is compressed (RFC 4978 §3): what
      // came with it goes to the inflater first.
      compress_switch_ = false;
      auto* deflate =
          new compress::DeflateTransport(socket_, compress::DeflateConfig{},
                                         nullptr, &fleet_->shard()->timers());
      socket_ = deflate;
      deflate->Feed(data);
      socket_->SetHandler(this);
      state_ = State::kSelect;
      tag_ = absl::StrCat("a", ++tag_seq_);
      Send(absl::StrCat(tag_, " SELECT INBOX\r\n"));
      return;
    }
    if (n == 0) break;
  }
}

void Device::OnTransportClosed(absl::Status reason) {
  socket_ = nullptr;
  if (state_ == State::kDone || state_ == State::kFailed || state_ == State::kResumed ||
      state_ == State::kParked)
    return;
  if (state_ == State::kLogout) {
    state_ = State::kDone;
    fleet_->LogoutDone();
    return;
  }
  if (state_ == State::kResumeLogout) {  // the server closed after BYE: fine
    state_ = State::kResumed;
    rs_.finished = true;
    fleet_->ResumeDone();
    return;
  }
  static const char* kStates[] = {"new", "connecting", "greeting", "login", "select",
                                  "idle-start", "idle", "relay-ready", "relay-busy",
                                  "relay-think", "done", "failed", "model-fetch",
                                  "model-ready", "parked", "resume-connecting",
                                  "resume-greeting", "resume-login", "resume-select",
                                  "resume-fetch", "resume-noop", "resume-logout", "resumed",
                                  "logout", "wake-probe"};
  const std::string where = kStates[static_cast<int>(state_)];
  if (absl::StartsWith(reason.message(), "HTTP")) {
    return Fail(ready_at_us_ == 0 ? "HTTP error during set-up"
                                  : "HTTP error after set-up",
                absl::StrCat("in state ", where, ": ", reason.message()));
  }
  if (absl::StartsWith(reason.message(), "TLS")) {
    return Fail(ready_at_us_ == 0 ? "TLS failure during set-up" : "TLS failure after set-up",
                absl::StrCat("in state ", where, ": ", reason.message()));
  }
  Fail(ready_at_us_ == 0 ? "connection closed during set-up" : "connection lost after set-up",
       absl::StrCat("in state ", where, ": ", reason.ok() ? "closed by peer" : reason.ToString()));
}

bool Device::OnError(const imap::FrameError& error) {
  Fail("malformed response", error.message);
  return false;
}

bool Device::OnLine(absl::string_view line, const imap::LiteralHeader*) {
  if (state_ == State::kFailed || state_ == State::kDone) return false;
  if (absl::ConsumePrefix(&line, "* ")) {
    if (state_ == State::kGreeting || state_ == State::kResumeGreeting) {
      if (absl::StartsWithIgnoreCase(line, "OK")) {
        SendLogin();
      } else {
        Fail("bad greeting", std::string(line));
      }
      return true;
    }
    if (absl::StartsWithIgnoreCase(line, "BYE")) {
      if (state_ == State::kResumeLogout || state_ == State::kLogout) return true;
      Fail(ready_at_us_ == 0 ? "BYE during set-up" : "BYE after set-up", std::string(line));
      return false;
    }
    if (resume_state() || (state_ == State::kSelect && fleet_->config().resume)) {
      ApplyUntagged(line);
      return true;
    }
    // "* n EXISTS"
    size_t sp = line.find(' ');
    uint32_t n = 0;
    if (sp != absl::string_view::npos && absl::EqualsIgnoreCase(line.substr(sp + 1), "EXISTS") &&
        absl::SimpleAtoi(line.substr(0, sp), &n)) {
      if (state_ == State::kSelect) {
        base_exists_ = last_exists_ = n;
      } else if (ready_at_us_ != 0) {
        if (n > last_exists_) {
          fleet_->counters().notified.fetch_add(n - last_exists_, std::memory_order_relaxed);
          events_.emplace_back(n, Mono());
        }
        last_exists_ = n;
      }
    }
    return true;
  }
  if (line.empty()) return true;
  if (line[0] == '+') {
    if (state_ == State::kIdleStart) {
      state_ = State::kIdle;
      BecomeReady();
    }
    return true;
  }
  if (state_ == State::kWakeProbe) {
    // The IDLE's own tagged end comes first; the probe's answer (any status: an
    // empty mailbox is fine) ends the measurement.
    if (absl::StartsWith(line, tag_ + " ")) {
      fleet_->WakeFinished(Mono() - wake_start_us_);
      state_ = State::kLogout;
      tag_ = absl::StrCat("z", ++tag_seq_);
      Send(absl::StrCat(tag_, " LOGOUT\r\n"));
    }
    return true;
  }
  if (state_ == State::kLogout) {
    if (absl::StartsWith(line, tag_ + " ")) {
      if (socket_ != nullptr) {
        socket_->Close();
        socket_ = nullptr;
      }
      state_ = State::kDone;
      fleet_->LogoutDone();
    }
    return true;
  }
  // tagged
  if (!tag_.empty() && line.size() > tag_.size() && absl::StartsWith(line, tag_) &&
      line[tag_.size()] == ' ') {
    absl::string_view rest = line.substr(tag_.size() + 1);
    size_t sp = rest.find(' ');
    absl::string_view status = rest.substr(0, sp);
    absl::string_view text = sp == absl::string_view::npos ? "" : rest.substr(sp + 1);
    OnTagged(status, text);
  }
  return !compress_switch_;  // the rest of this input is compressed
}

void Device::OnTagged(absl::string_view status, absl::string_view rest) {
  const bool ok = absl::EqualsIgnoreCase(status, "OK");
  switch (state_) {
    case State::kLogin:
      if (!ok) return Fail("LOGIN refused", absl::StrCat(status, " ", rest));
      if (fleet_->config().compress) {
        state_ = State::kCompress;
        tag_ = absl::StrCat("a", ++tag_seq_);
        Send(absl::StrCat(tag_, " COMPRESS DEFLATE\r\n"));
        return;
      }
      state_ = State::kSelect;
      tag_ = absl::StrCat("a", ++tag_seq_);
      if (!select_batched_) Send(absl::StrCat(tag_, " SELECT INBOX\r\n"));
      return;
    case State::kCompress:
      if (!ok) return Fail("COMPRESS refused", absl::StrCat(status, " ", rest));
      compress_switch_ = true;  // OnTransportData switches, then SELECTs
      return;
    case State::kSelect:
      if (!ok) return Fail("SELECT refused", absl::StrCat(status, " ", rest));
      if (fleet_->config().resume) {
        // The device's model before it goes away: every message's UID and flags.
        state_ = State::kModelFetch;
        if (model_.empty()) return OnResumeTagged(true, "OK", "");
        SendCmd("FETCH 1:* (UID FLAGS)");
        return;
      }
      if (fleet_->config().idle) {
        state_ = State::kIdleStart;
        tag_ = absl::StrCat("a", ++tag_seq_);
        Send(absl::StrCat(tag_, " IDLE\r\n"));
      } else {
        state_ = State::kRelayReady;
        BecomeReady();
      }
      return;
    case State::kIdleStart:
    case State::kIdle:
      if (fleet_->config().http && ok && state_ == State::kIdle) {
        // The long poll reached pimapd's --http-idle-max: poll again.
        tag_ = absl::StrCat("a", ++tag_seq_);
        Send(absl::StrCat(tag_, " IDLE\r\n"));
        return;
      }
      return Fail("IDLE ended by server", absl::StrCat(status, " ", rest));
    case State::kRelayBusy: {
      const int64_t us = Mono() - cmd_sent_us_;
      fleet_->counters().relay_busy.fetch_sub(1, std::memory_order_relaxed);
      fleet_->RecordRelay(cmd_kind_, us, ok);
      if (!ok) {
        fleet_->RecordError(absl::StrCat("relay ", RelayKindName(cmd_kind_), " not OK"),
                            absl::StrCat(status, " ", rest));
      }
      if (!fleet_->relay_running()) {
        state_ = State::kRelayReady;
        return;
      }
      if (fleet_->think_ms() > 0) {
        state_ = State::kRelayThink;
        timer_ = fleet_->shard()->timers().Schedule(
            static_cast<int64_t>(fleet_->think_ms()), [this] {
              timer_ = 0;
              if (state_ == State::kRelayThink) NextRelayCommand();
            });
        return;
      }
      NextRelayCommand();
      return;
    }
    default:
      if (resume_state()) OnResumeTagged(ok, status, rest);
      return;
  }
}

void Device::SendCmd(const std::string& cmd) {
  tag_ = absl::StrCat("a", ++tag_seq_);
  Send(absl::StrCat(tag_, " ", cmd, "\r\n"));
}

void Device::ModelError(const std::string& what) {
  if (rs_.model_error.empty()) rs_.model_error = what;
}

// Untagged responses while the device keeps a model of INBOX (resume scenario): the
// model FETCH before parking, and everything after the reconnect.
void Device::ApplyUntagged(absl::string_view line) {
  if (absl::EqualsIgnoreCase(line, "RESYNC")) {
    rs_.resync = true;
    model_.clear();  // the EXISTS that follows gives the size; contents unknown
    return;
  }
  if (absl::StartsWithIgnoreCase(line, "SESSION SELECTED")) {
    rs_.session_selected = true;
    return;
  }
  if (absl::StartsWithIgnoreCase(line, "FOLDER ")) {
    absl::string_view f = line.substr(7);
    if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = f.substr(1, f.size() - 2);
    rs_.folder = std::string(f);
    return;
  }
  const size_t sp = line.find(' ');
  uint32_t n = 0;
  if (sp == absl::string_view::npos || !absl::SimpleAtoi(line.substr(0, sp), &n)) return;
  absl::string_view rest = line.substr(sp + 1);
  const bool login = state_ == State::kResumeLogin;
  const bool late = state_ == State::kResumeNoop;
  if (absl::EqualsIgnoreCase(rest, "EXISTS")) {
    if (n < model_.size()) {
      return ModelError(absl::StrCat("* ", n, " EXISTS with ", model_.size(),
                                     " messages in the model (no EXPUNGE)"));
    }
    const int added = static_cast<int>(n - model_.size());
    if (login && !rs_.resync) rs_.new_signalled += added;
    if (late) rs_.late_events += added;
    model_.resize(n);
    return;
  }
  if (absl::EqualsIgnoreCase(rest, "EXPUNGE")) {
    if (n == 0 || n > model_.size())
      return ModelError(absl::StrCat("* ", n, " EXPUNGE with ", model_.size(), " messages"));
    model_.erase(model_.begin() + (n - 1));
    if (login) ++rs_.expunges;
    if (late) ++rs_.late_events;
    return;
  }
  if (absl::StartsWithIgnoreCase(rest, "FETCH ")) {
    if (n == 0 || n > model_.size())
      return ModelError(absl::StrCat("* ", n, " FETCH with ", model_.size(), " messages"));
    uint32_t uid = 0;
    bool has_flags = false;
    std::string flags;
    ParseFetchAttrs(std::string(rest.substr(6)), &uid, &has_flags, &flags);
    ModelMsg& m = model_[n - 1];
    if (uid != 0 && m.uid != 0 && uid != m.uid) {
      return ModelError(absl::StrCat("* ", n, " FETCH (UID ", uid, ") but the model has UID ",
                                     m.uid, " at that number"));
    }
    if (uid != 0) m.uid = uid;
    if (has_flags) {
      m.flags = flags;
      m.flags_known = true;
    }
    if (login) ++rs_.fetches;
    if (late) ++rs_.late_events;
  }
}

void Device::OnResumeTagged(bool ok, absl::string_view status, absl::string_view rest) {
  const std::string what = absl::StrCat(status, " ", rest);
  const bool pimap = fleet_->config().device_logins;
  switch (state_) {
    case State::kModelFetch: {
      if (!ok) return Fail("model FETCH refused", what);
      uint32_t max_uid = 0;
      for (size_t i = 0; i < model_.size(); ++i) {
        const ModelMsg& m = model_[i];
        if (m.uid == 0 || !m.flags_known) {
          // An EXISTS may legally arrive after the FETCH's data (IMAP lets a
          // server report new mail during any command): fetch the rest, as a
          // client would, a few times; counted, and an error only after that.
          if (rs_.model_refetches < 3) {
            ++rs_.model_refetches;
            SendCmd(absl::StrCat("FETCH ", i + 1, ":* (UID FLAGS)"));
            return;
          }
          return Fail("model FETCH incomplete",
                      absl::StrCat("message ", i + 1, " of ", model_.size(),
                                   " without ", m.uid == 0 ? "UID" : "FLAGS",
                                   " after ", rs_.model_refetches,
                                   " refetches"));
        }
        max_uid = std::max(max_uid, m.uid);
      }
      rs_.pre_count = model_.size();
      rs_.pre_max_uid = max_uid;
      state_ = State::kModelReady;
      BecomeReady();
      return;
    }
    case State::kResumeLogin:
      if (!ok) return Fail("resume LOGIN refused", what);
      rs_.login_us = Mono() - rs_.start_us;
      if (!pimap) {  // plain IMAP: full resynchronisation
        model_.clear();
        state_ = State::kResumeSelect;
        SendCmd("SELECT INBOX");
        return;
      }
      if (!rs_.session_selected) ModelError("no * SESSION SELECTED in the resume LOGIN response");
      if (rs_.resync) {
        state_ = State::kResumeFetch;
        rs_.resync_fetch_bytes = -rs_.bytes;
        if (model_.empty()) return OnResumeTagged(true, "OK", "");
        SendCmd("FETCH 1:* (UID FLAGS)");
        return;
      }
      return Synced();
    case State::kResumeSelect:
      if (!ok) return Fail("resume SELECT refused", what);
      state_ = State::kResumeFetch;
      if (model_.empty()) return OnResumeTagged(true, "OK", "");
      SendCmd("FETCH 1:* (UID FLAGS)");
      return;
    case State::kResumeFetch:
      if (!ok) return Fail("resume FETCH refused", what);
      for (const ModelMsg& m : model_) {
        if (m.uid == 0 || !m.flags_known) {
          ModelError("FETCH 1:* (UID FLAGS) left a message without UID or FLAGS");
          break;
        }
      }
      if (rs_.resync) rs_.resync_fetch_bytes += rs_.bytes;
      return Synced();
    case State::kResumeNoop:
      if (!ok) return Fail("NOOP after resume refused", what);
      state_ = State::kResumeLogout;
      SendCmd("LOGOUT");
      return;
    case State::kResumeLogout:
      state_ = State::kResumed;
      rs_.finished = true;
      if (socket_ != nullptr) {
        socket_->Close();
        socket_ = nullptr;
      }
      fleet_->ResumeDone();
      return;
    default:
      return;
  }
}

void Device::Synced() {
  rs_.synced = true;
  rs_.synced_us = Mono() - rs_.start_us;
  counting_bytes_ = false;
  fleet_->ResumeFinished(this, true);
  if (fleet_->config().device_logins) {
    // Events the journal had not rendered by the LOGIN (late) show up here.
    state_ = State::kResumeNoop;
    SendCmd("NOOP");
  } else {
    state_ = State::kResumeLogout;
    SendCmd("LOGOUT");
  }
}

bool Device::Logout() {
  if (socket_ == nullptr) return false;
  switch (state_) {
    case State::kIdle:
      if (timer_ != 0) {
        fleet_->shard()->timers().Cancel(timer_);
        timer_ = 0;
      }
      state_ = State::kWakeProbe;
      tag_ = absl::StrCat("w", ++tag_seq_);
      wake_start_us_ = Mono();
      Send(absl::StrCat("DONE\r\n", tag_, " UID FETCH 1:* (FLAGS)\r\n"));
      return true;
    case State::kRelayReady:
    case State::kRelayThink:
    case State::kModelReady:
      break;
    default:
      return false;  // in set-up, busy, or already gone: just closed later
  }
  if (timer_ != 0) {
    fleet_->shard()->timers().Cancel(timer_);
    timer_ = 0;
  }
  state_ = State::kLogout;
  tag_ = absl::StrCat("z", ++tag_seq_);
  Send(absl::StrCat(tag_, " LOGOUT\r\n"));
  return true;
}

void Device::Park() {
  if (state_ != State::kModelReady) return;
  if (socket_ != nullptr) {
    socket_->Close();  // no LOGOUT: the session must outlive the connection
    socket_ = nullptr;
  }
  state_ = State::kParked;
  rs_.parked = true;
}

void Device::StartResume() {
  state_ = State::kResumeConnecting;
  rs_.start_us = Mono();
  fleet_->Connect(this);
}

void Device::BecomeReady() {
  ready_at_us_ = Mono();
  fleet_->SetupFinished(this, true, ready_at_us_ - started_us_);
}

void Device::BeginRelay() {
  if (state_ == State::kRelayReady) NextRelayCommand();
}

void Device::NextRelayCommand() {
  if (!fleet_->relay_running() || socket_ == nullptr) {
    state_ = State::kRelayReady;
    return;
  }
  std::mt19937_64& rng = fleet_->rng();
  const uint32_t count = last_exists_;
  const int roll = static_cast<int>(rng() % 100);
  // 45% single-message FETCH, 5% FETCH 1:* FLAGS, 25% STORE, 25% SEARCH.
  int kind = roll < 45 ? 0 : roll < 50 ? 1 : roll < 75 ? 2 : 3;
  if (count == 0 && (kind == 0 || kind == 2)) kind = 3;
  tag_ = absl::StrCat("r", ++tag_seq_);
  std::string cmd;
  const uint32_t msg = count == 0 ? 1 : 1 + static_cast<uint32_t>(rng() % count);
  switch (kind) {
    case 0:
      cmd = absl::StrCat(tag_, " FETCH ", msg,
                         " (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM DATE)])\r\n");
      break;
    case 1:
      cmd = absl::StrCat(tag_, " FETCH 1:* (FLAGS)\r\n");
      break;
    case 2:
      flag_toggle_ = !flag_toggle_;
      cmd = absl::StrCat(tag_, " STORE ", msg, flag_toggle_ ? " +FLAGS" : " -FLAGS",
                         " (\\Flagged)\r\n");
      break;
    default:
      cmd = absl::StrCat(tag_, (rng() & 1) ? " SEARCH UNSEEN\r\n" : " UID SEARCH FLAGGED\r\n");
      break;
  }
  cmd_kind_ = kind;
  state_ = State::kRelayBusy;
  fleet_->counters().relay_busy.fetch_add(1, std::memory_order_relaxed);
  cmd_sent_us_ = Mono();
  Send(std::move(cmd));
}

// ---------------------------------------------------------------- Fleet

Fleet::Fleet(engine::Shard* shard, const Options& options, const PhaseConfig& config,
             FleetShared* shared, std::vector<int> device_indexes, int max_inflight,
             double connect_rate)
    : shard_(shard),
      options_(options),
      config_(config),
      shared_(shared),
      max_inflight_(max_inflight < 1 ? 1 : max_inflight),
      connect_rate_(connect_rate),
      rng_(options.seed * 1000003ull + static_cast<uint64_t>(shard->id())) {
  const int users = options.effective_users();
  devices_.reserve(device_indexes.size());
  for (int i : device_indexes) devices_.push_back(std::make_unique<Device>(this, i, i % users));
  setup_us_.reserve(device_indexes.size());
}

Fleet::~Fleet() = default;

void Fleet::StartRamp() {
  ramp_start_us_ = Mono();
  Pump();
}

void Fleet::Pump() {
  if (closing_) return;
  int64_t allowed = static_cast<int64_t>(devices_.size());
  if (connect_rate_ > 0) {
    allowed = 1 + static_cast<int64_t>(static_cast<double>(Mono() - ramp_start_us_) *
                                       connect_rate_ / 1e6);
  }
  while (next_launch_ < devices_.size() && inflight_ < max_inflight_ &&
         static_cast<int64_t>(next_launch_) < allowed) {
    Device* d = devices_[next_launch_++].get();
    ++inflight_;
    counters_.launched.fetch_add(1, std::memory_order_relaxed);
    d->Start();
    if (closing_) return;
  }
  if (next_launch_ < devices_.size() && inflight_ < max_inflight_ && pump_timer_ == 0) {
    pump_timer_ = shard_->timers().Schedule(5, [this] {
      pump_timer_ = 0;
      Pump();
    });
  }
}

void Fleet::Connect(ConnectClient* c) {
  const in_addr* source = nullptr;
  if (!options_.source_addrs.empty()) {
    const uint64_t n = shared_->next_source.fetch_add(1, std::memory_order_relaxed);
    source = &options_.source_addrs[n % options_.source_addrs.size()];
  }
  StartConnect(shard_, config_.addr, config_.addr_len, source, c);
}

engine::Transport* Fleet::Wrap(engine::Socket* socket) {
  if (config_.tls == nullptr) return socket;
  SSL* ssl = config_.tls->NewSsl();
  if (ssl == nullptr) {
    socket->Abort();
    return nullptr;
  }
  return new tls::TlsTransport(socket, ssl);
}

void Fleet::SetupFinished(Device* d, bool ok, int64_t setup_us) {
  --inflight_;
  if (ok) {
    counters_.ready.fetch_add(1, std::memory_order_relaxed);
    shared_->ready_per_user[d->user()].fetch_add(1, std::memory_order_relaxed);
    setup_us_.push_back(setup_us);
  } else {
    counters_.setup_failed.fetch_add(1, std::memory_order_relaxed);
  }
  // Not from inside the device's own callback stack: launch on the next loop turn.
  if (!closing_ && pump_timer_ == 0 && next_launch_ < devices_.size()) {
    pump_timer_ = shard_->timers().Schedule(0, [this] {
      pump_timer_ = 0;
      Pump();
    });
  }
}

void Fleet::StartRelay(double think_ms) {
  think_ms_ = think_ms;
  relay_running_ = true;
  relay_stopping_ = false;
  for (auto& d : devices_) d->BeginRelay();
}

void Fleet::ParkAll() {
  for (auto& d : devices_) d->Park();
}

void Fleet::LogoutAll() {
  for (auto& d : devices_) {
    if (d->Logout()) counters_.logout_sent.fetch_add(1, std::memory_order_relaxed);
  }
  counters_.logout_posted.store(1, std::memory_order_release);
}

void Fleet::StartResume() {
  resuming_ = true;
  next_launch_ = 0;
  inflight_ = 0;
  ResumePump();
}

void Fleet::ResumePump() {
  if (closing_) return;
  while (next_launch_ < devices_.size() && inflight_ < max_inflight_) {
    Device* d = devices_[next_launch_++].get();
    if (!d->resume().parked) continue;
    ++inflight_;
    counters_.resume_launched.fetch_add(1, std::memory_order_relaxed);
    d->StartResume();
    if (closing_) return;
  }
}

void Fleet::ResumeFinished(Device*, bool ok) {
  --inflight_;
  (ok ? counters_.resumed : counters_.resume_failed).fetch_add(1, std::memory_order_relaxed);
  if (!closing_ && pump_timer_ == 0 && next_launch_ < devices_.size()) {
    pump_timer_ = shard_->timers().Schedule(0, [this] {
      pump_timer_ = 0;
      ResumePump();
    });
  }
}

void Fleet::ResumeDone() {
  counters_.resume_finished.fetch_add(1, std::memory_order_relaxed);
}

void Fleet::CloseAll() {
  closing_ = true;
  if (pump_timer_ != 0) {
    shard_->timers().Cancel(pump_timer_);
    pump_timer_ = 0;
  }
  for (auto& d : devices_) d->Close();
}

void Fleet::RecordError(const std::string& kind, const std::string& detail) {
  std::lock_guard<std::mutex> lock(errors_mu_);
  ++errors_[kind];
  if (!error_examples_.count(kind)) error_examples_[kind] = detail;
}

void Fleet::RecordRelay(int kind, int64_t us, bool ok) {
  if (ok) {
    counters_.relay_done.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters_.relay_failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (relay_us_.size() < 4000000) relay_us_.push_back(us);
  relay_count[kind] += 1;
  relay_sum_us[kind] += us;
}

std::map<std::string, int64_t> Fleet::errors() const {
  std::lock_guard<std::mutex> lock(errors_mu_);
  return errors_;
}

std::map<std::string, std::string> Fleet::error_examples() const {
  std::lock_guard<std::mutex> lock(errors_mu_);
  return error_examples_;
}

}  // namespace pimap::bench
