// A device's P-IMAP session over HTTP: POST bodies in, responses out
// (http_session.h).
#include "bindings/http/http_session.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/base/shard_for_user.h"
#include "core/cluster/shard_cluster.h"
#include "core/imap/command.h"
#include "core/imap/writer.h"
#include "core/session/terse.h"

namespace pimap::http_binding {

namespace {

// Output held before a response's head is written; past it the response
// streams (chunked) so that a large answer is not buffered whole.
constexpr size_t kMaxHeldOutput = 64 * 1024;
// Backpressure: above this much unsent output the driver stops reading the
// store (as over TCP).
constexpr size_t kOutputHighWater = 256 * 1024;
// A goodbye written while no request is open waits for the next one.
constexpr size_t kMaxStash = 4096;
// Persistent mode holds the start of a response line for its end up to this.
constexpr size_t kMaxLinePiece = 16 * 1024;

// Responses are framed only to find tagged lines: no line needs buffering past
// this, and literals are never held.
imap::ParserLimits ScannerLimits() {
  imap::ParserLimits limits;
  limits.max_line_bytes = 8 * 1024;
  limits.max_literal_bytes = uint64_t{1} << 62;
  return limits;
}

bool IsIdleLine(absl::string_view line) {
  absl::StatusOr<imap::CommandHead> head = imap::ParseCommandHead(line);
  return head.ok() && head->name == "IDLE";
}

// The tag a command line will be answered with (empty: none, the BAD goes
// out untagged).
std::string TagOf(absl::string_view line) {
  absl::StatusOr<imap::CommandHead> head = imap::ParseCommandHead(line);
  if (head.ok()) return head->tag;
  return session::TagOfBadLine(line);
}

// Collects one command of a body for FirstLoginUser.
class LoginFinder final : public imap::Framer::Visitor {
 public:
  LoginFinder(const imap::ParserLimits& limits,
              const imap::UserNameFormat* user_name_format)
      : assembler_(limits, session::CommandRouter::kLocalCommandBytes),
        user_name_format_(user_name_format) {}
  bool OnLine(absl::string_view line,
              const imap::LiteralHeader* literal) override {
    (void)assembler_.AddLine(line, literal);
    return true;
  }
  bool OnLiteralData(absl::string_view chunk) override {
    (void)assembler_.AddLiteralData(chunk);
    return true;
  }
  bool OnEnd() override {
    absl::StatusOr<imap::Command> command = assembler_.Finish();
    if (!command.ok() || user.has_value()) return true;
    session::PreAuthStep step = session::ExecutePreAuth(
        *command, {false, true, false, user_name_format_});
    if (step.action == session::PreAuthStep::Action::kLogin) {
      user = step.login.name.user;
    }
    return !user.has_value();
  }
  bool OnError(const imap::FrameError&) override {
    assembler_.Reset();
    return true;
  }
  std::optional<std::string> user;

