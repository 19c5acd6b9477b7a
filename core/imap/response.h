// Parsing of server responses: the gateway is an IMAP client of the store.
#ifndef PIMAP_CORE_IMAP_RESPONSE_H_
#define PIMAP_CORE_IMAP_RESPONSE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/limits.h"
#include "core/imap/parser_internal.h"

namespace pimap::imap {

struct Response {
  enum class Kind { kTagged, kUntagged, kContinuation };
  Kind kind = Kind::kUntagged;
  std::string tag;                 // kTagged only
  std::optional<uint32_t> number;  // "* 3 EXISTS" -> 3
  std::string name;                // upper-cased: "OK", "EXISTS", "FETCH"...
  std::string code;                // status: resp-text-code without brackets
  // Status responses and continuations: the human-readable text (the rest of
  // the first line; never tokenized, it may hold unbalanced brackets).
  std::string text;
  std::vector<Arg> args;   // data responses: tokens after the name
  bool is_status() const;  // OK/NO/BAD/BYE/PREAUTH
};

// Same contract as CommandAssembler, for one server response. Data responses
// are tokenized leniently (extra and trailing spaces, any "\" escape).
class ResponseAssembler {
 public:
  ResponseAssembler(const ParserLimits& limits, size_t max_total_bytes);
  absl::Status AddLine(absl::string_view line, const LiteralHeader* literal);
  absl::Status AddLiteralData(absl::string_view chunk);
  absl::StatusOr<Response> Finish();
  void Reset();

 private:
  ParserLimits limits_;
  internal::Collector collector_;
};

// The one response `raw` holds (its line or lines, CRLFs and literals as
// the store sent them), e.g. bytes collected while a StoreLink delivered
// them. InvalidArgument when it is not exactly one whole response.
absl::StatusOr<Response> ParseWholeResponse(absl::string_view raw,
                                            const ParserLimits& limits,
                                            size_t max_bytes);

// Capability atoms, upper-cased, from "* CAPABILITY ..." or from a status
// response with a [CAPABILITY ...] code; empty otherwise.
std::vector<std::string> CapabilitiesFrom(const Response& r);

// Whether `caps` lists `cap` (case-insensitive).
bool HasCapability(const std::vector<std::string>& caps, absl::string_view cap);

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_RESPONSE_H_
