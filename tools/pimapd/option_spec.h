// pimapd's option table row (options.cc) and the rows kept in files of their
// own (options_outband.cc), so that one table still drives the command line,
// the config file and --help. Internal to tools/pimapd.
#ifndef PIMAP_TOOLS_PIMAPD_OPTION_SPEC_H_
#define PIMAP_TOOLS_PIMAPD_OPTION_SPEC_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tools/pimapd/options.h"

namespace pimap {

struct OptionSpec {
  const char* name;     // Without the leading "--"; also the config key.
  const char* metavar;  // nullptr for boolean flags.
  const char* help;
  // Returns InvalidArgument with a detail message (not naming the option;
  // the caller adds that) when `value` is bad.
  absl::Status (*apply)(absl::string_view value, Options& o);
  std::string (*default_value)(const Options& o);
};

// Assigns *result to `field` or forwards the error.
template <typename T, typename U>
absl::Status Set(absl::StatusOr<U> result, T& field) {
  if (!result.ok()) return result.status();
  field = static_cast<T>(*std::move(result));
  return absl::OkStatus();
}

// The main table (options.cc).
absl::Span<const OptionSpec> CoreOptionSpecs();

// The device listeners' TLS certificates (options_tls.cc): the rows, and the
// checks across them once everything is parsed.
absl::Span<const OptionSpec> TlsOptionSpecs();
absl::Status ValidateTls(const Options& o);

// Out-of-band wake-ups (options_outband.cc): the rows, and the checks across
// them once everything is parsed.
absl::Span<const OptionSpec> OutbandOptionSpecs();
absl::Status ValidateOutband(const Options& o);

// XDELIVER's SMTP submission (options_smtp.cc).
absl::Span<const OptionSpec> SmtpOptionSpecs();
absl::Status ValidateSmtp(const Options& o);

// The cluster: etcd, the node's id and forwarding listener
// (options_cluster.cc).
absl::Span<const OptionSpec> ClusterOptionSpecs();
absl::Status ValidateCluster(const Options& o);

// pimapctl's admin socket and token (options_admin.cc).
absl::Span<const OptionSpec> AdminOptionSpecs();

// XCONVERT's external converters and limits (options_convert.cc).
absl::Span<const OptionSpec> ConvertOptionSpecs();

// Every table above, in --help order (options.cc): the one list that parsing,
// the help and sample texts, and a reload's plan go through.
std::vector<absl::Span<const OptionSpec>> OptionTables();

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_OPTION_SPEC_H_
