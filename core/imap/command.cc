// Parsing of complete client commands (RFC 3501 section 9, RFC 7888, RFC 3516).
#include "core/imap/command.h"

#include <utility>

namespace pimap::imap {

absl::StatusOr<CommandHead> ParseCommandHead(absl::string_view first_line) {
  CommandHead head;
  size_t after = 0;
  absl::Status s = internal::ParseTagAndName(
      first_line, first_line.size(), &head.tag, &head.name, &after, "command");
  if (!s.ok()) return s;
  return head;
}

CommandAssembler::CommandAssembler(const ParserLimits& limits,
                                   size_t max_total_bytes)
    : limits_(limits), collector_(max_total_bytes, "command") {}

absl::Status CommandAssembler::AddLine(absl::string_view line,
                                       const LiteralHeader* literal) {
  return collector_.AddLine(line, literal);
}

absl::Status CommandAssembler::AddLiteralData(absl::string_view chunk) {
  return collector_.AddLiteralData(chunk);
}

void CommandAssembler::Reset() { collector_.Reset(); }

absl::StatusOr<Command> CommandAssembler::Finish() {
  std::vector<internal::Segment> segments;
  absl::Status s = collector_.Segments(&segments);
  if (!s.ok()) {
    collector_.Reset();
    return s;
  }
  Command command;
  size_t after = 0;
  s = internal::ParseTagAndName(segments[0].line, segments[0].text_end(),
                                &command.tag, &command.name, &after, "command");
  if (s.ok()) {
    internal::Tokenizer tokenizer(segments, limits_.max_depth,
                                  /*lenient=*/false);
    tokenizer.Seek(after);
    s = tokenizer.ParseRemainingArgs(&command.args);
  }
  collector_.Reset();
  if (!s.ok()) return s;
  return command;
}

}  // namespace pimap::imap
