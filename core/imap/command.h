// The argument model of IMAP commands and the parsing of one complete client
// command (as delivered by the Framer) into a Command.
#ifndef PIMAP_CORE_IMAP_COMMAND_H_
#define PIMAP_CORE_IMAP_COMMAND_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/framer.h"
#include "core/imap/limits.h"
#include "core/imap/parser_internal.h"

namespace pimap::imap {

struct Arg {
  enum class Type { kAtom, kQuoted, kLiteral, kNil, kList };
  Type type = Type::kAtom;
  // Atom text (as sent), string contents (unescaped) or literal bytes. For
  // kNil it keeps the text as sent ("NIL", "nil"), so a caller expecting an
  // astring (e.g. a mailbox literally named NIL) can still use it.
  std::string value;
  std::vector<Arg> children;  // kList: the parenthesised list's elements
  bool binary = false;        // literal8
  bool is_string() const {
    return type == Type::kQuoted || type == Type::kLiteral;
  }
  bool is_astring() const { return type == Type::kAtom || is_string(); }
};

struct Command {
  std::string tag;
  std::string name;       // upper-cased first word after the tag ("UID")
  std::vector<Arg> args;  // everything after the name
};

struct CommandHead {
  std::string tag;
  std::string name;  // upper-cased
};

// Reads just the tag and command name from a command's first line, for routing
// without a full parse. Errors are InvalidArgument ("tag BAD <message>").
absl::StatusOr<CommandHead> ParseCommandHead(absl::string_view first_line);

// Collects the framer's events for ONE command (bounded by max_total_bytes)
// and parses it. Errors are InvalidArgument with a message fit for
// "tag BAD <message>". After an error, further Add* calls return the same
// error until Finish() or Reset().
class CommandAssembler {
 public:
  CommandAssembler(const ParserLimits& limits, size_t max_total_bytes);
  absl::Status AddLine(absl::string_view line, const LiteralHeader* literal);
  absl::Status AddLiteralData(absl::string_view chunk);
  // Call after OnEnd. Always resets the assembler for the next command.
  absl::StatusOr<Command> Finish();
  void Reset();

 private:
  ParserLimits limits_;
  internal::Collector collector_;
};

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_COMMAND_H_
