// The zstd dictionary of pushed P-IMAP events (docs/zstd-event-frames.md): a
// device that has fetched it once gets each burst of events as one small,
// independent zstd frame made with it. Short event bursts compress poorly on
// their own (a 40-byte "* 12 FETCH (UID 345 FLAGS (\Seen))" gains nothing);
// against a dictionary of what such bursts look like they shrink several
// times, and no compressor state is kept per connection: frames use the
// shard's context and this read-only digested dictionary.
//
// Immutable once loaded, so one instance is shared by every shard (zstd's
// CDict is read-only in use).
#ifndef PIMAP_CORE_HTTP_EVENT_DICTIONARY_H_
#define PIMAP_CORE_HTTP_EVENT_DICTIONARY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct ZSTD_CDict_s ZSTD_CDict;

namespace pimap::http {

class EventDictionary {
 public:
  // A zstd dictionary as ZDICT trains it (with its header and id). Raw
  // content without a zstd dictionary header, or id 0, is refused: devices
  // name the dictionary by its id. Level 9, not zstd's default 3: on bursts
  // of a few hundred bytes (a new message's ENVELOPE) it finds longer
  // matches in the dictionary, 5-10% fewer bytes on the recorded pushes, at
  // ~4-6 µs of CPU per framed event (bench/compress_bench.cc,
  // BM_CapturedZstdFrames).
  static absl::StatusOr<std::shared_ptr<const EventDictionary>> Load(
      std::string bytes, int level = 9);
  // The dictionary that ships with pimapd (tools/dict/, trained by
  // tools/pimap-dict-train).
  static std::shared_ptr<const EventDictionary> Default();

  ~EventDictionary();
  EventDictionary(const EventDictionary&) = delete;
  EventDictionary& operator=(const EventDictionary&) = delete;

  uint32_t id() const { return id_; }
  absl::string_view bytes() const { return bytes_; }
  const ZSTD_CDict* cdict() const { return cdict_; }

 private:
  EventDictionary(std::string bytes, uint32_t id, ZSTD_CDict* cdict)
      : bytes_(std::move(bytes)), id_(id), cdict_(cdict) {}

  std::string bytes_;
  uint32_t id_;
  ZSTD_CDict* cdict_;
};

}  // namespace pimap::http

#endif  // PIMAP_CORE_HTTP_EVENT_DICTIONARY_H_
