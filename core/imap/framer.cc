// Framer: splits an IMAP byte stream into lines and literals, with bounded
// memory and resynchronisation after oversized lines or literals.
#include "core/imap/framer.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::imap {
namespace {

// Long enough for the longest literal header "~{<20 digits>+}" plus a CR.
constexpr size_t kTailBytes = 32;
// A tag longer than this is not echoed back: it is not worth the bytes.
constexpr size_t kMaxReportedTag = 64;

std::string ExtractTag(absl::string_view line) {
  size_t end = line.find(' ');
  if (end == absl::string_view::npos) end = line.size();
  if (end == 0 || end > kMaxReportedTag) return "";
  absl::string_view tag = line.substr(0, end);
  for (char c : tag) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "";
  }
  return std::string(tag);
}

absl::string_view StripCr(absl::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

}  // namespace

LiteralHeaderParse ParseTrailingLiteralHeader(absl::string_view line,
                                              LiteralHeader* header) {
  const ptrdiff_t n = static_cast<ptrdiff_t>(line.size());
  if (n < 3 || line[n - 1] != '}') return LiteralHeaderParse::kNone;
  ptrdiff_t i = n - 2;
  bool plus = false;
  if (line[i] == '+') {
    plus = true;
    --i;
  }
  const ptrdiff_t digits_end = i + 1;
  while (i >= 0 && line[i] >= '0' && line[i] <= '9') --i;
  const ptrdiff_t digits = digits_end - (i + 1);
  if (digits == 0 || i < 0 || line[i] != '{') return LiteralHeaderParse::kNone;
  const bool binary = i > 0 && line[i - 1] == '~';
  header->synchronizing = !plus;
  header->binary = binary;
  header->header_offset = static_cast<size_t>(binary ? i - 1 : i);
  header->size = 0;
  if (digits > 20) return LiteralHeaderParse::kBad;
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (ptrdiff_t k = i + 1; k < digits_end; ++k) {
    const uint64_t d = static_cast<uint64_t>(line[k] - '0');
    if (value > (kMax - d) / 10) return LiteralHeaderParse::kBad;
    value = value * 10 + d;
  }
  header->size = value;
  return LiteralHeaderParse::kOk;
}

Framer::Framer(Mode mode, const ParserLimits& limits)
    : mode_(mode), limits_(limits) {}

void Framer::Reset() {
  state_ = State::kLine;
  buffer_.clear();
  buffer_.shrink_to_fit();
  tail_.clear();
  tag_.clear();
  remaining_ = 0;
  in_command_ = false;
  pending_end_ = false;
  report_discard_ = false;
  literal_unasked_ = false;
}

bool Framer::at_command_start() const {
  return state_ == State::kLine && buffer_.empty() && !in_command_ &&
         !pending_end_;
}

void Framer::ReleaseBuffers() {
  if (!at_command_start()) return;
  std::string().swap(buffer_);
  std::string().swap(tail_);
  std::string().swap(tag_);
}

void Framer::RejectLiteral() {
  if (state_ == State::kFatal) return;
  if (state_ == State::kLiteral && literal_unasked_) {
    // The bytes are on their way anyway: swallow them and the command's rest.
    state_ = State::kSkipLiteral;
    pending_end_ = false;
    return;
  }
  state_ = State::kLine;
  remaining_ = 0;
  in_command_ = false;
  pending_end_ = false;
  tag_.clear();
}

bool Framer::Error(FrameErrorKind kind, std::string message, bool fatal,
                   Visitor& visitor) {
  FrameError error{kind, tag_, std::move(message), fatal};
  if (fatal) {
    state_ = State::kFatal;
    buffer_.clear();
    tail_.clear();
  }
  if (!in_command_) tag_.clear();
  return visitor.OnError(error);
}

