// Incremental HTTP/1.1 request parsing (see the header for the rules).
#include "core/http/request_parser.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace pimap::http {

namespace {

// RFC 9110 §5.6.2 tchar.
bool IsTchar(unsigned char c) {
  if (absl::ascii_isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

// field-value characters: VCHAR, obs-text, SP, HTAB.
bool IsFieldValue(absl::string_view s) {
  for (unsigned char c : s) {
    if (c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f)) continue;
    return false;
  }
  return true;
}

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool HasToken(absl::string_view list, absl::string_view token) {
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    if (absl::EqualsIgnoreCase(TrimOws(item), token)) return true;
  }
  return false;
}

// A chunk-size line (size and extensions) longer than this is refused: no
// client needs more, and it bounds what is buffered before the data.
constexpr size_t kMaxChunkLineBytes = 1024;

}  // namespace

const std::string* HttpRequest::Header(absl::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

void HttpRequestParser::Feed(absl::string_view data) {
  if (error_status_ != 0) return;
  buffer_.append(data.data(), data.size());
}

HttpRequestParser::Result HttpRequestParser::Fail(int status,
                                                  std::string reason) {
  error_status_ = status;
  error_reason_ = std::move(reason);
  buffer_.clear();
  consumed_ = 0;
  return Result::kError;
}

std::string HttpRequestParser::TakeBuffered() {
  std::string rest = buffer_.substr(consumed_);
  buffer_.clear();
  consumed_ = 0;
  scan_from_ = 0;
  have_head_ = false;
  head_end_ = 0;
  body_length_ = 0;
  chunked_ = false;
  continue_due_ = false;
  pending_ = HttpRequest();
  return rest;
}

void HttpRequestParser::Compact() {
  if (consumed_ == buffer_.size()) {
    // Between requests nothing is kept: an idle keep-alive connection (a
    // long-polling device) holds no buffer.
    std::string().swap(buffer_);
    consumed_ = 0;
  } else if (consumed_ > 4096 && consumed_ * 2 > buffer_.size()) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
}

HttpRequestParser::Result HttpRequestParser::Next(HttpRequest* out) {
  if (error_status_ != 0) return Result::kError;
  if (!have_head_) {
    // RFC 9112 §2.2: ignore empty lines before a request-line (some clients
    // send a CRLF after a POST body).
    while (consumed_ < buffer_.size() && scan_from_ == 0) {
      if (buffer_[consumed_] == '\n') {
        ++consumed_;
      } else if (buffer_[consumed_] == '\r' && consumed_ + 1 < buffer_.size() &&
                 buffer_[consumed_ + 1] == '\n') {
        consumed_ += 2;
      } else {
        break;
      }
    }
    if (consumed_ < buffer_.size() && buffer_[consumed_] == '\r' &&
        consumed_ + 1 == buffer_.size()) {
      return Result::kNeedMore;  // a lone CR: wait for its LF
    }
    // Look for the blank line that ends the head: "\n\n" or "\n\r\n".
    const absl::string_view data(buffer_.data() + consumed_,
                                 buffer_.size() - consumed_);
    size_t end = absl::string_view::npos;
    size_t pos = scan_from_;
    while (true) {
      pos = data.find('\n', pos);
      if (pos == absl::string_view::npos) {
        scan_from_ = data.size();
        break;
      }
      if (pos + 1 < data.size() && data[pos + 1] == '\n') {
        end = pos + 2;
        break;
      }
      if (pos + 2 < data.size() && data[pos + 1] == '\r' &&
          data[pos + 2] == '\n') {
        end = pos + 3;
        break;
      }
      if (pos + 2 >= data.size()) {  // cannot tell yet: look here again later
        scan_from_ = pos;
        break;
      }
      ++pos;
    }
    if (end == absl::string_view::npos) {
      if (data.size() > kMaxHeaderBytes) {
        return Fail(431, "request header block too large");
      }
      return Result::kNeedMore;
    }
    if (end > kMaxHeaderBytes)
      return Fail(431, "request header block too large");
    pending_ = HttpRequest();
    if (ParseHead(data.substr(0, end)) == Result::kError) return Result::kError;
    have_head_ = true;
    head_end_ = end;
    chunk_pos_ = end;  // a chunked body starts after the head
    scan_from_ = 0;
  }
  if (chunked_ && stream_chunked_bodies_) {
    // The head goes out now; the body follows through NextBody().
    consumed_ += head_end_;
    chunk_pos_ = 0;
    have_head_ = false;
    head_end_ = 0;
    streaming_body_ = true;
    pending_.streaming = true;
    *out = std::move(pending_);
    pending_ = HttpRequest();
    return Result::kRequest;
  }
  if (chunked_) {
    if (Result r = ParseChunks(); r != Result::kRequest) return r;
    consumed_ += chunk_pos_;
  } else {
    if (buffer_.size() - consumed_ < head_end_ + body_length_) {
      return Result::kNeedMore;
    }
    pending_.body.assign(buffer_, consumed_ + head_end_, body_length_);
    consumed_ += head_end_ + body_length_;
  }
  have_head_ = false;
  head_end_ = 0;
  body_length_ = 0;
  chunked_ = false;
  continue_due_ = false;
  *out = std::move(pending_);
  pending_ = HttpRequest();
  Compact();
  return Result::kRequest;
}

HttpRequestParser::BodyResult HttpRequestParser::NextBody(std::string* out) {
  if (error_status_ != 0) return BodyResult::kError;
  if (!streaming_body_) return BodyResult::kEnd;
  const Result r = ParseChunks();
  // Decoded bytes leave at once: a streamed body is bounded per chunk, not
  // in total (pending_.body holds at most one chunk's worth).
  const bool got_data = !pending_.body.empty();
  out->append(pending_.body);
  pending_.body.clear();
  consumed_ += chunk_pos_;
  chunk_pos_ = 0;
  switch (r) {
    case Result::kError:
      return BodyResult::kError;
    case Result::kNeedMore:
      Compact();
      // Whether bytes came now, not whether *out holds any: a caller that
      // accumulates into one string must still see kNeedMore (found by
      // tests/fuzz/http_request_fuzzer.cc).
      return got_data ? BodyResult::kData : BodyResult::kNeedMore;
    case Result::kRequest:
      break;
  }
  streaming_body_ = false;
  chunked_ = false;
  continue_due_ = false;
  pending_ = HttpRequest();
  Compact();
  return BodyResult::kEnd;
}

bool HttpRequestParser::ContinueDue() {
  return std::exchange(continue_due_, false);
}

HttpRequestParser::Result HttpRequestParser::ParseChunks() {
  while (true) {
    const absl::string_view data(buffer_.data() + consumed_ + chunk_pos_,
                                 buffer_.size() - consumed_ - chunk_pos_);
    switch (chunk_state_) {
      case ChunkState::kSize: {
        // chunk-size [ chunk-ext ] CRLF
        const size_t nl = data.find('\n');
        if (nl == absl::string_view::npos) {
          if (data.size() > kMaxChunkLineBytes) {
            return Fail(400, "chunk size line too long");
          }
          return Result::kNeedMore;
        }
        if (nl > kMaxChunkLineBytes)
          return Fail(400, "chunk size line too long");
        absl::string_view line = data.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const absl::string_view digits =
            TrimOws(line.substr(0, line.find(';')));
        uint64_t size = 0;
        if (digits.empty() || digits.size() > 15) {
          return Fail(400, "malformed chunk size");
        }
        for (char c : digits) {
          if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
            return Fail(400, "malformed chunk size");
          }
          size = size * 16 +
                 (absl::ascii_isdigit(static_cast<unsigned char>(c))
                      ? c - '0'
                      : absl::ascii_tolower(static_cast<unsigned char>(c)) -
                            'a' + 10);
        }
        if (!IsFieldValue(line)) return Fail(400, "invalid chunk extension");
        if (streaming_body_ && size != 0 && !pending_.body.empty()) {
          // Hazard: a streamed body's limit is per chunk, but pending_.body
          // would sum every chunk that arrived in one read, so the same bytes
          // passed or got 413 depending on how the network split them. Hand
          // the previous chunk out first; this line is read again next call.
          return Result::kNeedMore;
        }
        chunk_pos_ += nl + 1;
        if (size == 0) {
          chunk_state_ = ChunkState::kTrailer;
          trailer_bytes_ = 0;
          break;
        }
        if (pending_.body.size() + size > max_body_bytes_) {
          return Fail(413, "request body too large");
        }
        chunk_left_ = size;
        chunk_state_ = ChunkState::kData;
        break;
      }
      case ChunkState::kData: {
        if (data.empty()) return Result::kNeedMore;
        // Chunk framing (sizes, extensions) on top of the body is bounded
        // too: tiny chunks with long extensions must not buffer without end.
        if (!streaming_body_ &&
            chunk_pos_ > 2 * max_body_bytes_ + kMaxHeaderBytes + 4096) {
          return Fail(413, "request body framing too large");
        }
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(chunk_left_, data.size()));
        pending_.body.append(data.data(), n);
        chunk_pos_ += n;
        chunk_left_ -= n;
        if (chunk_left_ > 0) return Result::kNeedMore;
        chunk_state_ = ChunkState::kDataEnd;
        break;
      }
      case ChunkState::kDataEnd:
        if (data.empty()) return Result::kNeedMore;
        if (data[0] == '\n') {
          chunk_pos_ += 1;
        } else if (data[0] == '\r') {
          if (data.size() < 2) return Result::kNeedMore;
          if (data[1] != '\n')
            return Fail(400, "chunk data not followed by CRLF");
          chunk_pos_ += 2;
        } else {
          return Fail(400, "chunk data not followed by CRLF");
        }
        chunk_state_ = ChunkState::kSize;
        break;
      case ChunkState::kTrailer: {
        // trailer-section CRLF: fields are dropped, their size is bounded.
        const size_t nl = data.find('\n');
        if (nl == absl::string_view::npos) {
          if (trailer_bytes_ + data.size() > kMaxHeaderBytes) {
            return Fail(431, "trailer section too large");
          }
          return Result::kNeedMore;
        }
        trailer_bytes_ += nl + 1;
        if (trailer_bytes_ > kMaxHeaderBytes) {
          return Fail(431, "trailer section too large");
        }
        const absl::string_view line = data.substr(0, nl);
        chunk_pos_ += nl + 1;
        if (line.empty() || line == "\r") {
          chunk_state_ = ChunkState::kSize;
          return Result::kRequest;
        }
        break;
      }
    }
  }
}