 private:
  imap::CommandAssembler assembler_;
  const imap::UserNameFormat* user_name_format_;
};

}  // namespace

std::optional<std::string> FirstLoginUser(
    absl::string_view body, const imap::ParserLimits& limits,
    const imap::UserNameFormat* user_name_format) {
  imap::Framer framer(imap::Framer::Mode::kCommands, limits);
  LoginFinder finder(limits, user_name_format);
  framer.Feed(body, finder);
  return finder.user;
}

// ---- Life ------------------------------------------------------------------

HttpSession::PreAuthRouter::PreAuthRouter(HttpSession* s)
    : CommandRouter(&s->counters_, s, s->config_.limits), s_(s) {}

HttpSession::HttpSession(HttpSessionOwner* owner, bool secure,
                         bool stale_cookie)
    : owner_(owner),
      config_(owner->session_config()),
      counters_(owner->counters()),
      timers_(owner->timers()),
      framer_(imap::Framer::Mode::kCommands, config_.limits),
      out_framer_(imap::Framer::Mode::kResponses, ScannerLimits()),
      alive_(std::make_shared<bool>(true)),
      secure_(secure),
      stale_cookie_(stale_cookie) {
  GaugeAdd(counters_.http_sessions, 1);
}

HttpSession::~HttpSession() {
  GaugeAdd(counters_.http_sessions, -1);
  if (idle_max_timer_ != 0) timers_.Cancel(idle_max_timer_);
  if (expiry_timer_ != 0) timers_.Cancel(expiry_timer_);
  if (driver_ != nullptr) driver_->Release();
  if (pre_auth_ != nullptr) pre_auth_->Release();
}

HttpSession::Busy::~Busy() {
  if (--s_->busy_ == 0 && s_->free_pending_) delete s_;
}

void HttpSession::Free() {
  if (free_pending_) return;
  free_pending_ = true;
  alive_.reset();
  if (busy_ == 0) delete this;
}

session::SessionDriver& HttpSession::commands() {
  if (driver_ != nullptr) return *driver_;
  if (pre_auth_ == nullptr) pre_auth_ = new PreAuthRouter(this);
  return *pre_auth_;
}

// ---- Input ------------------------------------------------------------------

bool HttpSession::Submit(std::string body, ResponseSink* sink) {
  if (state_ == State::kEnded || exchanges_.size() >= config_.max_exchanges ||
      (!exchanges_.empty() && exchanges_.back()->duplex)) {
    return false;
  }
  Busy busy(this);
  last_request_ms_ = MonotonicNowMs();
  client_ = sink->client_address();
  // Everything the responses so far carried is acknowledged by this request
  // (it was written before the request arrived); its own response is not.
  if (driver_ != nullptr) driver_->OnInputArrived();
  if (!idle_tag_.empty()) {
    // A long poll is open: this request ends it, with its own DONE or with
    // one the gateway puts in front (at most one long poll per session).
    const bool has_done =
        body.size() >= 4 && absl::EqualsIgnoreCase(body.substr(0, 4), "DONE") &&
        (body.size() == 4 || body[4] == '\r' || body[4] == '\n');
    if (!has_done) body.insert(0, "DONE\r\n");
    // This request ends the IDLE: the idle-max timer must not add a DONE.
    if (idle_max_timer_ != 0) timers_.Cancel(idle_max_timer_);
    idle_max_timer_ = 0;
  }
  auto exchange = std::make_unique<Exchange>();
  exchange->sink = sink;
  exchange->body = std::move(body);
  exchange->fed = exchange->body.empty();
  exchanges_.push_back(std::move(exchange));
  if (exchanges_.size() == 1 && !stash_.empty()) {
    // (The output framer saw these bytes when they were stashed.)
    Deliver(*exchanges_.front(), std::exchange(stash_, {}));
  }
  Pump();
  CompleteReady();
  return true;
}

bool HttpSession::Open(ResponseSink* sink, bool head_sent) {
  if (state_ == State::kEnded || !exchanges_.empty()) return false;
  Busy busy(this);
  last_request_ms_ = MonotonicNowMs();
  client_ = sink->client_address();
  auto exchange = std::make_unique<Exchange>();
  exchange->sink = sink;
  exchange->duplex = true;
  exchange->input_open = true;
  exchange->head_sent = head_sent;
  exchange->streaming = head_sent;
  Exchange& e = *exchange;
  exchanges_.push_back(std::move(exchange));
  StartStreaming(e);
  if (!stash_.empty()) Deliver(e, std::exchange(stash_, {}));
  return true;
}

void HttpSession::Append(absl::string_view bytes) {
  if (exchanges_.empty() || !exchanges_.back()->duplex) return;
  Busy busy(this);
  Exchange& e = *exchanges_.back();
  e.more.append(bytes.data(), bytes.size());
  last_request_ms_ = MonotonicNowMs();
  // A command from the device: what it was sent before is acknowledged, as
  // over TCP.
  if (driver_ != nullptr) driver_->OnInputArrived();
  e.fed = false;
  Pump();
}

void HttpSession::EndInput() {
  if (exchanges_.empty() || !exchanges_.back()->duplex) return;
  Busy busy(this);
  exchanges_.back()->input_open = false;
  exchanges_.back()->fed = false;
  Pump();
}

size_t HttpSession::input_backlog() const {
  if (exchanges_.empty() || !exchanges_.back()->duplex) return 0;
  const Exchange& e = *exchanges_.back();
  return e.body.size() - e.body_pos + e.more.size();
}

void HttpSession::MoveExchange(Exchange& e, absl::string_view rest) {
  ResponseSink* sink = e.sink;
  std::string replay = std::exchange(move_login_, {});
  replay.append(rest.data(), rest.size());
  replay += e.more;
  const int owner = move_to_;
  // Nothing of this session stays: it had not logged in.
  exchanges_.clear();
  feeding_ = nullptr;
  state_ = State::kEnded;
  Free();
  if (sink != nullptr) sink->MoveTo(owner, std::move(replay));
}

void HttpSession::Pump() {
  if (in_pump_) return;
  Busy busy(this);
  in_pump_ = true;
  while (reading() && !free_pending_) {
    Exchange* next = nullptr;
    for (auto& e : exchanges_) {
      if (!e->fed) {
        next = e.get();
        break;
      }
    }
    if (next == nullptr) break;
    if (!next->more.empty()) {
      next->body.erase(0, next->body_pos);
      next->body_pos = 0;
      next->body += std::exchange(next->more, {});
    }
    // The framer reads from a local string: a command it runs may end the
    // session, and so free the exchange, before Feed returns.
    feeding_ = next;
    std::string body = std::move(next->body);
    const size_t pos = next->body_pos;
    const size_t used =
        framer_.Feed(absl::string_view(body).substr(pos), *this);
    if (feeding_ != next) continue;  // ended meanwhile
    if (move_to_ >= 0) {
      MoveExchange(*next, absl::string_view(body).substr(pos + used));
      break;
    }
    if (pos + used == body.size() && !paused_in_line_) {
      next->body_pos = 0;
      if (next->input_open) {
        // A persistent exchange: the rest of its body is still to come.
        if (next->sink != nullptr) next->sink->OnInputConsumed();
        next->fed = true;  // until Append() or EndInput()
        break;
      }
      next->fed = true;
    } else {
      next->body = std::move(body);
      next->body_pos = pos + used;
      if (used == 0 && reading()) break;  // guard against spinning
    }
    if (framer_.fatal()) break;
  }
  in_pump_ = false;
  CompleteReady();
}

bool HttpSession::OnLine(absl::string_view line,
                         const imap::LiteralHeader* literal) {
  if (!in_command_) {
    in_command_ = true;
    current_answered_ = false;
    // The end of an IDLE is a line, not a command: nothing answers it.
    current_tag_ = !idle_tag_.empty() && absl::EqualsIgnoreCase(line, "DONE")
                       ? std::string()
                       : TagOf(line);
  }
  // The literal's bytes come in the body (or the next POST's): no "+" round
  // trip exists here, so every literal is taken as non-synchronising.
  imap::LiteralHeader plus;
  if (literal != nullptr) {
    plus = *literal;
    plus.synchronizing = false;
  }
  const bool idle = literal == nullptr && driver_ != nullptr &&
                    idle_tag_.empty() && IsIdleLine(line);
  if (idle) idle_tag_ = current_tag_;
  if (commands().OnCommandLine(line, literal != nullptr ? &plus : nullptr) ==
      session::SessionDriver::Next::kRejectLiteral) {
    framer_.RejectLiteral();
  }
  paused_in_line_ = !reading();
  return reading();
}

bool HttpSession::OnLiteralData(absl::string_view chunk) {
  commands().OnLiteralData(chunk);
  return reading();
}

bool HttpSession::OnEnd() {
  paused_in_line_ = false;
  if (in_command_) {
    in_command_ = false;
    // Waited for before the command runs: its answer may come at once.
    if (!current_tag_.empty() && !current_answered_ && feeding_ != nullptr) {
      ++feeding_->waiting[current_tag_];
    }
  }
  commands().OnCommandEnd();
  return reading();
}

bool HttpSession::OnError(const imap::FrameError& error) {
  CounterAdd(counters_.parse_errors);
  // The framer's error ends the command: its BAD (if tagged) is its answer.
  in_command_ = false;
  commands().OnFrameError(error);
  if (error.fatal) {
    End("Input cannot be resynchronised");
    return false;
  }
  return reading();
}

// ---- Before login -----------------------------------------------------------

void HttpSession::ExecutePreAuthCommand(const imap::Command& command) {
  using Action = session::PreAuthStep::Action;
  const std::string& tag = command.tag;
  std::string out;
  const bool pre_auth_command =
      command.name == "CAPABILITY" || command.name == "NOOP" ||
      command.name == "ID" || command.name == "LOGOUT" ||
      command.name == "LOGIN" || command.name == "AUTHENTICATE" ||
      command.name == "STARTTLS";
  if (stale_cookie_ && !pre_auth_command) {
    imap::AppendTaggedStatus(&out, tag, "NO", "AUTHENTICATIONFAILED",
                             "Unknown or expired session; log in again");
    pre_auth_->Answer(std::move(out));
    return;
  }
  session::PreAuthStep step = session::ExecutePreAuth(
      command, {false, config_.login_allowed,
                /*xzip=*/true, &config_.user_name_format});
  if (step.auth_failure) {
    CounterAdd(counters_.auth_failures);
    session::LogPreAuthFailure(step, client_);
  }
  if (step.client_id.has_value()) client_id_ = *std::move(step.client_id);
  switch (step.action) {
    case Action::kRespond:
    case Action::kLogout:
      pre_auth_->Answer(std::move(step.response));
      return;
    case Action::kStartTls:
      imap::AppendTaggedStatus(
          &out, tag, "BAD", "",
          "STARTTLS is not available over HTTP; use HTTPS");
      break;
    case Action::kSaslChallenge:
      imap::AppendTaggedStatus(
          &out, tag, "NO", "CANNOT",
          "AUTHENTICATE over HTTP needs an initial response (SASL-IR)");
      break;
    case Action::kLogin: {
      const std::string& user = step.login.name.user;
      if (step.login.name.device.empty()) {
        imap::AppendTaggedStatus(
            &out, tag, "NO", "CANNOT",
            "The HTTP binding carries P-IMAP sessions: log in as user#device");
      } else if (const uint32_t owner = ShardForUser(
                     user, static_cast<uint32_t>(owner_->shard_count()));
                 owner != static_cast<uint32_t>(owner_->shard_id())) {
        if (feeding_ != nullptr && feeding_->duplex &&
            feeding_->sink != nullptr) {
          // A persistent exchange moves to the user's shard and logs in
          // there; the login is replayed in literals (no quoting to get
          // wrong), nothing of it is answered here.
          const std::string name =
              absl::StrCat(user, "#", step.login.name.device);
          move_to_ = static_cast<int>(owner);
          move_login_ = absl::StrCat(tag, " LOGIN {", name.size(), "+}\r\n",
                                     name, " {", step.login.password.size(),
                                     "+}\r\n", step.login.password, "\r\n");
          return;
        }
        // Requests are routed by their first login (FirstLoginUser).
        imap::AppendTaggedStatus(&out, tag, "NO", "CANNOT",
                                 "One login per request");
      } else {
        state_ = State::kLoggingIn;
        login_running_ = true;
        step.login.client = client_;
        step.login.client_id = client_id_;
        step.login.terse = pre_auth_ != nullptr && pre_auth_->Terse();
        if (cluster::ShardCluster* cluster = owner_->cluster()) {
          ClaimThenLogin(cluster, std::move(step.login));
          return;
        }
        session::StartSessionLogin(owner_->LoginServices(), this,
                                   std::move(step.login), alive_, this);
        return;
      }
      break;
    }
  }
  pre_auth_->Answer(std::move(out));
}

void HttpSession::ClaimThenLogin(cluster::ShardCluster* cluster,
                                 session::PendingLogin login) {
  // In a cluster the user's node serves it. HTTP exchanges are not spliced
  // to another node (yet): a user another node holds gets NO [UNAVAILABLE],
  // never a second serving node.
  const std::string user = login.name.user;
  auto payload = std::make_shared<session::PendingLogin>(std::move(login));
  cluster->Claim(user, [this, alive = std::weak_ptr<bool>(alive_),
                        payload](cluster::Placement placement) {
    if (alive.expired() || state_ == State::kEnded) return;
    if (placement.kind == cluster::Placement::Kind::kHere) {
      if (placement.local_state_stale) {
        owner_->LoginServices().driver.registry->ForgetStaleUser(
            payload->name.user);
      }
      session::StartSessionLogin(owner_->LoginServices(), this,
                                 std::move(*payload), alive_, this);
      return;
    }
    std::string out;
    imap::AppendTaggedStatus(
        &out, payload->tag, "NO", "UNAVAILABLE",
        placement.kind == cluster::Placement::Kind::kForward
            ? absl::StrCat("This user is served by cluster node ",
                           placement.member.id,
                           " (HTTP is not forwarded between nodes)")
            : absl::StrCat("Cannot serve this user now (", placement.reason,
                           ")"));
    OnLoginFailed(std::move(out));
  });
}

bool HttpSession::OnAuthenticated(const std::string& user,
                                  const std::string& device,
                                  absl::string_view how) {
  if (state_ == State::kEnded) return false;
  state_ = State::kAuthenticated;
  stale_cookie_ = false;
  user_ = user;
  if (pre_auth_ != nullptr) {  // commands are the session driver's from now on
    pre_auth_->Release();
    pre_auth_ = nullptr;
  }
  cookie_ = owner_->Authenticated(this);
  cookie_sent_ = false;
  for (const std::unique_ptr<Exchange>& e : exchanges_) {
    if (e->sink != nullptr) e->sink->OnAuthenticated();
  }
  ArmExpiry();
  return true;
}

void HttpSession::OnLoginFailed(std::string response) {
  Busy busy(this);
  if (state_ == State::kEnded) return;
  state_ = State::kNotAuthenticated;
  login_running_ = false;
  // The router before login stays until a login succeeds: its XTERSE holds.
  WriteResponse(pre_auth_ != nullptr && pre_auth_->Terse()
                    ? session::TerseResponses(response)
                    : std::move(response));
  Pump();
}

void HttpSession::LoginDone(bool ok) {
  Busy busy(this);
  login_running_ = false;
  if (!ok) {
    // The store cannot carry a P-IMAP session: back to not authenticated.
    driver_->Release();
    driver_ = nullptr;
    state_ = State::kNotAuthenticated;
    owner_->Ended(this);
    cookie_.clear();
  }
  Pump();
}

void HttpSession::SetCommandRunning(bool running, bool resume) {
  blocked_ = running;
  if (!running && resume) Pump();
}

// ---- Output -----------------------------------------------------------------

void HttpSession::WriteResponse(std::string bytes) {
  if (mid_pass_) {
    deferred_ += bytes;
    return;
  }
  Route(bytes);
}

bool HttpSession::WritePassThrough(absl::string_view bytes) {
  mid_pass_ = true;
  Route(bytes);
  if (exchanges_.empty() || exchanges_.front()->sink == nullptr) return true;
  return exchanges_.front()->sink->PendingOutput() <= kOutputHighWater;
}

void HttpSession::EndPassThrough() {
  mid_pass_ = false;
  if (!deferred_.empty()) Route(std::exchange(deferred_, {}));
}

void HttpSession::Route(absl::string_view bytes) {
  Busy busy(this);
  CounterAdd(counters_.bytes_out, bytes.size());
  while (!bytes.empty()) {
    if (exchanges_.empty()) {
      // Nobody asked: only a goodbye gets here; it waits for the next POST.
      if (stash_.size() + bytes.size() <= kMaxStash) {
        stash_.append(bytes.data(), bytes.size());
      }
      out_framer_.Feed(bytes, scanner_);
      return;
    }
    scanner_.completes = false;
    const size_t used = out_framer_.Feed(bytes, scanner_);
    Deliver(*exchanges_.front(), bytes.substr(0, used));
    bytes.remove_prefix(used);
    if (scanner_.completes) {
      Complete();
      if (state_ == State::kEnded) return;
    } else if (used == 0) {
      break;
    }
  }
  CompleteReady();
}

bool HttpSession::OutputScanner::OnLine(absl::string_view line,
                                        const imap::LiteralHeader*) {
  if (!tag_.empty()) return true;  // a literal's continuation line
  const size_t space = line.find(' ');
  tag_ = std::string(line.substr(0, space));
  if (tag_.empty()) tag_ = "*";
  return true;
}

bool HttpSession::OutputScanner::OnEnd() {
  const std::string tag = std::exchange(tag_, {});
  if (tag == "*") return true;
  if (s_->exchanges_.empty()) return true;
  Exchange& e = *s_->exchanges_.front();
  if (tag == "+") {
    // IDLE's go-ahead: the request that sent it becomes a long poll.
    if (!s_->idle_tag_.empty() && e.waiting.contains(s_->idle_tag_)) {
      s_->StartStreaming(e);
      // A persistent exchange carries the DONE itself, whenever it comes.
      if (!e.duplex) s_->ArmIdleMax();
      CounterAdd(s_->counters_.http_long_polls);
    }
    return true;
  }
  if (tag == s_->idle_tag_) {
    s_->idle_tag_.clear();
    if (s_->idle_max_timer_ != 0) s_->timers_.Cancel(s_->idle_max_timer_);
    s_->idle_max_timer_ = 0;
  }
  auto it = e.waiting.find(tag);
  if (it == e.waiting.end()) {
    // Answered before its command was framed to the end (a BAD for its
    // first line, a refused literal): nothing to wait for.
    if (s_->in_command_ && tag == s_->current_tag_)
      s_->current_answered_ = true;
    return true;
  }
  if (--it->second == 0) e.waiting.erase(it);
  if (e.fed && !e.input_open && e.waiting.empty()) {
    completes = true;
    return false;  // split here: what follows is the next request's
  }
  return true;
}

void HttpSession::Deliver(Exchange& e, absl::string_view bytes) {
  if (bytes.empty()) return;
  if (!e.head_sent) {
    e.held.append(bytes.data(), bytes.size());
    if (e.held.size() > kMaxHeldOutput && !login_running_) StartStreaming(e);
    return;
  }
  if (e.sink == nullptr) return;
  if (!e.duplex) {
    e.sink->WriteBody(bytes);
    return;
  }
  // Persistent mode: one response line per chunk (R12 A.2). Output comes in
  // pieces as the store sends it, so a line's start waits for its end (a
  // literal's bytes may go out in pieces past kMaxLinePiece).
  e.partial_line.append(bytes.data(), bytes.size());
  absl::string_view rest(e.partial_line);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    if (end == absl::string_view::npos) {
      if (rest.size() <= kMaxLinePiece) break;
      e.sink->WriteBody(rest);
      rest = {};
      break;
    }
    e.sink->WriteBody(rest.substr(0, end + 1));
    rest.remove_prefix(end + 1);
  }
  e.partial_line.erase(0, e.partial_line.size() - rest.size());
}

