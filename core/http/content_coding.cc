// HTTP content codings (content_coding.h): Accept-Encoding negotiation,
// bounded request-body decoding, per-burst response encoding. The compressor
// state is the shard's (ShardCompressor), never a device's: a million idle
// long polls hold 8 bytes of coding state each; and a decoded body never grows
// past its bound, whatever its compressed size or its headers claim.
#include "core/http/content_coding.h"

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/http/event_dictionary.h"

namespace pimap::http {
namespace {

// Output is produced in steps of at most this much (and never past the bound).
constexpr size_t kDecodeStep = 32 * 1024;
// Largest zstd window a request body may use: 2^23 = 8 MiB.
constexpr int kZstdWindowLogMax = 23;

// A coding token; the first three have ContentCoding's values.
enum class Token : uint8_t { kIdentity, kGzip, kZstd, kAny, kUnknown };
static_assert(static_cast<int>(Token::kZstd) ==
              static_cast<int>(ContentCoding::kZstd));

Token ParseToken(absl::string_view token) {
  if (absl::EqualsIgnoreCase(token, "gzip") ||
      absl::EqualsIgnoreCase(token, "x-gzip")) {
    return Token::kGzip;
  }
  if (absl::EqualsIgnoreCase(token, "zstd")) return Token::kZstd;
  if (absl::EqualsIgnoreCase(token, "identity")) return Token::kIdentity;
  if (token == "*") return Token::kAny;
  return Token::kUnknown;
}

// The weight of one Accept-Encoding element in thousandths (RFC 9110 §12.4.2:
// q is 0 to 1 with at most three decimals); 1000 without a q parameter. False
// for a malformed q, and the element is then ignored.
bool ParseWeight(absl::string_view params, int* q) {
  *q = 1000;
  for (absl::string_view param : absl::StrSplit(params, ';')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(kv.first), "q")) {
      continue;  // other parameters carry no meaning for us
    }
    absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    // Digits and a dot only: SimpleAtod would also take "inf", "1e-3", "0x1".
    double d = 0;
    if (value.empty() || value.size() > 5 ||
        !std::all_of(
            value.begin(), value.end(),
            [](char c) { return absl::ascii_isdigit(c) || c == '.'; }) ||
        !absl::SimpleAtod(value, &d) || d < 0 || d > 1) {
      return false;
    }
    *q = static_cast<int>(d * 1000 + 0.5);
  }
  return true;
}

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

absl::Status TooLarge(size_t max_decoded) {
  return absl::ResourceExhaustedError(
      absl::StrCat("decoded body larger than ", max_decoded, " bytes"));
}

// The next output step for a body with `produced` bytes so far: at most one
// byte past the bound, so that going past it is seen and nothing more is made.
size_t StepFor(size_t produced, size_t max_decoded) {
  return std::min(kDecodeStep, max_decoded - produced + 1);
}

absl::StatusOr<std::string> DecodeGzip(absl::string_view body,
                                       size_t max_decoded) {
  z_stream strm{};
  // 15 + 16: gzip wrapper only (not zlib, not raw), any window up to 32 KiB.
  if (inflateInit2(&strm, 15 + 16) != Z_OK) {
    return absl::ResourceExhaustedError("inflateInit2 failed");
  }
  std::string out;
  size_t produced = 0;
  size_t in_pos = 0;
  absl::Status status;
  for (;;) {
    size_t chunk = std::min<size_t>(body.size() - in_pos, UINT_MAX);
    strm.next_in =
        reinterpret_cast<Bytef*>(const_cast<char*>(body.data() + in_pos));
    strm.avail_in = static_cast<uInt>(chunk);
    size_t step = StepFor(produced, max_decoded);
    out.resize(produced + step);
    strm.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    strm.avail_out = static_cast<uInt>(step);
    int ret = inflate(&strm, Z_NO_FLUSH);
    in_pos += chunk - strm.avail_in;
    produced += step - strm.avail_out;
    if (produced > max_decoded) {
      status = TooLarge(max_decoded);
      break;
    }
    if (ret == Z_STREAM_END) {
      if (in_pos == body.size()) break;  // the last member ended the body
      // Another member (RFC 1952 §2.2), or garbage that its header check
      // rejects on the next call.
      inflateReset(&strm);
      continue;
    }
    if (ret == Z_OK && (in_pos < body.size() || strm.avail_out == 0)) continue;
    if (ret == Z_OK || ret == Z_BUF_ERROR) {
      status = Invalid("truncated gzip body");
    } else if (ret == Z_MEM_ERROR) {
      status = absl::ResourceExhaustedError("inflate out of memory");
    } else {
      status = Invalid(absl::StrCat("corrupt gzip body: ",
                                    strm.msg ? strm.msg : "bad data"));
    }
    break;
  }
  inflateEnd(&strm);
  if (!status.ok()) return status;
  out.resize(produced);
  return out;
}