HttpRequestParser::Result HttpRequestParser::ParseHead(absl::string_view head) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, '\n');
  // The head ends in a blank line, so the last two split pieces are empty.
  while (!lines.empty() && (lines.back().empty() || lines.back() == "\r")) {
    lines.pop_back();
  }
  if (lines.empty()) return Fail(400, "empty request");
  for (absl::string_view& line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != absl::string_view::npos)
      return Fail(400, "stray CR");
  }

  const Result r =
      responses_ ? ParseStatusLine(lines[0]) : ParseRequestLine(lines[0]);
  if (r == Result::kError) return r;
  return ParseFields(lines);
}

HttpRequestParser::Result HttpRequestParser::ParseStatusLine(
    absl::string_view line) {
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  if (line.size() < 12 || !absl::StartsWith(line, "HTTP/1.") ||
      (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return Fail(400, "malformed status line");
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(line[i]))) {
      return Fail(400, "malformed status code");
    }
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return Fail(400, "malformed status code");
  pending_.version_minor = line[7] - '0';
  pending_.status = status;
  return Result::kRequest;
}

HttpRequestParser::Result HttpRequestParser::ParseRequestLine(
    absl::string_view line) {
  // request-line = method SP request-target SP HTTP-version
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty()) {
    return Fail(400, "malformed request line");
  }
  for (unsigned char c : parts[1]) {
    if (c <= 0x20 || c == 0x7f) return Fail(400, "malformed request target");
  }
  if (parts[2] == "HTTP/1.1") {
    pending_.version_minor = 1;
  } else if (parts[2] == "HTTP/1.0") {
    pending_.version_minor = 0;
  } else if (parts[2].size() == 8 && absl::StartsWith(parts[2], "HTTP/") &&
             absl::ascii_isdigit(parts[2][5]) && parts[2][6] == '.' &&
             absl::ascii_isdigit(parts[2][7])) {
    return Fail(505, "HTTP version not supported");
  } else {
    return Fail(400, "malformed HTTP version");
  }
  pending_.method = std::string(parts[0]);
  pending_.target = std::string(parts[1]);
  return Result::kRequest;
}

