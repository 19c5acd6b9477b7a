// XTERSE, the P-IMAP R01 terse mode (protocol.md §3.4, [Modern] reading):
//
//   C: A001 XTERSE ON
//   S: A001 OK
//   C: A002 APPEND Sent {310+} ...
//   S: A002 OK [APPENDUID 1 140]
//   C: A003 XTERSE OFF
//   S: A003 OK XTERSE OFF
//
// Tagged and untagged OK/NO/BAD/BYE/PREAUTH status responses lose their
// human-readable text and keep their response code; data responses (FETCH,
// SEARCH, LIST, literals) and continuations ("+") pass untouched. This file
// owns the rewriting: of one status line, of a stream of responses that
// arrives in arbitrary pieces with literals in it (a store's response passed
// through as it streams), and the DeviceOutput that CommandRouter puts in
// front of the session's output while terse mode is on. The switch itself is
// the router's (command_router.h), so that every session has it, before login
// too.
#ifndef PIMAP_CORE_SESSION_TERSE_H_
#define PIMAP_CORE_SESSION_TERSE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "core/session/device_driver.h"

namespace pimap::session {

// "XTERSE ON" / "XTERSE OFF": the switch's new value from the command's
// arguments (the text after the command name), nullopt for anything else
// (answered BAD).
std::optional<bool> ParseXterseArgs(absl::string_view args);

// The terse form of one response line `line` (without its CRLF): a status
// response keeps "tag status" and its "[code]", nothing after; any other line
// comes back unchanged. The result has no CRLF either.
std::string TerseLine(absl::string_view line);

// The terse form of `bytes`, whole responses (literals in them untouched).
std::string TerseResponses(absl::string_view bytes);

// Rewrites a response stream as it arrives, in pieces cut anywhere. Only the
// first line of a response can be a status response: the bytes of a literal
// and the rest of the line after it pass as they are. A status line is held
// until its CRLF (bounded: past kMaxHeldBytes it passes untouched); any other
// line passes at once.
class TerseRewriter {
 public:
  // A status line longer than this (a store's unusually long text) is not
  // held further: it passes with its text.
  static constexpr size_t kMaxHeldBytes = 8192;

  // Appends the rewritten form of `bytes` to `*out`.
  void Feed(absl::string_view bytes, std::string* out);
  // The stream ends between responses; anything held (a status line without
  // CRLF, which a well-formed stream never leaves) goes out as it is.
  void Flush(std::string* out);
  // Between responses, nothing held.
  bool AtResponseStart() const {
    return state_ == State::kLineStart && held_.empty();
  }

 private:
  enum class State : uint8_t {
    kLineStart,  // a response starts: held_ gathers its first words
    kStatus,     // a status line, held whole in held_
    kLine,       // another line: passes; tail_ watches for "{n}" at its end
    kLiteral,    // literal bytes pass
  };
  // At the end of a passed line (tail_: its last bytes): a literal follows?
  void EndPassedLine();
  // The first words of the response in held_ say what it is.
  void Classify(std::string* out);

  State state_ = State::kLineStart;
  std::string held_;
  std::string tail_;  // the last bytes of a passed line (its literal header)
  uint64_t literal_left_ = 0;
  bool line_is_continuation_ = false;  // the rest of a line after a literal
};

// The session's output while terse mode is on: what the session writes
// reaches `next` (the binding's output, or an XZIP's capture) rewritten.
// Whole responses (WriteResponse, WriteEvents) and the passed-through store
// response have a rewriter each, as the binding keeps them apart too.
class TerseOutput final : public DeviceOutput {
 public:
  TerseOutput() = default;
  TerseOutput(const TerseOutput&) = delete;
  TerseOutput& operator=(const TerseOutput&) = delete;

  // Where the bytes go (set before each use: it changes while an XZIP runs).
  void set_next(DeviceOutput* next) { next_ = next; }
  // Terse mode ends: what is held of a store response (a status line not
  // ended yet) goes to `next` as it is.
  void FlushTo(DeviceOutput* next);

  // DeviceOutput
  void WriteResponse(std::string bytes) override;
  void WriteEvents(std::string bytes) override;
  bool WritePassThrough(absl::string_view bytes) override;
  void EndPassThrough() override;
  void SetCommandRunning(bool running, bool resume) override {
    next_->SetCommandRunning(running, resume);
  }
  void LoginDone(bool ok) override { next_->LoginDone(ok); }
  void RelayedDone(absl::string_view tag) override { next_->RelayedDone(tag); }
  void RelayDrained() override { next_->RelayDrained(); }
  bool OffersCompression() const override { return next_->OffersCompression(); }
  bool Secure() const override { return next_->Secure(); }
  absl::string_view Binding() const override { return next_->Binding(); }
  absl::Status StartCompression(std::string ok) override;
  void EndSession(absl::string_view reason) override {
    next_->EndSession(reason);
  }
  void Close() override { next_->Close(); }

 private:
  DeviceOutput* next_ = nullptr;
  TerseRewriter pass_;  // the store response passing through
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_TERSE_H_
