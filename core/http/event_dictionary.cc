// Loading the event dictionary (event_dictionary.h), and the default one
// compiled into the binary (event_dictionary_default.cc, generated).
#include "core/http/event_dictionary.h"

#include <zdict.h>
#include <zstd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::http {

// Generated from tools/dict/events-v<N>.zdict (core/http/CMakeLists.txt).
extern const unsigned char kDefaultEventDictionary[];
extern const size_t kDefaultEventDictionarySize;

absl::StatusOr<std::shared_ptr<const EventDictionary>> EventDictionary::Load(
    std::string bytes, int level) {
  const uint32_t id =
      static_cast<uint32_t>(ZDICT_getDictID(bytes.data(), bytes.size()));
  if (id == 0) {
    return absl::InvalidArgumentError(
        "not a zstd dictionary (no dictionary header or id 0)");
  }
  ZSTD_CDict* cdict = ZSTD_createCDict(bytes.data(), bytes.size(), level);
  if (cdict == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("zstd cannot load dictionary ", id));
  }
  return std::shared_ptr<const EventDictionary>(
      new EventDictionary(std::move(bytes), id, cdict));
}

std::shared_ptr<const EventDictionary> EventDictionary::Default() {
  absl::StatusOr<std::shared_ptr<const EventDictionary>> d =
      Load(std::string(reinterpret_cast<const char*>(kDefaultEventDictionary),
                       kDefaultEventDictionarySize));
  // The shipped file is checked by the build's tests; it cannot be invalid.
  return d.ok() ? *std::move(d) : nullptr;
}

EventDictionary::~EventDictionary() { ZSTD_freeCDict(cdict_); }

}  // namespace pimap::http
