// XZIP's own parts (xzip.h): the wrappable commands, the inner command kept
// whole, the bounded capture of the session's output and its gzip.
#include "core/session/xzip.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/http/content_coding.h"
#include "core/imap/command.h"

namespace pimap::session {
namespace {

// The captured responses are framed only to find the inner tagged line: a
// longer line is skipped (and is not a tagged completion); literals are
// passed over whatever their size.
imap::ParserLimits CaptureLimits() {
  imap::ParserLimits limits;
  limits.max_line_bytes = 8 * 1024;
  limits.max_literal_bytes = uint64_t{1} << 62;
  return limits;
}

}  // namespace

bool XzipWraps(absl::string_view name) {
  return name != "IDLE" && name != "AUTHENTICATE" && name != "LOGIN" &&
         name != "LOGOUT" && name != "STARTTLS" && name != "COMPRESS" &&
         name != "XZIP";
}

absl::StatusOr<XzipInner> ParseXzipLine(absl::string_view line,
                                        absl::string_view tag) {
  // "tag XZIP " then the inner command; the head parsed "tag XZIP" already.
  const size_t offset = tag.size() + 1 + 4 + 1;
  if (line.size() <= offset) {
    return absl::InvalidArgumentError("XZIP expects a tagged command to run");
  }
  absl::StatusOr<imap::CommandHead> head =
      imap::ParseCommandHead(line.substr(offset));
  if (!head.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "XZIP expects a tagged command to run: ", head.status().message()));
  }
  return XzipInner{offset, std::move(head->tag), std::move(head->name)};
}

std::string XzipGzip(absl::string_view bytes,
                     http::ShardCompressor* compressor) {
  if (compressor == nullptr) {
    http::ShardCompressor own;
    return XzipGzip(bytes, &own);
  }
  http::ResponseEncoder encoder(http::ContentCoding::kGzip, compressor);
  std::string out = encoder.Encode(bytes);
  out += encoder.Finish();
  return out;
}

Xzip::Xzip(std::string outer_tag, XzipInner inner)
    : outer_tag_(std::move(outer_tag)),
      inner_tag_(std::move(inner.tag)),
      inner_offset_(inner.offset),
      framer_(imap::Framer::Mode::kResponses, CaptureLimits()) {}

// ---- The inner command ------------------------------------------------------

bool Xzip::AddLine(absl::string_view line, const imap::LiteralHeader* literal) {
  Piece piece;
  size_t skip = 0;
  if (pieces_.empty()) skip = std::min(inner_offset_, line.size());
  command_bytes_ += line.size() - skip + 2;
  if (command_bytes_ > kMaxCommandBytes) return false;
  piece.line.assign(line.data() + skip, line.size() - skip);
  if (literal != nullptr) {
    piece.has_literal = true;
    piece.literal = *literal;
    piece.literal.header_offset -= std::min(skip, literal->header_offset);
    if (literal->size > kMaxCommandBytes - command_bytes_) return false;
  }
  pieces_.push_back(std::move(piece));
  return true;
}

bool Xzip::AddLiteralData(absl::string_view chunk) {
  command_bytes_ += chunk.size();
  if (command_bytes_ > kMaxCommandBytes || pieces_.empty()) return false;
  pieces_.back().data.append(chunk.data(), chunk.size());
  return true;
}

// ---- The capture ------------------------------------------------------------

void Xzip::Start(DeviceOutput* real, size_t max_bytes,
                 std::function<void(bool resume)> on_release) {
  real_ = real;
  max_bytes_ = max_bytes;
  on_release_ = std::move(on_release);
}

void Xzip::Capture(absl::string_view bytes) {
  if (abandoned_ || bytes.empty()) return;
  framer_.Feed(bytes, *this);  // the visitor never pauses: all is consumed
  if (overflowed_) return;
  if (captured_.size() + bytes.size() > max_bytes_) {
    // Too large to answer: keep nothing, but go on looking for the end.
    overflowed_ = true;
    std::string().swap(captured_);
    return;
  }
  captured_.append(bytes.data(), bytes.size());
}

void Xzip::Abandon() {
  abandoned_ = true;
  std::string().swap(captured_);
  std::string().swap(held_);
}

std::string Xzip::TakeCaptured() {
  if (!held_.empty()) Capture(std::exchange(held_, std::string()));
  return std::exchange(captured_, std::string());
}

void Xzip::WriteResponse(std::string bytes) {
  // As the binding does: the session's own answers never go inside a
  // response that is passing through.
  if (passing_) {
    held_ += bytes;
    return;
  }
  Capture(bytes);
}

bool Xzip::WritePassThrough(absl::string_view bytes) {
  passing_ = true;
  Capture(bytes);
  return true;  // kept here, bounded: the store need not wait for the device
}

void Xzip::EndPassThrough() {
  passing_ = false;
  if (!held_.empty()) Capture(std::exchange(held_, std::string()));
}

void Xzip::SetCommandRunning(bool running, bool resume) {
  if (running) {
    held_input_ = true;
    real_->SetCommandRunning(true, false);
    return;
  }
  // Letting go of input waits for the XZIP's answer: the router decides.
  // The call may free this object, so it runs from a copy.
  std::function<void(bool)> release = on_release_;
  release(resume);
}

void Xzip::EndSession(absl::string_view reason) {
  Abandon();
  real_->EndSession(reason);
}

void Xzip::Close() {
  Abandon();
  real_->Close();
}

bool Xzip::OnLine(absl::string_view line, const imap::LiteralHeader*) {
  if (response_start_) {
    response_start_ = false;
    const absl::string_view tag = line.substr(0, line.find(' '));
    response_tag_.assign(tag.data(), tag.size());
  }
  return true;
}

bool Xzip::OnEnd() {
  if (response_tag_ == inner_tag_) inner_done_ = true;
  response_start_ = true;
  response_tag_.clear();
  return true;
}

bool Xzip::OnError(const imap::FrameError&) {
  // An overlong line: the framer resynchronises at the next response.
  response_start_ = true;
  response_tag_.clear();
  return true;
}

}  // namespace pimap::session