HttpRequestParser::Result HttpRequestParser::ParseFields(
    const std::vector<absl::string_view>& lines) {
  if (lines.size() - 1 > kMaxHeaderFields) {
    return Fail(431, "too many request header fields");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (line.empty()) return Fail(400, "empty header line");
    if (line.front() == ' ' || line.front() == '\t') {
      return Fail(400, "obsolete header line folding");
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Fail(400, "malformed header field");
    }
    const absl::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value))
      return Fail(400, "invalid character in header value");
    pending_.headers.emplace_back(absl::AsciiStrToLower(line.substr(0, colon)),
                                  std::string(value));
  }

  // Framing (RFC 9112 §6).
  bool have_length = false;
  uint64_t length = 0;
  bool have_host = false;
  bool expect_continue = false;
  chunked_ = false;
  bool close = pending_.version_minor == 0;
  for (const auto& [name, value] : pending_.headers) {
    if (name == "transfer-encoding") {
      // Only "chunked", alone: a server that does not know a coding cannot
      // find the end of the body (RFC 9112 §6.1).
      if (!absl::EqualsIgnoreCase(value, "chunked")) {
        return Fail(501, "only the chunked transfer coding is implemented");
      }
      if (chunked_) return Fail(400, "repeated Transfer-Encoding");
      chunked_ = true;
    } else if (name == "expect") {
      expect_continue = absl::EqualsIgnoreCase(value, "100-continue");
    } else if (name == "content-length") {
      uint64_t n = 0;
      if (value.empty() || value.size() > 19 ||
          value.find_first_not_of("0123456789") != std::string::npos ||
          !absl::SimpleAtoi(value, &n)) {
        return Fail(400, "malformed Content-Length");
      }
      if (have_length && n != length)
        return Fail(400, "conflicting Content-Length");
      have_length = true;
      length = n;
    } else if (name == "host") {
      if (have_host) return Fail(400, "duplicate Host");
      have_host = true;
    } else if (name == "connection") {
      if (HasToken(value, "close")) close = true;
      if (pending_.version_minor == 0 && HasToken(value, "keep-alive"))
        close = false;
    }
  }
  if (pending_.version_minor == 1 && !have_host && !responses_)
    return Fail(400, "missing Host");
  if (chunked_ && (have_length || pending_.version_minor == 0)) {
    // Two framings disagree about where the request ends (smuggling).
    return Fail(400, have_length ? "both Transfer-Encoding and Content-Length"
                                 : "chunked body in HTTP/1.0");
  }
  if (!have_length && !chunked_ &&
      (pending_.method == "POST" || pending_.method == "PUT")) {
    return Fail(411, "Content-Length or chunked transfer coding required");
  }
  if (responses_ && !chunked_ && !have_length) {
    // No body (1xx/204/304), or one that ends with the connection, which
    // nothing the gateway asks needs: not read, and the connection goes.
    if (pending_.status >= 200 && pending_.status != 204 &&
        pending_.status != 304) {
      close = true;
    }
  }
  if (length > max_body_bytes_) return Fail(413, "request body too large");
  body_length_ = static_cast<size_t>(length);
  chunk_state_ = ChunkState::kSize;
  chunk_pos_ = 0;
  chunk_left_ = 0;
  continue_due_ = expect_continue && pending_.version_minor == 1 &&
                  (chunked_ || length > 0);
  pending_.keep_alive = !close;
  return Result::kRequest;
}

}  // namespace pimap::http
