// The operator's webhook of the EMN channel (--emn-webhook): its URL, parsed
// once at start-up (the option check and the channel share it).
#ifndef PIMAP_BINDINGS_EMN_WEBHOOK_URL_H_
#define PIMAP_BINDINGS_EMN_WEBHOOK_URL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::emn {

struct WebhookUrl {
  bool tls = true;   // https
  std::string host;  // lower-case; without brackets for an IPv6 literal
  uint16_t port = 443;
  std::string authority;  // the Host header: host[:port] as given
  std::string path;       // "/..." with the query, if any
};

// http(s)://host[:port][/path]; no user info, no fragment, no spaces (the
// URL goes into a request line and a Host header). InvalidArgument with a
// message fit for the command line otherwise. Whether plain http is allowed
// is the caller's (--outband-allow-private).
absl::StatusOr<WebhookUrl> ParseWebhookUrl(absl::string_view url);

}  // namespace pimap::emn

#endif  // PIMAP_BINDINGS_EMN_WEBHOOK_URL_H_