absl::StatusOr<std::string> DecodeZstd(absl::string_view body,
                                       size_t max_decoded) {
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (dctx == nullptr) return absl::ResourceExhaustedError("ZSTD_createDCtx");
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, kZstdWindowLogMax);
  // The streaming decoder allocates the frame's window (bounded above), not
  // its declared content size; the output grows by steps up to the bound.
  ZSTD_inBuffer in{body.data(), body.size(), 0};
  std::string out;
  size_t produced = 0;
  absl::Status status;
  for (;;) {
    size_t step = StepFor(produced, max_decoded);
    out.resize(produced + step);
    ZSTD_outBuffer dst{out.data() + produced, step, 0};
    size_t ret = ZSTD_decompressStream(dctx, &dst, &in);
    if (ZSTD_isError(ret)) {
      if (ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge) {
        status =
            absl::ResourceExhaustedError("zstd frame window larger than 8 MiB");
      } else if (ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation) {
        status = absl::ResourceExhaustedError("zstd decoder out of memory");
      } else {
        status = Invalid(
            absl::StrCat("corrupt zstd body: ", ZSTD_getErrorName(ret)));
      }
      break;
    }
    produced += dst.pos;
    if (produced > max_decoded) {
      status = TooLarge(max_decoded);
      break;
    }
    // 0: a frame ended and is fully flushed; the next one (if any input is
    // left) is decoded in turn.
    if (ret == 0 && in.pos == in.size) break;
    if (in.pos < in.size || dst.pos == dst.size) continue;
    // All input read, output not full, and inside a frame.
    status = Invalid("truncated zstd body");
    break;
  }
  ZSTD_freeDCtx(dctx);
  if (!status.ok()) return status;
  out.resize(produced);
  return out;
}

// A final, empty deflate block: BFINAL=1, BTYPE=01 (fixed Huffman), then the
// end-of-block code (7 zero bits): what deflate() of nothing with Z_FINISH on
// a fresh raw stream emits.
constexpr char kFinalEmptyBlock[] = {0x03, 0x00};

// The gzip member header (RFC 1952 §2.3): magic, CM=8 (deflate), no flags,
// MTIME 0 (none), XFL 0, OS 3 (Unix).
constexpr char kGzipHeader[] = {
    0x1f, static_cast<char>(0x8b), 8, 0, 0, 0, 0, 0, 0, 3};

void AppendLittleEndian32(uint32_t v, std::string* out) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
               static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out->append(b, sizeof(b));
}

}  // namespace

absl::string_view ContentCodingName(ContentCoding coding) {
  static constexpr absl::string_view kNames[] = {"identity", "gzip", "zstd"};
  return kNames[static_cast<int>(coding)];
}