void HttpSession::StartStreaming(Exchange& e) {
  if (e.head_sent) return;
  e.head_sent = true;
  e.streaming = true;
  if (e.sink == nullptr) return;
  e.sink->WriteHead(Headers(), -1);
  if (!e.held.empty()) e.sink->WriteBody(std::exchange(e.held, {}));
}

std::string HttpSession::Headers() {
  std::string headers;
  const absl::string_view secure = secure_ ? "; Secure" : "";
  if (logged_out_ || (state_ != State::kAuthenticated && stale_cookie_)) {
    absl::StrAppend(&headers,
                    "Set-Cookie: pimap=; Max-Age=0; Path=", config_.path,
                    "; HttpOnly", secure, "; SameSite=Strict\r\n");
  } else if (state_ == State::kAuthenticated && !cookie_sent_) {
    cookie_sent_ = true;
    absl::StrAppend(&headers, "Set-Cookie: pimap=", cookie_,
                    "; Path=", config_.path, "; HttpOnly", secure,
                    "; SameSite=Strict\r\n");
  }
  return headers;
}

// The oldest exchange completes once its body is framed and every command
// of it is answered, unless it streams a long poll still.
void HttpSession::CompleteReady() {
  Busy busy(this);
  while (!exchanges_.empty()) {
    Exchange& e = *exchanges_.front();
    if (!e.fed || e.input_open || !e.waiting.empty()) break;
    Complete();
  }
}

