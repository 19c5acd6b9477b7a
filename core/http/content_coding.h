// HTTP content codings (RFC 9110 §8.4) for the P-IMAP HTTP binding: choosing
// the response coding from Accept-Encoding, decoding compressed request bodies,
// and encoding response bodies (identity, gzip, zstd) burst by burst.
//
// Two constraints shape it:
//  * Memory: a million idle phones long-polling must not cost a compressor
//    each. The zstd context (and the deflate stream) live once per shard in
//    ShardCompressor; a ResponseEncoder keeps no compressor memory between
//    bursts (gzip: the running CRC-32 and length, 8 bytes), and every burst it
//    returns is decodable by the client at once.
//  * Bombs: request bodies are inflated incrementally up to a bound and never
//    past it; neither a declared size nor a zstd window is trusted for
//    allocation.
#ifndef PIMAP_CORE_HTTP_CONTENT_CODING_H_
#define PIMAP_CORE_HTTP_CONTENT_CODING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
struct z_stream_s;

namespace pimap::http {

class EventDictionary;

enum class ContentCoding : uint8_t { kIdentity, kGzip, kZstd };

// "identity", "gzip", "zstd": the token for Content-Encoding.
absl::string_view ContentCodingName(ContentCoding coding);

// The response coding for a request's Accept-Encoding value (RFC 9110
// §12.5.3): comma-separated codings with optional ";q=" weights, "*" for any
// coding not listed, q=0 excludes, case-insensitive, "x-gzip" = gzip. Among
// acceptable codings with the highest q: zstd, then gzip, then identity.
// identity stays acceptable unless listed with q=0 (or "*;q=0" without an
// identity entry); when unlisted it ranks below every listed coding. Absent
// header (nullptr) or an empty value -> identity. When nothing is acceptable
// (e.g. "identity;q=0" alone) -> identity too: RFC 9110 lets the server send
// an uncoded response rather than 406, and that always works.
ContentCoding NegotiateResponseCoding(const std::string* accept_encoding);

// The coding of a request body from its Content-Encoding value: absent,
// empty or "identity", "gzip", "x-gzip", "zstd" (case-insensitive). Anything
// else, or several codings in a list -> absl::InvalidArgumentError (the
// caller answers 415).
absl::StatusOr<ContentCoding> ParseContentEncoding(const std::string* value);

// Decodes a whole request body into at most `max_decoded` bytes.
//  * More -> absl::ResourceExhaustedError (413, close). Decoding is
//    incremental and stops one byte past the bound; nothing is allocated from
//    a size the body claims (the output string's capacity stays under twice
//    the bound). A zstd frame needing a window over 8 MiB
//    (ZSTD_d_windowLogMax 23) is refused the same way.
//  * Corrupt or truncated data, trailing garbage, an empty gzip/zstd body ->
//    absl::InvalidArgumentError (400).
//  * gzip: one or more concatenated members (RFC 1952). zstd: one or more
//    concatenated frames (RFC 8878 §3.1), skippable frames ignored.
absl::StatusOr<std::string> DecodeBody(ContentCoding coding,
                                       absl::string_view body,
                                       size_t max_decoded);

// The compressor state of one shard, shared by every response it encodes: a
// zstd context and a raw-deflate stream, each created on first use and reset
// (not freed) per burst. Resetting the deflate stream gives each burst the
// same fresh, history-free compressor that deflateInit2/deflateEnd per burst
// would, without allocating and zeroing ~22 KiB per event. One per shard
// thread; not thread-safe. (Named for its owner and lifetime, the shard.)
//
// Allocation failure inside zstd/zlib aborts, as a failing operator new does.
class ShardCompressor {
 public:
  struct Options {
    int zstd_level = 3;
    // 128 KiB: bursts are small, and the context's size follows the window.
    int zstd_window_log = 17;
    int gzip_level = 6;
    // Raw deflate window 2^11 = 2 KiB, memLevel 4: ~22 KiB of deflate state.
    int gzip_window_bits = 11;
    int gzip_mem_level = 4;
  };

  ShardCompressor() : ShardCompressor(Options()) {}
  explicit ShardCompressor(const Options& options);
  ~ShardCompressor();
  ShardCompressor(const ShardCompressor&) = delete;
  ShardCompressor& operator=(const ShardCompressor&) = delete;

  const Options& options() const { return options_; }

  // The dictionary of pushed-event frames this shard offers (read-only,
  // shared by all shards); null: none.
  void set_event_dictionary(std::shared_ptr<const EventDictionary> d) {
    event_dictionary_ = std::move(d);
  }
  const EventDictionary* event_dictionary() const {
    return event_dictionary_.get();
  }

  // Appends one complete zstd frame holding `bytes` (content size and
  // checksum in the frame) to *out.
  void AppendZstdFrame(absl::string_view bytes, std::string* out);
  // Appends one complete zstd frame of `bytes` made with `dictionary` (the
  // content size in the frame header; no dictionary id, no checksum): a
  // device holding the dictionary decodes it alone (event_dictionary.h).
  void AppendZstdDictFrame(const EventDictionary& dictionary,
                           absl::string_view bytes, std::string* out);
  // Appends `bytes` as raw deflate blocks (none final) ending in a full
  // flush: byte-aligned, and nothing after it refers back.
  void AppendDeflateFlushed(absl::string_view bytes, std::string* out);

  // Bytes held by the zstd context / the deflate stream (0 before first use).
  size_t zstd_state_bytes() const;
  size_t deflate_state_bytes() const { return deflate_bytes_; }

 private:
  static void* Alloc(void* opaque, unsigned items, unsigned size);
  static void Free(void* opaque, void* address);

  Options options_;
  std::shared_ptr<const EventDictionary> event_dictionary_;
  ZSTD_CCtx* zstd_ = nullptr;
  // Dictionary frames take their parameters from the dictionary: a context
  // of their own keeps them apart from the sticky ones above.
  ZSTD_CCtx* zstd_dict_ = nullptr;
  z_stream_s* deflate_ = nullptr;
  size_t deflate_bytes_ = 0;
};

// Encodes one response body, burst by burst; each Encode() returns bytes the
// client can decode completely right away (a streamed long poll flushes each
// event), and nothing of a compressor is kept between calls:
//  * zstd: each burst is one complete frame made with the shard's context.
//  * gzip: one member for the whole body (clients read only the first member
//    reliably): the header before the first burst, each burst raw deflate
//    ended by a full flush, Finish() a final empty block and the trailer.
//  * identity: bytes pass through.
class ResponseEncoder {
 public:
  // `shared` must outlive the encoder; unused (may be null) for identity.
  ResponseEncoder(ContentCoding coding, ShardCompressor* shared)
      : shared_(shared), coding_(coding) {}

  ContentCoding coding() const { return coding_; }

  // The encoding of the next `bytes` of the body; "" for "".
  std::string Encode(absl::string_view bytes);
  // The end of the body: gzip header (if no burst had data), final block and
  // trailer; zstd: an empty frame if no frame was sent (so the body is never
  // empty, RFC 8878 §3.1); identity: "". Call once, after the last Encode().
  std::string Finish();

  // Counters for metrics: bytes in and out so far (Finish() included).
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }

 private:
  void StartGzip(std::string* out);

  ShardCompressor* shared_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  // gzip: the CRC-32 and length (mod 2^32) of the body so far.
  uint32_t crc_ = 0;
  uint32_t length_ = 0;
  ContentCoding coding_;
  bool started_ = false;  // gzip header / first zstd frame sent
  bool finished_ = false;
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_CONTENT_CODING_H_
