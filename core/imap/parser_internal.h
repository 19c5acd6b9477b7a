// Internal to core/imap: the buffering of one command/response's lines and
// literals, and the tokenizer shared by the command and response parsers.
// Not part of the public API; include command.h or response.h instead.
#ifndef PIMAP_CORE_IMAP_PARSER_INTERNAL_H_
#define PIMAP_CORE_IMAP_PARSER_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/imap/framer.h"

namespace pimap::imap {

struct Arg;

namespace internal {

// One framed line and the literal that follows it, if any.
struct Segment {
  absl::string_view line;
  std::string* literal = nullptr;  // owned by the Collector; may be moved from
  bool binary = false;
  size_t header_offset = 0;  // where the literal header starts in `line`
  // Where tokens of this line end: the literal header or the end of line.
  size_t text_end() const { return literal ? header_offset : line.size(); }
};

// Buffers lines and literal bytes of one message with a bound on the total.
class Collector {
 public:
  Collector(size_t max_total_bytes, const char* what)
      : max_total_bytes_(max_total_bytes), what_(what) {}
  absl::Status AddLine(absl::string_view line, const LiteralHeader* literal);
  absl::Status AddLiteralData(absl::string_view chunk);
  // Validates completeness and exposes the segments (valid until Reset()).
  absl::Status Segments(std::vector<Segment>* out);
  void Reset();

 private:
  struct LineRef {
    size_t begin = 0;
    size_t end = 0;
    int literal = -1;
    bool binary = false;
    size_t header_offset = 0;
  };
  absl::Status Fail(absl::Status status);

  size_t max_total_bytes_;
  const char* what_;  // "command" or "response", for messages
  std::string text_;  // all lines, concatenated
  std::vector<LineRef> lines_;
  std::vector<std::string> literals_;
  uint64_t literal_remaining_ = 0;
  bool want_literal_ = false;
  size_t total_ = 0;
  absl::Status status_;
};

// Tokenizes the IMAP argument grammar over a sequence of segments.
class Tokenizer {
 public:
  // `lenient` is for server responses: extra/trailing spaces and any
  // backslash escape are tolerated, as real servers emit them.
  Tokenizer(const std::vector<Segment>& segments, int max_depth, bool lenient)
      : segs_(segments), max_depth_(max_depth), lenient_(lenient) {}

  // Positions the cursor inside the first segment.
  void Seek(size_t pos) { pos_ = pos; }
  size_t pos() const { return pos_; }
  bool AtEnd() const {
    return seg_ + 1 >= segs_.size() && pos_ >= segs_[seg_].line.size() &&
           segs_[seg_].literal == nullptr;
  }
  // Parses "SP arg SP arg ..." up to the end of the message; an empty
  // remainder yields no args.
  absl::Status ParseRemainingArgs(std::vector<Arg>* out);

 private:
  bool AtLiteral() const {
    const Segment& s = segs_[seg_];
    return s.literal != nullptr && pos_ == s.header_offset;
  }
  // At end of the current segment's token text (not at a literal).
  bool AtTextEnd() const { return pos_ >= segs_[seg_].text_end(); }
  absl::Status ParseSequence(std::vector<Arg>* out, int depth);
  absl::Status ParseToken(Arg* out, int depth);
  absl::Status ParseQuoted(Arg* out);
  absl::Status ParseAtom(Arg* out);

  const std::vector<Segment>& segs_;
  size_t seg_ = 0;
  size_t pos_ = 0;
  int max_depth_;
  bool lenient_;
  // Per segment: position of its last ']' (npos if none), so that scanning
  // for bracket sections stays linear on hostile input.
  size_t last_close_seg_ = static_cast<size_t>(-1);
  size_t last_close_ = 0;
};

// True for characters the parser accepts inside an atom (beyond brackets).
bool IsParserAtomChar(unsigned char c);
// Tag characters: ASTRING-CHAR except "+".
bool IsTagChar(unsigned char c);
// Reads "tag SP name" from the start of `line` (up to `limit`). On success
// *after is the position right after the name.
absl::Status ParseTagAndName(absl::string_view line, size_t limit,
                             std::string* tag, std::string* name, size_t* after,
                             const char* what);

}  // namespace internal
}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_PARSER_INTERNAL_H_