void HttpSession::Complete() {
  std::unique_ptr<Exchange> e = std::move(exchanges_.front());
  exchanges_.erase(exchanges_.begin());
  if (feeding_ == e.get()) feeding_ = nullptr;
  const bool last = exchanges_.empty() && state_ == State::kNotAuthenticated &&
                    !e->input_open;
  if (last && !framer_.at_command_start()) {
    // The body ended inside a command and no session (no cookie) is left to
    // continue it in: say so rather than drop it silently.
    std::string out;
    imap::AppendTaggedStatus(
        &out, current_tag_.empty() ? "*" : current_tag_, "BAD", "",
        "Command incomplete at the end of the request (a command continues "
        "in the next POST only after login)");
    Deliver(*e, out);
  }
  if (e->sink != nullptr && !e->partial_line.empty()) {
    e->sink->WriteBody(e->partial_line);
  }
  if (e->sink != nullptr) {
    if (!e->head_sent) {
      e->sink->WriteHead(Headers(), static_cast<int64_t>(e->held.size()));
      if (!e->held.empty()) e->sink->WriteBody(e->held);
    }
    e->sink->EndBody();
  }
  if (exchanges_.empty()) {
    // Between requests (a long poll's too) nothing of the last one's lines
    // stays allocated.
    framer_.ReleaseBuffers();
    out_framer_.ReleaseBuffers();
  }
  if (exchanges_.empty() && state_ != State::kAuthenticated &&
      state_ != State::kLoggingIn) {
    // Nothing logged in: the exchange was all this session was.
    if (state_ != State::kEnded) {
      state_ = State::kEnded;
      if (!cookie_.empty()) owner_->Ended(this);
    }
    Free();
  }
}

