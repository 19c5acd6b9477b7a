// What a node that accepted a device tells the node that owns the device's
// user when it forwards the connection (issue 16 item 2): one line sent first
// on the internal connection, then the device's own byte stream follows
// unchanged (what it sent after its LOGIN, then everything both ways).
//
//   XFORWARD1 <base64url record> <hex HMAC-SHA256(secret, record)>\r\n
//
// The record carries the login the forwarding node parsed (tag, user, device,
// password, the pre-login ID and XTERSE), the client's real address (logs,
// throttling, the store's x-originating-ip), how many times the connection
// was forwarded already (a bound against forwarding loops while two nodes'
// views disagree) and when it was made.
//
// Why an HMAC with a shared secret (--cluster-secret-file): the owner
// believes the client address and the hop count only from a peer node; a
// line from anyone else (a forged record, a record older than the replay
// window) is refused and the connection closed. The password inside is
// checked by the owner's store login like any other.
//
// Hazard: the record holds the device's password; the line is never logged,
// and the internal network between nodes must be trusted (no TLS between
// nodes yet, as between HAProxy and the nodes).
#ifndef PIMAP_CORE_CLUSTER_FORWARD_RECORD_H_
#define PIMAP_CORE_CLUSTER_FORWARD_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/client_address.h"

namespace pimap::cluster {

inline constexpr size_t kMaxForwardLineBytes = 16 * 1024;
// A record older (or newer) than this, by the receiver's clock, is refused.
inline constexpr int64_t kForwardReplayWindowS = 60;
// Forwarded at most this often: accepting node -> preferred owner -> the
// node that actually holds the user's claim.
inline constexpr uint8_t kMaxForwardHops = 2;

struct ForwardRecord {
  std::string tag;
  std::string user;
  std::string device;
  std::string password;  // secret
  std::string client_id;
  bool terse = false;
  // The device reached the forwarding node over TLS (what the owner's
  // session reports as a secure connection).
  bool secure = false;
  uint8_t hops = 0;  // forwards so far, this one included
  ClientAddress client;
  int64_t issued_unix = 0;
};

std::string EncodeForwardLine(const ForwardRecord& record,
                              absl::string_view secret);

enum class ForwardParse { kNeedMore, kComplete, kInvalid };

// Reads the line at the start of `input`. kComplete: `*record` filled and
// `*consumed` bytes (the line with its CRLF) taken; kInvalid: `*error` says
// why (never quoting the record).
ForwardParse ParseForwardLine(absl::string_view input, absl::string_view secret,
                              int64_t now_unix, ForwardRecord* record,
                              size_t* consumed, std::string* error);

}  // namespace pimap::cluster

#endif  // PIMAP_CORE_CLUSTER_FORWARD_RECORD_H_
