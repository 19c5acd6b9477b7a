// Shared buffering and tokenizing for the command and response parsers.
#include "core/imap/parser_internal.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/imap/command.h"

namespace pimap::imap::internal {
namespace {

absl::Status Bad(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

bool IsCtl(unsigned char c) { return c < 0x20 || c == 0x7f; }

}  // namespace

bool IsParserAtomChar(unsigned char c) {
  // Practical superset of ATOM-CHAR: "]", "\", "%" and "*" are allowed (flags,
  // LIST wildcards, sequence sets), as is 8-bit (clients send raw UTF-8).
  return !IsCtl(c) && c != ' ' && c != '(' && c != ')' && c != '"' && c != '{';
}

bool IsTagChar(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' &&
         c != '%' && c != '*' && c != '\\' && c != '+';
}

absl::Status ParseTagAndName(absl::string_view line, size_t limit,
                             std::string* tag, std::string* name, size_t* after,
                             const char* what) {
  if (limit > line.size()) limit = line.size();
  if (line.empty()) return Bad(absl::StrCat("empty ", what));
  size_t i = 0;
  while (i < limit && IsTagChar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || (i < line.size() && line[i] != ' ')) {
    return Bad("invalid tag");
  }
  tag->assign(line.data(), i);
  if (i >= limit) return Bad("missing command");
  ++i;  // SP
  const size_t start = i;
  while (i < limit) {
    const char c = line[i];
    if (c == ' ') break;
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return Bad("invalid command name");
    }
    ++i;
  }
  if (i == start) {
    return Bad(i < line.size() && line[i] == ' ' ? "unexpected extra space"
                                                 : "missing command");
  }
  if (i < line.size() && i == limit) return Bad("invalid command name");
  name->assign(line.data() + start, i - start);
  absl::AsciiStrToUpper(name);
  *after = i;
  return absl::OkStatus();
}

// --- Collector ---------------------------------------------------------------

absl::Status Collector::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
  return status_;
}

void Collector::Reset() {
  text_.clear();
  lines_.clear();
  literals_.clear();
  literal_remaining_ = 0;
  want_literal_ = false;
  total_ = 0;
  status_ = absl::OkStatus();
}

absl::Status Collector::AddLine(absl::string_view line,
                                const LiteralHeader* literal) {
  if (!status_.ok()) return status_;
  if (want_literal_) return Fail(Bad("line received before literal data"));
  if (!lines_.empty() && lines_.back().literal < 0) {
    return Fail(Bad(absl::StrCat(what_, " already complete")));
  }
  total_ += line.size();
  if (literal != nullptr) {
    if (literal->header_offset >= line.size() ||
        literal->size > max_total_bytes_) {
      total_ = max_total_bytes_ + 1;
    } else {
      total_ += static_cast<size_t>(literal->size);
    }
  }
  if (total_ > max_total_bytes_) {
    return Fail(Bad(absl::StrCat(what_, " too large (limit ", max_total_bytes_,
                                 " bytes)")));
  }
  LineRef ref;
  ref.begin = text_.size();
  text_.append(line.data(), line.size());
  ref.end = text_.size();
  if (literal != nullptr) {
    ref.literal = static_cast<int>(literals_.size());
    ref.binary = literal->binary;
    ref.header_offset = literal->header_offset;
    literals_.emplace_back();
    // Bounded by max_total_bytes_ (checked above), so reserving is safe.
    literals_.back().reserve(static_cast<size_t>(literal->size));
    literal_remaining_ = literal->size;
    want_literal_ = literal->size > 0;
  }
  lines_.push_back(ref);
  return absl::OkStatus();
}

absl::Status Collector::AddLiteralData(absl::string_view chunk) {
  if (!status_.ok()) return status_;
  if (!want_literal_ || chunk.size() > literal_remaining_) {
    return Fail(Bad("unexpected literal data"));
  }
  literals_.back().append(chunk.data(), chunk.size());
  literal_remaining_ -= chunk.size();
  if (literal_remaining_ == 0) want_literal_ = false;
  return absl::OkStatus();
}