void HttpSession::OnSinkGone(ResponseSink* sink) {
  Busy busy(this);
  for (auto& e : exchanges_) {
    if (e->sink == sink) e->sink = nullptr;
  }
  // What that response carried may not have arrived, and nothing could tell
  // the client which part did: end here; a LOGIN resumes the P-IMAP session
  // and replays what was not acknowledged.
  End("The connection of a request closed");
}

void HttpSession::OnSinkDrained() {
  if (driver_ != nullptr) driver_->OnOutputDrained();
}

// LOGOUT completed: its answer is out; the session ends with its response.
void HttpSession::Close() {
  logged_out_ = true;
  End("");
}

void HttpSession::End(absl::string_view reason) {
  if (state_ == State::kEnded) return;
  Busy busy(this);
  state_ = State::kEnded;
  if (!cookie_.empty()) owner_->Ended(this);
  if (driver_ != nullptr) {
    driver_->Release();  // the session lives on in the registry, detached
    driver_ = nullptr;
  }
  if (!reason.empty() && !exchanges_.empty()) {
    std::string out;
    imap::AppendUntaggedStatus(&out, "BYE", "", reason);
    Deliver(*exchanges_.front(), out);
  }
  while (!exchanges_.empty()) Complete();
  Free();
}

// ---- Timers -----------------------------------------------------------------