void Framer::AppendTail(absl::string_view bytes) {
  if (bytes.size() >= kTailBytes) {
    tail_.assign(bytes.data() + bytes.size() - kTailBytes, kTailBytes);
    return;
  }
  tail_.append(bytes.data(), bytes.size());
  if (tail_.size() > kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
}

void Framer::StartDiscard(absl::string_view head, bool report) {
  if (!in_command_) tag_ = ExtractTag(head);
  state_ = State::kDiscardLine;
  report_discard_ = report;
  tail_.clear();
}

bool Framer::SkipLiteral(const LiteralHeader& header, Visitor& visitor) {
  // The peer sends these bytes whatever we answer, so they must be swallowed
  // to find the next command; beyond 16x the limit we would rather hang up
  // than read gigabytes of garbage.
  const uint64_t cap =
      limits_.max_literal_bytes > std::numeric_limits<uint64_t>::max() / 16
          ? std::numeric_limits<uint64_t>::max()
          : limits_.max_literal_bytes * 16;
  if (header.size > cap) {
    return Error(
        FrameErrorKind::kLiteralTooLarge,
        absl::StrCat("literal too large (", header.size, " bytes, limit ",
                     limits_.max_literal_bytes, " bytes)"),
        /*fatal=*/true, visitor);
  }
  in_command_ = true;
  remaining_ = header.size;
  if (remaining_ > 0) {
    state_ = State::kSkipLiteral;
  } else {
    StartDiscard("", /*report=*/false);
  }
  return true;
}

bool Framer::FinishDiscardedLine(Visitor& visitor) {
  const bool report = report_discard_;
  report_discard_ = false;
  LiteralHeader header;
  const LiteralHeaderParse parse =
      ParseTrailingLiteralHeader(StripCr(tail_), &header);
  tail_.clear();
  if (parse == LiteralHeaderParse::kBad && SentUnasked(header)) {
    return Error(FrameErrorKind::kBadLiteralHeader,
                 "invalid literal size in discarded line", /*fatal=*/true,
                 visitor);
  }
  if (parse == LiteralHeaderParse::kOk && SentUnasked(header)) {
    // The discarded line announced a literal the peer sends anyway: skip it
    // and the rest of the command before looking for the next one.
    const bool ok = SkipLiteral(header, visitor);
    if (state_ == State::kFatal || !ok) return ok;
  } else {
    state_ = State::kLine;
    in_command_ = false;
  }
  if (!report) {
    if (!in_command_) tag_.clear();
    return true;
  }
  return Error(
      FrameErrorKind::kLineTooLong,
      absl::StrCat("line too long (limit ", limits_.max_line_bytes, " bytes)"),
      /*fatal=*/false, visitor);
}

bool Framer::HandleLine(absl::string_view line, Visitor& visitor) {
  if (!in_command_) tag_ = ExtractTag(line);
  LiteralHeader header;
  switch (ParseTrailingLiteralHeader(line, &header)) {
    case LiteralHeaderParse::kNone:
      in_command_ = true;
      pending_end_ = true;  // delivered by Feed() right after OnLine
      return visitor.OnLine(line, nullptr);
    case LiteralHeaderParse::kBad:
      if (SentUnasked(header)) {
        return Error(FrameErrorKind::kBadLiteralHeader, "invalid literal size",
                     /*fatal=*/true, visitor);
      }
      // The client waits for "+" that never comes: nothing to skip.
      state_ = State::kLine;
      in_command_ = false;
      return Error(FrameErrorKind::kBadLiteralHeader, "invalid literal size",
                   /*fatal=*/false, visitor);
    case LiteralHeaderParse::kOk:
      break;
  }
  if (header.size > limits_.max_literal_bytes) {
    std::string message =
        absl::StrCat("literal too large (", header.size, " bytes, limit ",
                     limits_.max_literal_bytes, " bytes)");
    if (SentUnasked(header)) {
      const bool ok = SkipLiteral(header, visitor);
      if (state_ == State::kFatal || !ok) return ok;
    } else {
      state_ = State::kLine;
      in_command_ = false;
    }
    return Error(FrameErrorKind::kLiteralTooLarge, std::move(message),
                 /*fatal=*/false, visitor);
  }
  // Set the state before the callback so that RejectLiteral() from inside
  // OnLine() overrides it.
  in_command_ = true;
  remaining_ = header.size;
  literal_unasked_ = SentUnasked(header);
  state_ = header.size > 0 ? State::kLiteral : State::kLine;
  return visitor.OnLine(line, &header);
}

size_t Framer::Feed(absl::string_view data, Visitor& visitor) {
  size_t pos = 0;
  const size_t max_line = limits_.max_line_bytes;
  while (state_ != State::kFatal) {
    if (pending_end_) {
      pending_end_ = false;
      in_command_ = false;
      tag_.clear();
      if (!visitor.OnEnd()) return pos;
      continue;
    }
    if (pos >= data.size()) break;
    const absl::string_view rest = data.substr(pos);
    switch (state_) {
      case State::kLine: {
        const size_t nl = rest.find('\n');
        if (nl == absl::string_view::npos) {
          // Allow one extra byte: it may be the CR of the CRLF.
          if (buffer_.size() + rest.size() > max_line + 1) {
            std::string head = buffer_;
            head.append(rest.data(), std::min<size_t>(rest.size(), 80));
            StartDiscard(head, /*report=*/true);
            AppendTail(buffer_);
            AppendTail(rest);
            buffer_.clear();
          } else {
            buffer_.append(rest.data(), rest.size());
          }
          pos = data.size();
          continue;
        }
        pos += nl + 1;
        const absl::string_view piece = rest.substr(0, nl);
        const bool has_cr = piece.empty()
                                ? (!buffer_.empty() && buffer_.back() == '\r')
                                : piece.back() == '\r';
        if (buffer_.size() + nl - (has_cr ? 1 : 0) > max_line) {
          std::string head = buffer_;
          head.append(piece.data(), std::min<size_t>(piece.size(), 80));
          StartDiscard(head, /*report=*/true);
          AppendTail(buffer_);
          AppendTail(piece);
          buffer_.clear();
          if (!FinishDiscardedLine(visitor)) return pos;
          continue;
        }
        absl::string_view line;
        if (buffer_.empty()) {
          line = StripCr(piece);  // zero-copy: the whole line is in `data`
        } else {
          buffer_.append(piece.data(), piece.size());
          line = StripCr(buffer_);
        }
        const bool ok = HandleLine(line, visitor);
        buffer_.clear();
        if (!ok) return pos;
        continue;
      }
      case State::kLiteral: {
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        remaining_ -= n;
        pos += n;
        if (remaining_ == 0) state_ = State::kLine;
        if (!visitor.OnLiteralData(rest.substr(0, n))) return pos;
        continue;
      }
      case State::kDiscardLine: {
        const size_t nl = rest.find('\n');
        if (nl == absl::string_view::npos) {
          AppendTail(rest);
          pos = data.size();
          continue;
        }
        AppendTail(rest.substr(0, nl));
        pos += nl + 1;
        if (!FinishDiscardedLine(visitor)) return pos;
        continue;
      }
      case State::kSkipLiteral: {
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        remaining_ -= n;
        pos += n;
        if (remaining_ == 0) StartDiscard("", /*report=*/false);
        continue;
      }
      case State::kFatal:
        break;
    }
  }
  return pos;
}

}  // namespace pimap::imap
