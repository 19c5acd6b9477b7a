// XTERSE's rewriting (terse.h): one status line, a response stream cut
// anywhere, and the output in front of the session's while terse mode is on.
#include "core/session/terse.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace pimap::session {

namespace {

// The status words of RFC 3501 resp-cond-state / resp-cond-bye (untagged
// PREAUTH too); tagged completions are OK, NO or BAD only.
bool IsStatusWord(absl::string_view word, bool tagged) {
  if (absl::EqualsIgnoreCase(word, "OK") ||
      absl::EqualsIgnoreCase(word, "NO") ||
      absl::EqualsIgnoreCase(word, "BAD")) {
    return true;
  }
  return !tagged && (absl::EqualsIgnoreCase(word, "BYE") ||
                     absl::EqualsIgnoreCase(word, "PREAUTH"));
}

// Whether `line` (no CRLF) starts a status response: "* OK ...", "tag NO ...".
// `*status_end` is where the status word ends.
bool IsStatusLine(absl::string_view line, size_t* status_end) {
  const size_t sp = line.find(' ');
  if (sp == absl::string_view::npos || sp == 0) return false;
  const absl::string_view tag = line.substr(0, sp);
  if (tag == "+") return false;
  size_t end = line.find(' ', sp + 1);
  if (end == absl::string_view::npos) end = line.size();
  if (!IsStatusWord(line.substr(sp + 1, end - sp - 1), tag != "*")) {
    return false;
  }
  *status_end = end;
  return true;
}

// The literal header "{n}", "{n+}", "~{n}" that ends `line` (its CRLF
// stripped), if any: its size.
std::optional<uint64_t> TrailingLiteral(absl::string_view line) {
  if (!absl::ConsumeSuffix(&line, "}")) return std::nullopt;
  absl::ConsumeSuffix(&line, "+");
  const size_t open = line.rfind('{');
  if (open == absl::string_view::npos) return std::nullopt;
  const absl::string_view digits = line.substr(open + 1);
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  uint64_t n = 0;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// Whether a status line (no CRLF) ends inside its response code with a
// literal announcement ("* NO [BADCHARSET ({5}"): the only place one can be
// (resp-text-code's astrings; the text after the code is TEXT-CHARs).
bool CodeLiteral(absl::string_view line) {
  size_t status_end = 0;
  if (!IsStatusLine(line, &status_end)) return false;
  const absl::string_view rest = line.substr(status_end);
  if (!absl::StartsWith(rest, " [") ||
      rest.find(']') != absl::string_view::npos) {
    return false;
  }
  return TrailingLiteral(line).has_value();
}

// Bytes of a passed line kept to find its literal header ("~{n+}" with
// twenty digits, and the CRLF).
constexpr size_t kTailBytes = 32;

void KeepTail(std::string* tail, absl::string_view bytes) {
  if (bytes.size() >= kTailBytes) {
    const absl::string_view last = bytes.substr(bytes.size() - kTailBytes);
    tail->assign(last.data(), last.size());
    return;
  }
  tail->append(bytes.data(), bytes.size());
  if (tail->size() > kTailBytes) tail->erase(0, tail->size() - kTailBytes);
}

}  // namespace

std::optional<bool> ParseXterseArgs(absl::string_view args) {
  args = absl::StripAsciiWhitespace(args);
  if (absl::EqualsIgnoreCase(args, "ON")) return true;
  if (absl::EqualsIgnoreCase(args, "OFF")) return false;
  return std::nullopt;
}

std::string TerseLine(absl::string_view line) {
  size_t status_end = 0;
  if (!IsStatusLine(line, &status_end)) return std::string(line);
  absl::string_view rest = line.substr(status_end);
  std::string out(line.substr(0, status_end));
  if (!absl::StartsWith(rest, " [")) return out;
  // The response code runs to its "]"; inside a quoted string (BADCHARSET's
  // charsets, a store's own codes) a "]" does not end it.
  bool quoted = false;
  for (size_t i = 2; i < rest.size(); ++i) {
    const char c = rest[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ']' && !quoted) {
      out.append(rest.data(), i + 1);
      return out;
    }
  }
  return std::string(line);  // no end to the code: leave the line alone
}

std::string TerseResponses(absl::string_view bytes) {
  TerseRewriter rewriter;
  std::string out;
  out.reserve(bytes.size());
  rewriter.Feed(bytes, &out);
  rewriter.Flush(&out);
  return out;
}

// ---- TerseRewriter ----------------------------------------------------------

void TerseRewriter::Feed(absl::string_view bytes, std::string* out) {
  while (!bytes.empty()) {
    switch (state_) {
      case State::kLineStart: {
        // Gather the first two words (or the whole short line).
        size_t i = 0;
        bool decided = false;
        while (i < bytes.size()) {
          const char c = bytes[i++];
          held_.push_back(c);
          if (c == '\n' ||
              (c == ' ' && std::count(held_.begin(), held_.end(), ' ') == 2) ||
              held_.size() >= 96) {
            decided = true;
            break;
          }
        }
        bytes.remove_prefix(i);
        if (decided) Classify(out);
        break;
      }
      case State::kStatus: {
        const size_t nl = bytes.find('\n');
        const size_t take =
            nl == absl::string_view::npos ? bytes.size() : nl + 1;
        held_.append(bytes.data(), take);
        bytes.remove_prefix(take);
        if (nl != absl::string_view::npos) {
          absl::string_view line = held_;
          absl::ConsumeSuffix(&line, "\n");
          absl::ConsumeSuffix(&line, "\r");
          if (CodeLiteral(line)) {
            // A literal inside a status line's code (BADCHARSET's astrings):
            // rare enough to pass as it is.
            out->append(held_);
            tail_ = held_;
            held_.clear();
            EndPassedLine();
          } else {
            out->append(TerseLine(line));
            out->append("\r\n");
            held_.clear();
            state_ = State::kLineStart;
          }
        } else if (held_.size() > kMaxHeldBytes) {
          out->append(held_);
          KeepTail(&tail_, held_);
          held_.clear();
          state_ = State::kLine;
        }
        break;
      }
      case State::kLine: {
        const size_t nl = bytes.find('\n');
        const size_t take =
            nl == absl::string_view::npos ? bytes.size() : nl + 1;
        out->append(bytes.data(), take);
        KeepTail(&tail_, bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (nl != absl::string_view::npos) EndPassedLine();
        break;
      }
      case State::kLiteral: {
        const size_t take = literal_left_ < bytes.size()
                                ? static_cast<size_t>(literal_left_)
                                : bytes.size();
        out->append(bytes.data(), take);
        bytes.remove_prefix(take);
        literal_left_ -= take;
        if (literal_left_ == 0) {
          tail_.clear();
          state_ = State::kLine;  // the line goes on after its literal
        }
        break;
      }
    }
  }
}

void TerseRewriter::Classify(std::string* out) {
  absl::string_view start = held_;
  absl::ConsumeSuffix(&start, "\n");
  absl::ConsumeSuffix(&start, "\r");
  absl::ConsumeSuffix(&start, " ");
  size_t status_end = 0;
  if (held_.size() < 96 && IsStatusLine(start, &status_end)) {
    if (held_.back() == '\n') {  // the whole line is here
      out->append(TerseLine(start));
      out->append("\r\n");
      held_.clear();
      return;
    }
    state_ = State::kStatus;
    return;
  }
  out->append(held_);
  const bool ended = held_.back() == '\n';
  tail_ = std::move(held_);
  held_.clear();
  if (ended) {
    EndPassedLine();
  } else {
    state_ = State::kLine;
  }
}

void TerseRewriter::EndPassedLine() {
  absl::string_view line = tail_;
  std::optional<uint64_t> literal;
  if (absl::ConsumeSuffix(&line, "\r\n")) {
    // A continuation's text never announces a literal, a status line only
    // in its code: "{5}" at the end of their free text (an echoed mailbox
    // name) is text.
    size_t status_end = 0;
    const bool text_only =
        absl::StartsWith(line, "+") ||
        (IsStatusLine(line, &status_end) && !CodeLiteral(line));
    if (!text_only) literal = TrailingLiteral(line);
  }
  tail_.clear();
  if (!literal.has_value()) {
    state_ = State::kLineStart;
  } else if (*literal == 0) {
    state_ = State::kLine;
  } else {
    literal_left_ = *literal;
    state_ = State::kLiteral;
  }
}

void TerseRewriter::Flush(std::string* out) {
  out->append(held_);
  held_.clear();
  tail_.clear();
  literal_left_ = 0;
  state_ = State::kLineStart;
}

// ---- TerseOutput ------------------------------------------------------------

void TerseOutput::WriteResponse(std::string bytes) {
  next_->WriteResponse(TerseResponses(bytes));
}

void TerseOutput::WriteEvents(std::string bytes) {
  next_->WriteEvents(TerseResponses(bytes));
}

bool TerseOutput::WritePassThrough(absl::string_view bytes) {
  std::string out;
  pass_.Feed(bytes, &out);
  // Nothing to write yet (a status line is held until its CRLF): the device
  // is no further behind than before.
  if (out.empty()) return true;
  return next_->WritePassThrough(out);
}

void TerseOutput::EndPassThrough() {
  std::string out;
  pass_.Flush(&out);
  if (!out.empty()) next_->WritePassThrough(out);
  next_->EndPassThrough();
}

void TerseOutput::FlushTo(DeviceOutput* next) {
  std::string out;
  pass_.Flush(&out);
  if (!out.empty() && next != nullptr) next->WritePassThrough(out);
}

absl::Status TerseOutput::StartCompression(std::string ok) {
  return next_->StartCompression(TerseResponses(ok));
}

}  // namespace pimap::session