void HttpSession::ArmIdleMax() {
  if (idle_max_timer_ != 0) timers_.Cancel(idle_max_timer_);
  std::weak_ptr<bool> alive = alive_;
  idle_max_timer_ = timers_.Schedule(config_.idle_max_ms, [this, alive] {
    if (alive.expired()) return;
    idle_max_timer_ = 0;
    if (idle_tag_.empty() || exchanges_.empty()) return;
    // The long poll has lasted long enough: end its IDLE as a DONE would.
    Busy busy(this);
    Exchange& last = *exchanges_.back();
    last.body.append("DONE\r\n");
    last.fed = false;
    Pump();
  });
}

void HttpSession::ArmExpiry() {
  std::weak_ptr<bool> alive = alive_;
  const int64_t now = MonotonicNowMs();
  const int64_t delay =
      std::max<int64_t>(1, last_request_ms_ + config_.session_idle_ms - now);
  expiry_timer_ = timers_.Schedule(delay, [this, alive] {
    if (alive.expired()) return;
    expiry_timer_ = 0;
    if (!exchanges_.empty() ||
        MonotonicNowMs() - last_request_ms_ < config_.session_idle_ms) {
      ArmExpiry();  // busy, or a request came since: look again later
      return;
    }
    End("Session expired");
  });
}

}  // namespace pimap::http_binding
