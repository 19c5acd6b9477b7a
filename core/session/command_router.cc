// Command routing after login (command_router.h): local vs relayed commands,
// answers in command order, input held for ordering and backpressure, and
// XZIP around any of them.
#include "core/session/command_router.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/imap/writer.h"
#include "core/session/capabilities.h"
#include "core/session/client_id.h"

namespace pimap::session {

std::string TagOfBadLine(absl::string_view line) {
  absl::string_view first = line.substr(0, line.find(' '));
  if (first.empty() || first.size() > 64 || first == "*" || first == "+") {
    return "";
  }
  for (char c : first) {
    if (c <= ' ' || c >= 0x7f || c == '{' || c == '(' || c == ')' || c == '"' ||
        c == '%' || c == '\\' || c == '+') {
      return "";
    }
  }
  return std::string(first);
}

std::string UpstreamLine(absl::string_view line,
                         const imap::LiteralHeader* literal) {
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

CommandRouter::CommandRouter(ShardCounters* counters, DeviceOutput* output,
                             const imap::ParserLimits& limits)
    : counters_(counters),
      output_(output),
      limits_(limits) {}

bool CommandRouter::AlwaysLocal(absl::string_view name) {
  return name == "CAPABILITY" || name == "STARTTLS" || name == "LOGIN" ||
         name == "AUTHENTICATE" || name == "COMPRESS" || name == "ID" ||
         name == "XTERSE" || name == "XSYNC" ||
         DeviceDriver::IsExtensionCommand(name);
}

void CommandRouter::Detach() {
  output_ = nullptr;
  DetachStore();
}

void CommandRouter::Release() {
  Detach();
  release_pending_ = true;
  if (busy_ == 0) delete this;
}

// ---- Input ------------------------------------------------------------------

SessionDriver::Next CommandRouter::OnCommandLine(
    absl::string_view line, const imap::LiteralHeader* literal) {
  Busy busy(this);
  if (mode_ == Mode::kNone) {
    Next next = Next::kContinue;
    if (!StartCommand(line, literal, &next)) return next;
  }
  if (literal != nullptr && !literal->synchronizing &&
      literal->size > MaxUnaskedLiteral() &&
      (mode_ == Mode::kLocal || mode_ == Mode::kXzip)) {
    // LITERAL- (RFC 7888 section 4): the client sends it anyway; the framer
    // skips its bytes and the rest of the command (no OnCommandEnd follows).
    std::string out;
    imap::AppendTaggedStatus(
        &out, command_tag_, "BAD", "TOOBIG",
        absl::StrCat("Non-synchronizing literal larger than ",
                     MaxUnaskedLiteral(), " bytes (LITERAL-)"));
    if (mode_ == Mode::kXzip) xzip_.reset();
    assembler_.reset();
    mode_ = Mode::kNone;
    WriteOrdered(std::move(out));
    return Next::kRejectLiteral;
  }
  const bool synchronizing = literal != nullptr && literal->synchronizing;
  switch (mode_) {
    case Mode::kLocal: {
      absl::Status status = assembler_->AddLine(line, literal);
      if (!status.ok()) {
        WriteBad(command_tag_, status.message());
        mode_ = Mode::kSkip;
        if (synchronizing) {
          mode_ = Mode::kNone;
          return Next::kRejectLiteral;
        }
        break;
      }
      if (synchronizing) Write("+ Ready for literal data\r\n");
      break;
    }
    case Mode::kRelay:
      RelayLine(line, literal);
      break;
    case Mode::kSkip:
      if (synchronizing) {
        mode_ = Mode::kNone;
        return Next::kRejectLiteral;
      }
      break;
    case Mode::kXzip:
      if (synchronizing) {
        // No "+" round trip inside XZIP: the inner command comes whole.
        xzip_.reset();
        WriteBad(command_tag_,
                 "XZIP cannot wait for a literal: use a non-synchronising "
                 "literal ({n+})");
        mode_ = Mode::kNone;
        return Next::kRejectLiteral;
      }
      if (!xzip_->AddLine(line, literal)) {
        xzip_.reset();
        WriteBad(command_tag_,
                 "XZIP command too large (run the command unwrapped)");
        mode_ = Mode::kSkip;
      }
      break;
    case Mode::kNone:
      break;
  }
  return Next::kContinue;
}

bool CommandRouter::StartCommand(absl::string_view line,
                                 const imap::LiteralHeader* literal,
                                 Next* next) {
  relay_started_ = false;
  switch (OpenLine(line, literal)) {
    case Opening::kTaken:
      *next = SkipCommand(literal);
      return false;
    case Opening::kRelayVerbatim:
      // The line that ends IDLE ("DONE", or anything else, which the store
      // answers BAD) goes to the store verbatim: the store owns the IDLE.
      mode_ = Mode::kRelay;
      return true;
    case Opening::kCommand:
      break;
  }
  absl::StatusOr<imap::CommandHead> head = imap::ParseCommandHead(line);
  if (!head.ok()) {
    CounterAdd(counters().parse_errors);
    WriteBad(TagOfBadLine(line), head.status().message());
    *next = SkipCommand(literal);
    return false;
  }
  command_tag_ = head->tag;
  if (head->name == "XZIP") return StartXzip(line, literal, *head, next);
  if (IsLocal(head->name)) {
    // Made per local command and freed at its end: an idle device holds none.
    // XDELIVER carries a whole message (bounded by --xdeliver-max-bytes).
    size_t max_bytes = kLocalCommandBytes;
    if (head->name == "XDELIVER" && services() != nullptr &&
        services()->registry != nullptr &&
        services()->registry->submitter() != nullptr) {
      max_bytes = std::max(
          max_bytes, services()->registry->config().max_xdeliver_bytes + 4096);
    }
    assembler_ = std::make_unique<imap::CommandAssembler>(limits_, max_bytes);
    mode_ = Mode::kLocal;
    return true;
  }
  mode_ = Mode::kRelay;
  outstanding_.push_back(head->tag);
  BeginRelayed(*head, line, literal);
  if (outstanding_.size() >= kMaxOutstanding) Hold(kWaitOrdered);
  CounterAdd(counters().commands_relayed);
  return true;
}

SessionDriver::Next CommandRouter::SkipCommand(
    const imap::LiteralHeader* literal) {
  if (literal != nullptr && literal->synchronizing) {
    mode_ = Mode::kNone;  // the client will not send the literal
    return Next::kRejectLiteral;
  }
  mode_ = Mode::kSkip;
  return Next::kContinue;
}

void CommandRouter::RelayLine(absl::string_view line,
                              const imap::LiteralHeader* literal) {
  if (literal != nullptr && literal->synchronizing) {
    Write("+ Ready for literal data\r\n");
  }
  if (!relay_started_) {
    const std::string first = RelayedFirstLine(line);
    if (literal == nullptr || first.size() == line.size()) {
      Relay(UpstreamLine(first, literal));
    } else {
      // The rewriting is before the literal's header: it moved by as much.
      imap::LiteralHeader moved = *literal;
      moved.header_offset = moved.header_offset + first.size() - line.size();
      Relay(UpstreamLine(first, &moved));
    }
  } else {
    Relay(UpstreamLine(line, literal));
  }
  relay_started_ = true;
}

void CommandRouter::Relay(absl::string_view bytes) {
  if (output_ == nullptr) return;  // detached meanwhile (output bound)
  if (SendUp(bytes) > kStoreHighWater) Hold(kWaitStore);
}

void CommandRouter::OnLiteralData(absl::string_view chunk) {
  Busy busy(this);
  switch (mode_) {
    case Mode::kLocal: {
      absl::Status status = assembler_->AddLiteralData(chunk);
      if (!status.ok()) {
        WriteBad(command_tag_, status.message());
        mode_ = Mode::kSkip;
      }
      break;
    }
    case Mode::kRelay:
      Relay(chunk);
      break;
    case Mode::kXzip:
      if (!xzip_->AddLiteralData(chunk)) {
        xzip_.reset();
        WriteBad(command_tag_,
                 "XZIP command too large (run the command unwrapped)");
        mode_ = Mode::kSkip;
      }
      break;
    default:
      break;
  }
}

void CommandRouter::OnCommandEnd() {
  Busy busy(this);
  const Mode mode = std::exchange(mode_, Mode::kNone);
  std::unique_ptr<imap::CommandAssembler> assembler = std::move(assembler_);
  if (mode == Mode::kXzip) {
    if (outstanding_.empty() && !PassThroughOpen()) {
      RunXzip();
    } else {
      // It runs when the relayed commands have completed (CompleteRelayed)
      // and the output is between responses (PassThroughEnded).
      Hold(kWaitOrdered);
    }
    return;
  }
  if (mode != Mode::kLocal) return;
  absl::StatusOr<imap::Command> command = assembler->Finish();
  if (!command.ok()) {
    CounterAdd(counters().parse_errors);
    WriteBad(command_tag_, command.status().message());
  } else if (!outstanding_.empty()) {
    // Answering now would put our response before the store's answers to
    // earlier commands; wait until those have completed.
    deferred_command_ = std::make_unique<imap::Command>(std::move(*command));
    Hold(kWaitOrdered);
  } else {
    Dispatch(*command);
  }
}

void CommandRouter::Dispatch(const imap::Command& command) {
  if (command.name == "XTERSE") {
    RunXterse(command);
  } else if (command.name == "XSYNC") {
    RunXsync(command);
  } else {
    Execute(command);
  }
}

void CommandRouter::OnFrameError(const imap::FrameError& error) {
  Busy busy(this);
  const Mode mode = std::exchange(mode_, Mode::kNone);
  if (mode == Mode::kRelay && relay_started_) {
    // Part of this command already went to the store. End it with a token no
    // grammar accepts, so the store answers it BAD under the device's tag
    // rather than running a truncated command; that BAD is the device's answer.
    Relay(" (\r\n");
    return;
  }
  if (mode == Mode::kRelay && !outstanding_.empty()) outstanding_.pop_back();
  if (mode == Mode::kXzip) xzip_.reset();
  WriteBad(error.tag.empty() ? command_tag_ : error.tag, error.message);
}

// ---- Local commands and ordering --------------------------------------------

bool CommandRouter::AnswerAfterLogin(const imap::Command& command,
                                     const std::vector<std::string>& store_caps,
                                     bool pimap, absl::string_view extra_caps) {
  const std::string& name = command.name;
  std::string out;
  if (name == "CAPABILITY") {
    absl::StrAppend(&out, "* CAPABILITY ",
                    PostAuthCapabilities(store_caps, pimap,
                                         output_ == nullptr ||
                                             output_->OffersCompression(),
                                         extra_caps),
                    "\r\n");
    imap::AppendTaggedStatus(&out, command.tag, "OK", "",
                             "CAPABILITY completed");
  } else if (name == "COMPRESS") {
    if (command.args.size() != 1 || !command.args[0].is_astring() ||
        !absl::EqualsIgnoreCase(command.args[0].value, "DEFLATE")) {
      imap::AppendTaggedStatus(&out, command.tag, "BAD", "",
                               "Unknown compression mechanism");
    } else {
      std::string ok;
      imap::AppendTaggedStatus(&ok, command.tag, "OK", "", "DEFLATE active");
      const absl::Status started =
          output_ != nullptr
              ? output_->StartCompression(TerseText(std::move(ok)))
              : absl::UnavailableError("connection gone");
      if (started.ok()) return true;
      if (absl::IsFailedPrecondition(started)) {
        imap::AppendTaggedStatus(&out, command.tag, "NO", "COMPRESSIONACTIVE",
                                 "Compression is already active");
      } else {
        imap::AppendTaggedStatus(&out, command.tag, "NO", "CANNOT",
                                 started.message());
      }
    }
  } else if (name == "ID") {
    // The gateway's own answer in every state (RFC 2971 allows ID anywhere);
    // the client's fields reach the store only from before its login.
    absl::StatusOr<std::string> fields = ParseClientId(command.args);
    if (fields.ok()) {
      out = IdAnswer(command.tag);
    } else {
      imap::AppendTaggedStatus(&out, command.tag, "BAD", "",
                               fields.status().message());
    }
  } else if (name == "STARTTLS" || name == "LOGIN" || name == "AUTHENTICATE") {
    imap::AppendTaggedStatus(
        &out, command.tag, "BAD", "",
        absl::StrCat(name, " not allowed: already authenticated"));
  } else {
    return false;
  }
  Write(std::move(out));
  return true;
}

void CommandRouter::Write(std::string bytes) {
  if (output() != nullptr) output()->WriteResponse(std::move(bytes));
}

void CommandRouter::WriteBad(absl::string_view tag, absl::string_view message) {
  std::string out;
  if (tag.empty()) {
    imap::AppendUntaggedStatus(&out, "BAD", "", message);
  } else {
    imap::AppendTaggedStatus(&out, tag, "BAD", "", message);
  }
  WriteOrdered(std::move(out));
}

void CommandRouter::WriteOrdered(std::string out) {
  if (!outstanding_.empty()) {
    // Keep answers in command order: this BAD follows the store's answers to
    // the commands relayed before it. Input waits meanwhile.
    deferred_bad_ += out;
    Hold(kWaitOrdered);
    return;
  }
  Write(std::move(out));
}

void CommandRouter::CompleteRelayed(absl::string_view tag) {
  for (auto it = outstanding_.begin(); it != outstanding_.end(); ++it) {
    if (*it == tag) {
      outstanding_.erase(it);
      break;
    }
  }
  if (xzip_ != nullptr && xzip_->running() && !xzip_->replaying() &&
      tag == xzip_->inner_tag() && !XzipRelayed()) {
    FinishXzip(/*resume=*/true);  // the relayed inner command completed
  }
  if (!outstanding_.empty() || !(waits_ & kWaitOrdered)) return;
  if (!deferred_bad_.empty())
    Write(std::exchange(deferred_bad_, std::string()));
  if (deferred_command_ != nullptr) {
    std::unique_ptr<imap::Command> command = std::move(deferred_command_);
    Dispatch(*command);
  } else if (xzip_ != nullptr && !xzip_->running() && mode_ != Mode::kXzip &&
             !PassThroughOpen()) {
    RunXzip();
  }
  Unhold(kWaitOrdered);
}

void CommandRouter::PassThroughEnded() {
  if (xzip_ == nullptr || xzip_->running() || mode_ == Mode::kXzip ||
      !outstanding_.empty() || !(waits_ & kWaitOrdered)) {
    return;
  }
  RunXzip();
  Unhold(kWaitOrdered);
}

void CommandRouter::StoreDrained() {
  if (waits_ & kWaitStore) Unhold(kWaitStore);
}

// The output has one "command running" switch for input; the router's reasons
// and the derived engine's share it, so it turns off only when none is left.
void CommandRouter::Hold(Wait wait) {
  const bool was_held = waits_ != 0;
  waits_ |= wait;
  if (!was_held && output_ != nullptr) output_->SetCommandRunning(true, false);
}

void CommandRouter::Unhold(Wait wait) {
  if (!(waits_ & wait)) return;
  waits_ &= ~wait;
  // While an XZIP runs this reaches its capture, which lets go of input only
  // at the XZIP's answer.
  if (waits_ == 0 && !EngineHoldsInput() && output() != nullptr) {
    output()->SetCommandRunning(false, true);
  }
}

// ---- XTERSE -----------------------------------------------------------------
//
// Valid in every state (R01 §3.2.4), so the router answers it for every
// session, before login too. It runs in command order like any local command,
// so the store's answers to the commands before it keep their text and those
// after it lose theirs. The switch is per connection (terse.h).

void CommandRouter::SetTerse(bool on) {
  if (on == Terse()) return;
  if (on) {
    terse_ = std::make_unique<TerseOutput>();
    return;
  }
  terse_->FlushTo(xzip_ != nullptr && xzip_->running() ? xzip_.get() : output_);
  terse_.reset();
}

std::string CommandRouter::TerseText(std::string bytes) const {
  if (terse_ == nullptr) return bytes;
  return TerseResponses(bytes);
}

void CommandRouter::RunXterse(const imap::Command& command) {
  std::string args;
  for (const imap::Arg& arg : command.args) {
    if (!arg.is_astring()) {
      args = "?";  // a list or literal: not ON / OFF
      break;
    }
    absl::StrAppend(&args, args.empty() ? "" : " ", arg.value);
  }
  const std::optional<bool> on = ParseXterseArgs(args);
  std::string out;
  if (!on.has_value()) {
    imap::AppendTaggedStatus(&out, command.tag, "BAD", "",
                             "Usage: XTERSE ON|OFF");
  } else {
    SetTerse(*on);
    // ON: the answer is already terse (its text would go anyway).
    imap::AppendTaggedStatus(&out, command.tag, "OK", "",
                             *on ? "XTERSE ON" : "XTERSE OFF");
  }
  Write(std::move(out));
}

// ---- XZIP -------------------------------------------------------------------
//
// The XZIP's inner command is kept whole while the framer delivers it (no "+"
// round trip: a synchronising literal is refused), waits for the relayed
// commands before it, then is replayed through this router's own entry points
// exactly as the framer would deliver it unwrapped, with output() capturing
// the session's output. The inner command ends at its tagged completion: for a
// relayed one when the store completes it (CompleteRelayed), for a local one
// at once or when the session lets go of input after it (the engine's settled
// point). Input waits from the XZIP's end until its answer.

bool CommandRouter::StartXzip(absl::string_view line,
                              const imap::LiteralHeader* literal,
                              const imap::CommandHead& head, Next* next) {
  std::string refusal;
  absl::StatusOr<XzipInner> inner = ParseXzipLine(line, head.tag);
  if (!inner.ok()) {
    imap::AppendTaggedStatus(&refusal, head.tag, "BAD", "",
                             inner.status().message());
  } else if (!XzipWraps(inner->name)) {
    imap::AppendTaggedStatus(
        &refusal, head.tag, "BAD", "",
        absl::StrCat(inner->name, " cannot run inside XZIP"));
  } else if (!WritesThroughOutput() || xzip_ != nullptr) {
    imap::AppendTaggedStatus(&refusal, head.tag, "NO", "CANNOT",
                             "XZIP is not available here");
  }
  if (!refusal.empty()) {
    WriteOrdered(std::move(refusal));
    *next = SkipCommand(literal);
    return false;
  }
  xzip_ = std::make_unique<Xzip>(head.tag, *std::move(inner));
  mode_ = Mode::kXzip;
  return true;  // OnCommandLine keeps the line
}

void CommandRouter::RunXzip() {
  Busy busy(this);
  if (output_ == nullptr) {
    xzip_.reset();
    return;
  }
  if (xsync_ == nullptr) CounterAdd(counters().xzip_commands);
  const DriverServices* shard = services();
  const size_t bound = std::max(
      Xzip::kMinCaptureBytes,
      shard != nullptr ? shard->max_output_bytes : Xzip::kMinCaptureBytes);
  xzip_->Start(output_, bound, [this](bool resume) { OnXzipReleased(resume); });
  xzip_->set_replaying(true);
  std::vector<Xzip::Piece> pieces = xzip_->TakePieces();
  for (Xzip::Piece& piece : pieces) {
    OnCommandLine(piece.line, piece.has_literal ? &piece.literal : nullptr);
    if (!piece.data.empty()) OnLiteralData(piece.data);
  }
  OnCommandEnd();
  if (xzip_ == nullptr || !xzip_->running()) return;
  xzip_->set_replaying(false);
  if (xzip_->inner_done() && !XzipRelayed()) {
    FinishXzip(/*resume=*/true);
    return;
  }
  // The inner command goes on (the store, the engine): nothing more is read
  // until the XZIP's answer.
  xzip_->set_held_input();
  if (output_ != nullptr) output_->SetCommandRunning(true, false);
}

bool CommandRouter::XzipRelayed() const {
  return std::find(outstanding_.begin(), outstanding_.end(),
                   xzip_->inner_tag()) != outstanding_.end();
}

void CommandRouter::OnXzipReleased(bool resume) {
  if (xzip_ == nullptr || !xzip_->running()) return;
  // During the replay RunXzip looks after the end; before the inner command's
  // end, input stays held for the XZIP.
  if (xzip_->replaying() || !xzip_->inner_done() || XzipRelayed()) return;
  FinishXzip(resume);
}

void CommandRouter::FinishXzip(bool resume) {
  if (xsync_ != nullptr) {  // a step of an XSYNC, not an XZIP
    FinishXsyncStep(resume);
    return;
  }
  Busy busy(this);
  const std::unique_ptr<Xzip> xzip = std::move(xzip_);
  if (output_ == nullptr) return;
  const DriverServices* shard = services();
  // The answer goes out in one write: it must stay well under the output
  // bound the binding enforces (a quarter is left for what is queued).
  const size_t out_bound =
      shard != nullptr ? shard->max_output_bytes : Xzip::kMinCaptureBytes;
  std::string out;
  if (!xzip->overflowed()) {
    const std::string raw = xzip->TakeCaptured();
    std::string gzip =
        XzipGzip(raw, shard != nullptr ? shard->compressor : nullptr);
    if (gzip.size() <= out_bound - out_bound / 4) {
      CounterAdd(counters().xzip_raw_bytes, raw.size());
      CounterAdd(counters().xzip_wire_bytes, gzip.size());
      out = absl::StrCat("* {", gzip.size(), "}\r\n");
      out += gzip;
      out += "\r\n";
      imap::AppendTaggedStatus(&out, xzip->outer_tag(), "OK", "",
                               Terse() ? "" : "XZIP completed");
    }
  }
  if (out.empty()) {
    CounterAdd(counters().xzip_too_large);
    imap::AppendTaggedStatus(
        &out, xzip->outer_tag(), "NO", "LIMIT",
        "XZIP response too large (run the command unwrapped)");
  }
  output_->WriteResponse(TerseText(std::move(out)));
  if (xzip->held_input() && waits_ == 0 && !EngineHoldsInput() &&
      output_ != nullptr) {
    output_->SetCommandRunning(false, resume);
  }
}

}  // namespace pimap::session