absl::Status Collector::Segments(std::vector<Segment>* out) {
  if (!status_.ok()) return status_;
  if (lines_.empty()) return Fail(Bad(absl::StrCat("empty ", what_)));
  if (want_literal_ || lines_.back().literal >= 0) {
    return Fail(Bad(absl::StrCat("incomplete ", what_)));
  }
  out->clear();
  out->reserve(lines_.size());
  for (const LineRef& ref : lines_) {
    Segment s;
    s.line = absl::string_view(text_).substr(ref.begin, ref.end - ref.begin);
    if (ref.literal >= 0) {
      s.literal = &literals_[static_cast<size_t>(ref.literal)];
      s.binary = ref.binary;
      s.header_offset = ref.header_offset;
    }
    out->push_back(s);
  }
  return absl::OkStatus();
}

// --- Tokenizer ---------------------------------------------------------------

absl::Status Tokenizer::ParseRemainingArgs(std::vector<Arg>* out) {
  if (AtEnd()) return absl::OkStatus();
  if (AtLiteral() || segs_[seg_].line[pos_] != ' ') {
    return Bad("expected space");
  }
  ++pos_;
  if (lenient_) {
    while (!AtTextEnd() && segs_[seg_].line[pos_] == ' ') ++pos_;
    if (AtEnd()) return absl::OkStatus();
  } else if (AtEnd()) {
    return Bad("trailing space");
  }
  return ParseSequence(out, 0);
}

absl::Status Tokenizer::ParseSequence(std::vector<Arg>* out, int depth) {
  // Called at the first token of a top-level sequence, or right after "(".
  if (depth > 0) {
    if (!AtLiteral() && !AtTextEnd() && segs_[seg_].line[pos_] == ')') {
      ++pos_;
      return absl::OkStatus();
    }
    if (!AtLiteral() && !AtTextEnd() && segs_[seg_].line[pos_] == ' ') {
      if (!lenient_) return Bad("unexpected space after '('");
      while (!AtTextEnd() && segs_[seg_].line[pos_] == ' ') ++pos_;
      if (!AtTextEnd() && segs_[seg_].line[pos_] == ')') {
        ++pos_;
        return absl::OkStatus();
      }
    }
  }
  while (true) {
    out->emplace_back();
    if (absl::Status s = ParseToken(&out->back(), depth); !s.ok()) return s;
    if (AtEnd()) {
      if (depth > 0) return Bad("missing ')'");
      return absl::OkStatus();
    }
    if (AtLiteral()) return Bad("expected space before literal");
    if (AtTextEnd()) return Bad("expected space");  // not reachable in practice
    const char c = segs_[seg_].line[pos_];
    if (c == ')') {
      if (depth == 0) return Bad("unbalanced ')'");
      ++pos_;
      return absl::OkStatus();
    }
    // Lists that follow one another without a space: RFC 2342's namespace
    // descriptors, RFC 3501's multipart body parts ("((...)(...) \"mixed\")").
    if (lenient_ && c == '(' && out->back().type == Arg::Type::kList) continue;
    if (c != ' ') return Bad("expected space");
    ++pos_;
    if (lenient_) {
      while (!AtTextEnd() && segs_[seg_].line[pos_] == ' ') ++pos_;
      if (AtEnd()) {
        if (depth > 0) return Bad("missing ')'");
        return absl::OkStatus();
      }
      if (!AtLiteral() && !AtTextEnd() && segs_[seg_].line[pos_] == ')' &&
          depth > 0) {
        ++pos_;
        return absl::OkStatus();
      }
    } else {
      if (AtEnd()) return Bad("trailing space");
      if (!AtLiteral() && !AtTextEnd()) {
        const char n = segs_[seg_].line[pos_];
        if (n == ' ') return Bad("unexpected extra space");
        if (n == ')') return Bad("unexpected space before ')'");
      }
    }
  }
}