ContentCoding NegotiateResponseCoding(const std::string* accept_encoding) {
  if (accept_encoding == nullptr) return ContentCoding::kIdentity;
  // Weights in thousandths by Token; -1 = not listed. A coding listed twice
  // takes its highest weight.
  int w[4] = {-1, -1, -1, -1};
  for (absl::string_view element :
       absl::StrSplit(*accept_encoding, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(element, absl::MaxSplits(';', 1));
    int q = 0;
    Token token = ParseToken(absl::StripAsciiWhitespace(parts.first));
    if (token == Token::kUnknown || !ParseWeight(parts.second, &q)) continue;
    w[static_cast<int>(token)] = std::max(w[static_cast<int>(token)], q);
  }
  const int any = w[static_cast<int>(Token::kAny)];
  int zstd = w[static_cast<int>(Token::kZstd)];
  int gzip = w[static_cast<int>(Token::kGzip)];
  int identity = w[static_cast<int>(Token::kIdentity)];
  // "*" stands for every coding not listed (identity included, RFC 9110
  // §12.5.3); identity not excluded either way is acceptable, at the lowest
  // positive weight, so any listed coding is preferred to it.
  if (zstd < 0) zstd = any;
  if (gzip < 0) gzip = any;
  if (identity < 0) identity = any >= 0 ? any : 1;
  // Highest weight wins; ties go to zstd, then gzip, then identity.
  if (zstd > 0 && zstd >= gzip && zstd >= identity) return ContentCoding::kZstd;
  if (gzip > 0 && gzip >= identity) return ContentCoding::kGzip;
  return ContentCoding::kIdentity;
}

absl::StatusOr<ContentCoding> ParseContentEncoding(const std::string* value) {
  if (value == nullptr) return ContentCoding::kIdentity;
  std::vector<absl::string_view> codings =
      absl::StrSplit(*value, ',', absl::SkipWhitespace());
  if (codings.empty()) return ContentCoding::kIdentity;
  if (codings.size() > 1) {
    return Invalid("several content codings are not supported");
  }
  Token token = ParseToken(absl::StripAsciiWhitespace(codings[0]));
  if (token == Token::kAny || token == Token::kUnknown) {
    return Invalid(absl::StrCat("unsupported content coding: ", *value));
  }
  return static_cast<ContentCoding>(token);  // same values
}

absl::StatusOr<std::string> DecodeBody(ContentCoding coding,
                                       absl::string_view body,
                                       size_t max_decoded) {
  if (coding == ContentCoding::kGzip) return DecodeGzip(body, max_decoded);
  if (coding == ContentCoding::kZstd) return DecodeZstd(body, max_decoded);
  if (body.size() > max_decoded) return TooLarge(max_decoded);
  return std::string(body);
}

// ---- ShardCompressor ----

ShardCompressor::ShardCompressor(const Options& options) : options_(options) {}

ShardCompressor::~ShardCompressor() {
  ZSTD_freeCCtx(zstd_);
  ZSTD_freeCCtx(zstd_dict_);
  if (deflate_ != nullptr) {
    deflateEnd(deflate_);
    delete deflate_;
  }
}

// zlib allocations carry their size in front, to count deflate_bytes_.
void* ShardCompressor::Alloc(void* opaque, unsigned items, unsigned size) {
  constexpr size_t kHeader = alignof(std::max_align_t);
  const size_t bytes = static_cast<size_t>(items) * size;
  char* p = static_cast<char*>(std::malloc(bytes + kHeader));
  if (p == nullptr) return Z_NULL;
  std::memcpy(p, &bytes, sizeof(bytes));
  static_cast<ShardCompressor*>(opaque)->deflate_bytes_ += bytes;
  return p + kHeader;
}

void ShardCompressor::Free(void* opaque, void* address) {
  constexpr size_t kHeader = alignof(std::max_align_t);
  if (address == nullptr) return;
  char* p = static_cast<char*>(address) - kHeader;
  size_t bytes = 0;
  std::memcpy(&bytes, p, sizeof(bytes));
  static_cast<ShardCompressor*>(opaque)->deflate_bytes_ -= bytes;
  std::free(p);
}

size_t ShardCompressor::zstd_state_bytes() const {
  return (zstd_ == nullptr ? 0 : ZSTD_sizeof_CCtx(zstd_)) +
         (zstd_dict_ == nullptr ? 0 : ZSTD_sizeof_CCtx(zstd_dict_));
}

void ShardCompressor::AppendZstdFrame(absl::string_view bytes,
                                      std::string* out) {
  if (zstd_ == nullptr) {
    zstd_ = ZSTD_createCCtx();
    if (zstd_ == nullptr) std::abort();
    // Sticky across frames; ZSTD_compress2 resets only the session.
    ZSTD_CCtx_setParameter(zstd_, ZSTD_c_compressionLevel, options_.zstd_level);
    ZSTD_CCtx_setParameter(zstd_, ZSTD_c_windowLog, options_.zstd_window_log);
    ZSTD_CCtx_setParameter(zstd_, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(zstd_, ZSTD_c_contentSizeFlag, 1);
  }
  const size_t old = out->size();
  out->resize(old + ZSTD_compressBound(bytes.size()));
  size_t n = ZSTD_compress2(zstd_, out->data() + old, out->size() - old,
                            bytes.data(), bytes.size());
  // With a compressBound-sized buffer only an allocation can fail.
  if (ZSTD_isError(n)) std::abort();
  out->resize(old + n);
}

void ShardCompressor::AppendZstdDictFrame(const EventDictionary& dictionary,
                                          absl::string_view bytes,
                                          std::string* out) {
  if (zstd_dict_ == nullptr) {
    zstd_dict_ = ZSTD_createCCtx();
    if (zstd_dict_ == nullptr) std::abort();
    // The smallest header a dictionary frame can have: magic, descriptor and
    // (single segment, the size known) a 1-2 byte content size. No checksum:
    // TCP/TLS protect the bytes, and 4 bytes are a lot next to a 30-byte
    // event. No dictionary id (4 more bytes): the device named the dictionary
    // when it switched framing on (XZSTDEVENTS <id>), and a process keeps
    // one dictionary for its life, so the id would say nothing new.
    ZSTD_CCtx_setParameter(zstd_dict_, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(zstd_dict_, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(zstd_dict_, ZSTD_c_dictIDFlag, 0);
  }
  // Compression parameters come from the (digested) dictionary.
  ZSTD_CCtx_refCDict(zstd_dict_, dictionary.cdict());
  const size_t old = out->size();
  out->resize(old + ZSTD_compressBound(bytes.size()));
  const size_t n = ZSTD_compress2(zstd_dict_, out->data() + old,
                                  out->size() - old, bytes.data(), bytes.size());
  if (ZSTD_isError(n)) std::abort();
  out->resize(old + n);
}

void ShardCompressor::AppendDeflateFlushed(absl::string_view bytes,
                                           std::string* out) {
  if (deflate_ == nullptr) {
    deflate_ = new z_stream{};
    deflate_->zalloc = &ShardCompressor::Alloc;
    deflate_->zfree = &ShardCompressor::Free;
    deflate_->opaque = this;
    // Negative windowBits: raw deflate, the gzip framing is ResponseEncoder's.
    if (deflateInit2(deflate_, options_.gzip_level, Z_DEFLATED,
                     -options_.gzip_window_bits, options_.gzip_mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      std::abort();
    }
  } else {
    // A fresh compressor for every burst: no history from another response
    // (or from this one's previous burst: the client needs none).
    deflateReset(deflate_);
  }
  size_t pos = 0;
  for (;;) {
    const size_t chunk = std::min<size_t>(bytes.size() - pos, UINT_MAX);
    const bool last = pos + chunk == bytes.size();
    deflate_->next_in =
        reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + pos));
    deflate_->avail_in = static_cast<uInt>(chunk);
    // Z_FULL_FLUSH ends the burst byte-aligned (an empty stored block) with
    // nothing after it referring back into this burst.
    const int flush = last ? Z_FULL_FLUSH : Z_NO_FLUSH;
    do {
      const size_t old = out->size();
      const size_t room = std::min<size_t>(
          deflateBound(deflate_, deflate_->avail_in) + 16, UINT_MAX);
      out->resize(old + room);
      deflate_->next_out = reinterpret_cast<Bytef*>(out->data() + old);
      deflate_->avail_out = static_cast<uInt>(room);
      deflate(deflate_, flush);  // Z_OK or Z_BUF_ERROR (no progress): fine
      out->resize(old + room - deflate_->avail_out);
    } while (deflate_->avail_out == 0);
    pos += chunk;
    if (last) break;
  }
}

// ---- ResponseEncoder ----

void ResponseEncoder::StartGzip(std::string* out) {
  out->append(kGzipHeader, sizeof(kGzipHeader));
  started_ = true;
}

std::string ResponseEncoder::Encode(absl::string_view bytes) {
  std::string out;
  if (bytes.empty() || finished_) return out;
  bytes_in_ += bytes.size();
  switch (coding_) {
    case ContentCoding::kIdentity:
      out.assign(bytes.data(), bytes.size());
      break;
    case ContentCoding::kZstd:
      shared_->AppendZstdFrame(bytes, &out);
      started_ = true;
      break;
    case ContentCoding::kGzip:
      if (!started_) StartGzip(&out);
      shared_->AppendDeflateFlushed(bytes, &out);
      crc_ = static_cast<uint32_t>(crc32_z(
          crc_, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
      length_ += static_cast<uint32_t>(bytes.size());  // ISIZE: mod 2^32
      break;
  }
  bytes_out_ += out.size();
  return out;
}

std::string ResponseEncoder::Finish() {
  std::string out;
  if (finished_) return out;
  finished_ = true;
  switch (coding_) {
    case ContentCoding::kIdentity:
      break;
    case ContentCoding::kZstd:
      if (!started_) shared_->AppendZstdFrame("", &out);
      break;
    case ContentCoding::kGzip:
      if (!started_) StartGzip(&out);
      out.append(kFinalEmptyBlock, sizeof(kFinalEmptyBlock));
      AppendLittleEndian32(crc_, &out);
      AppendLittleEndian32(length_, &out);
      break;
  }
  bytes_out_ += out.size();
  return out;
}

}  // namespace pimap::http
