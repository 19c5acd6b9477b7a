// Incremental framing of an IMAP byte stream into lines and literals.
//
// The Framer owns only the wire-level structure (CRLF-terminated lines, "{n}",
// "{n+}", "~{n}" and "~{n+}" literals); it never tokenizes a line. It is shared
// by the server side (client commands) and the client side (server responses).
#ifndef PIMAP_CORE_IMAP_FRAMER_H_
#define PIMAP_CORE_IMAP_FRAMER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/imap/limits.h"

namespace pimap::imap {

struct LiteralHeader {
  uint64_t size = 0;
  bool synchronizing = true;  // "{n}" (true) vs "{n+}" (LITERAL+, RFC 7888)
  bool binary = false;        // literal8 "~{n}" / "~{n+}" (RFC 3516)
  size_t header_offset = 0;   // offset in the line where "{" or "~{" starts
};

enum class LiteralHeaderParse { kNone, kOk, kBad };

// Looks for a literal header at the very end of `line` (CRLF already stripped).
// kNone: the line does not end in a literal header; kBad: it does, but the size
// has more than 20 digits or overflows uint64.
LiteralHeaderParse ParseTrailingLiteralHeader(absl::string_view line,
                                              LiteralHeader* header);

enum class FrameErrorKind { kLineTooLong, kLiteralTooLarge, kBadLiteralHeader };

struct FrameError {
  FrameErrorKind kind;
  std::string tag;      // tag of the offending command if readable, else empty
  std::string message;  // human-readable reason
  bool fatal = false;   // cannot resynchronise: send "* BYE" and close
};

class Framer {
 public:
  enum class Mode { kCommands, kResponses };

  class Visitor {
   public:
    virtual ~Visitor() = default;
    // One line, CRLF (or bare LF) stripped. If it ends with a literal header,
    // `literal` describes it (the header text is still part of `line`).
    // Every callback returns false to make Feed() stop right after the event.
    virtual bool OnLine(absl::string_view line,
                        const LiteralHeader* literal) = 0;
    virtual bool OnLiteralData(absl::string_view chunk) = 0;
    virtual bool OnEnd() = 0;
    virtual bool OnError(const FrameError& error) = 0;
  };

  Framer(Mode mode, const ParserLimits& limits);

  // Consumes bytes and returns how many were consumed: all of them unless a
  // visitor callback returned false or a fatal error occurred. Events still
  // owed from a previous pause (an OnEnd after a paused OnLine) are delivered
  // first, even when `data` is empty.
  size_t Feed(absl::string_view data, Visitor& visitor);

  // Call from OnLine (or after it, before feeding more) when the owner refuses
  // the synchronising literal the line announced: the client will not send it,
  // so the framer expects a new command line and the command is abandoned.
  // For a non-synchronising literal (sent regardless) the framer instead
  // skips its bytes and the rest of the command, then resynchronises.
  void RejectLiteral();

  // True when nothing is buffered or pending: a clean command boundary.
  bool at_command_start() const;
  // At a command boundary, gives back the memory its buffers kept from long
  // lines (an idle connection then holds none); otherwise does nothing.
  void ReleaseBuffers();
  bool fatal() const { return state_ == State::kFatal; }
  void Reset();

 private:
  enum class State {
    kLine,         // reading a line (maybe partially buffered)
    kLiteral,      // delivering literal bytes
    kDiscardLine,  // skipping the rest of an overlong or abandoned line
    kSkipLiteral,  // skipping the bytes of a literal of an abandoned command
    kFatal,
  };

  // Handles one complete line; returns false if the visitor asked to pause.
  bool HandleLine(absl::string_view line, Visitor& visitor);
  // Called when a discarded line's LF arrives; `tail` ends the line.
  bool FinishDiscardedLine(Visitor& visitor);
  // Starts skipping the remainder of an abandoned command whose last seen line
  // ended with `header` (a literal the peer will send regardless).
  bool SkipLiteral(const LiteralHeader& header, Visitor& visitor);
  bool Error(FrameErrorKind kind, std::string message, bool fatal,
             Visitor& visitor);
  void StartDiscard(absl::string_view head, bool report);
  void AppendTail(absl::string_view bytes);
  // A literal the peer sends without waiting for "+" (always in responses).
  bool SentUnasked(const LiteralHeader& h) const {
    return !h.synchronizing || mode_ == Mode::kResponses;
  }

  Mode mode_;
  ParserLimits limits_;
  State state_ = State::kLine;
  std::string buffer_;       // partial line, at most max_line_bytes + 1 bytes
  std::string tail_;         // last bytes of a discarded line (literal header)
  std::string tag_;          // tag of the current command (for errors)
  uint64_t remaining_ = 0;   // bytes left in the current literal / skip
  bool in_command_ = false;  // some line of the current command was seen
  bool literal_unasked_ = false;  // current literal is sent without "+"
  bool pending_end_ = false;      // OnEnd owed after a paused OnLine
  bool report_discard_ = false;   // the discarded line is an error to report
};

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_FRAMER_H_