absl::Status Tokenizer::ParseToken(Arg* out, int depth) {
  const Segment& s = segs_[seg_];
  if (AtLiteral()) {
    out->type = Arg::Type::kLiteral;
    out->binary = s.binary;
    out->value = std::move(*s.literal);
    ++seg_;
    pos_ = 0;
    return absl::OkStatus();
  }
  if (AtTextEnd()) return Bad("missing argument");
  const char c = s.line[pos_];
  if (c == '(') {
    if (depth + 1 > max_depth_) return Bad("nesting too deep");
    ++pos_;
    out->type = Arg::Type::kList;
    return ParseSequence(&out->children, depth + 1);
  }
  if (c == '"') return ParseQuoted(out);
  if (c == ')') return Bad("unexpected ')'");
  return ParseAtom(out);
}

absl::Status Tokenizer::ParseQuoted(Arg* out) {
  const Segment& s = segs_[seg_];
  const size_t end = s.text_end();
  out->type = Arg::Type::kQuoted;
  ++pos_;             // opening quote
  size_t run = pos_;  // start of the current run of plain characters
  while (pos_ < end) {
    const char c = s.line[pos_];
    if (c == '"') {
      out->value.append(s.line.data() + run, pos_ - run);
      ++pos_;
      return absl::OkStatus();
    }
    if (c == '\0' || c == '\r' || c == '\n') {
      return Bad("invalid character in quoted string");
    }
    if (c == '\\') {
      out->value.append(s.line.data() + run, pos_ - run);
      if (pos_ + 1 >= end) break;
      const char e = s.line[pos_ + 1];
      if (!lenient_ && e != '\\' && e != '"') {
        return Bad("invalid escape in quoted string");
      }
      if (e == '\0' || e == '\r' || e == '\n') {
        return Bad("invalid character in quoted string");
      }
      out->value.push_back(e);
      pos_ += 2;
      run = pos_;
      continue;
    }
    ++pos_;
  }
  return Bad("unterminated quoted string");
}

absl::Status Tokenizer::ParseAtom(Arg* out) {
  const Segment& s = segs_[seg_];
  const size_t end = s.text_end();
  const size_t start = pos_;
  while (pos_ < end) {
    const unsigned char c = static_cast<unsigned char>(s.line[pos_]);
    if (c == '[') {
      // A fetch-att section like BODY[HEADER.FIELDS (FROM TO)] is one atom
      // even though it holds spaces and parentheses. With no closing ']' the
      // '[' is an ordinary ATOM-CHAR.
      if (last_close_seg_ != seg_) {
        last_close_seg_ = seg_;
        last_close_ = s.line.substr(0, end).rfind(']');
      }
      if (last_close_ != absl::string_view::npos && last_close_ > pos_) {
        const size_t close = s.line.find(']', pos_);
        for (size_t k = pos_ + 1; k < close; ++k) {
          const unsigned char b = static_cast<unsigned char>(s.line[k]);
          if (IsCtl(b)) return Bad("invalid character in section");
        }
        pos_ = close + 1;
        continue;
      }
      ++pos_;
      continue;
    }
    if (!IsParserAtomChar(c)) break;
    ++pos_;
  }
  if (pos_ == start) {
    const unsigned char c = static_cast<unsigned char>(s.line[pos_]);
    if (c == '{' || c == '~') return Bad("invalid literal");
    return Bad("invalid character in argument");
  }
  out->value.assign(s.line.data() + start, pos_ - start);
  out->type = absl::EqualsIgnoreCase(out->value, "NIL") ? Arg::Type::kNil
                                                        : Arg::Type::kAtom;
  return absl::OkStatus();
}

}  // namespace pimap::imap::internal
