// pimapctl's HTTP/1.1 client of pimapd's admin endpoint: one blocking request
// over a Unix socket (--socket) or TCP (--admin), read with the gateway's own
// parser in response mode. An operator's command, not the data path: plain
// blocking sockets with a timeout are enough.
#ifndef PIMAP_TOOLS_PIMAPCTL_ADMIN_CLIENT_H_
#define PIMAP_TOOLS_PIMAPCTL_ADMIN_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"

namespace pimap::ctl {

struct AdminTarget {
  std::string socket_path;  // either this ...
  std::string host;         // ... or host:port
  std::string port;
  std::string token;  // sent as "Authorization: Bearer" when not empty
  int timeout_ms = 10000;
};

struct AdminAnswer {
  int status = 0;
  std::string content_type;
  std::string body;
};

// `target_path`: "/admin/who?user=..." (already encoded). Unavailable when
// pimapd cannot be reached or the answer is not HTTP.
absl::StatusOr<AdminAnswer> AdminRequest(const AdminTarget& target,
                                         const std::string& method,
                                         const std::string& target_path);

// Percent-encodes a query value (everything but unreserved characters).
std::string QueryEscape(const std::string& value);

}  // namespace pimap::ctl

#endif  // PIMAP_TOOLS_PIMAPCTL_ADMIN_CLIENT_H_
