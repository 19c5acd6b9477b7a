// pimapd's XCONVERT options (issue 15): the external converters, one per
// from -> to media type, and the limits every conversion runs under. Kept
// apart from the main table (options.cc); main.cc builds each shard's
// convert::Transcoder from them.
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/convert/transcoder.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

constexpr size_t kMaxConverters = 64;
constexpr uint64_t kMiB = 1ull << 20;

absl::Status AddConverter(absl::string_view v, Options& o) {
  if (v == "none") {
    o.converters.clear();
    return absl::OkStatus();
  }
  absl::StatusOr<convert::ConverterRule> rule = convert::ParseConverterRule(v);
  if (!rule.ok()) return rule.status();
  if (o.converters.size() >= kMaxConverters) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxConverters, " converters"));
  }
  o.converters.emplace_back(v);
  return absl::OkStatus();
}

const OptionSpec kConvertOptionSpecs[] = {
    {"converter", "FROM/TYPE:TO/TYPE=PROGRAM [ARG...]|none",
     "An external converter for XCONVERT: parts of media type FROM are "
     "converted to TO by running PROGRAM (an absolute path; no shell, "
     "arguments split at spaces) with the decoded part on stdin and the "
     "result read from stdout, e.g. "
     "\"image/png:image/jpeg=/usr/bin/convert png:- -resize 128x128 jpeg:-\". "
     "Repeat for more (at most 64); \"none\" drops those given before. "
     "Built in without one: text/* in any charset to text/plain (UTF-8), "
     "text/html to text/plain.",
     &AddConverter,
     [](const Options& o) {
       if (o.converters.empty()) return std::string("none");
       return absl::StrJoin(o.converters, ", ");
     }},
    {"converter-timeout", "DURATION",
     "Wall-clock limit of one converter run; past it the converter (and "
     "what it started) is killed and XCONVERT answers NO.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.converter_timeout);
     },
     [](const Options& o) {
       return absl::FormatDuration(o.converter_timeout);
     }},
    {"converter-max-output", "SIZE",
     "Largest result of one conversion (1..64M); a converter writing more is "
     "killed and XCONVERT answers NO [LIMIT].",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, 1, 64 * kMiB), o.converter_max_output);
     },
     [](const Options& o) { return FormatByteSize(o.converter_max_output); }},
    {"converter-memory", "SIZE",
     "Address-space limit (RLIMIT_AS) of a converter process; 0: none.",
     [](absl::string_view v, Options& o) {
       absl::StatusOr<uint64_t> size = ParseByteSize(v);
       if (!size.ok()) return size.status();
       if (*size != 0 && *size < 16 * kMiB) {
         return absl::InvalidArgumentError("expected 0 or at least 16M");
       }
       o.converter_memory = *size;
       return absl::OkStatus();
     },
     [](const Options& o) { return FormatByteSize(o.converter_memory); }},
    {"convert-max-input", "SIZE",
     "Largest body part (as stored, before its transfer encoding is "
     "removed) that XCONVERT fetches to convert (1..12M); a larger one "
     "gets NO [LIMIT].",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, 1, 12 * kMiB), o.convert_max_input);
     },
     [](const Options& o) { return FormatByteSize(o.convert_max_input); }},
};

}  // namespace

absl::Span<const OptionSpec> ConvertOptionSpecs() {
  return kConvertOptionSpecs;
}

}  // namespace pimap
