// The out-of-band addresses a device may give in PIMAP_OUTBAND_ADDRESS that
// the gateway parses itself: a Web Push subscription (the Push API's
// PushSubscription.toJSON(), RFC 8030/8291), and the MSISDN or WAP Push
// address of the EMN channels (SMS, WAP_PUSH). Pure parsing: the channels
// that send (bindings/webpush, bindings/emn) and the preference check
// (prefs.cc) share it.
#ifndef PIMAP_CORE_SESSION_OUTBAND_ADDRESS_H_
#define PIMAP_CORE_SESSION_OUTBAND_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::session {

struct WebPushSubscription {
  std::string endpoint;  // the whole https URL, as given
  std::string host;      // without brackets for an IPv6 literal
  std::string port = "443";
  std::string path;    // "/..." (with the query, if any)
  std::string origin;  // "https://host[:port]": the VAPID JWT's aud
  std::string p256dh;  // the browser's P-256 public key, 65 raw bytes
  std::string auth;    // the browser's auth secret, 16 raw bytes
};

// Longest address the gateway keeps (a subscription is ~400 bytes).
inline constexpr size_t kMaxOutbandAddress = 4096;

// {"endpoint":"https://...","keys":{"p256dh":"<b64url>","auth":"<b64url>"}}
// (other members, e.g. expirationTime, ignored). InvalidArgument with a
// message fit for a BAD otherwise.
absl::StatusOr<WebPushSubscription> ParseWebPushSubscription(
    absl::string_view json);

// The address of an EMN wake-up (bindings/emn), which the operator's gateway
// delivers:
//  * SMS: an MSISDN, E.164-like: an optional "+" and 3 to 15 digits (no
//    spaces or punctuation: the operator's adapter gets it verbatim);
//  * WAP_PUSH: such an MSISDN, or a WAP Push Proxy Gateway address
//    (WAP-249 PPG service, §7): "WAPPUSH=" value "/TYPE=" type ["@" ppg],
//    the value of [A-Za-z0-9+.:_%-], the type alphanumeric (PLMN, IPv4,
//    IPv6, USER...), the PPG a host name.
// At most kMaxEmnAddress bytes. InvalidArgument with a message fit for a
// BAD otherwise; OK for any other channel.
inline constexpr size_t kMaxEmnAddress = 256;
absl::Status CheckEmnAddress(absl::string_view channel,
                             absl::string_view address);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_OUTBAND_ADDRESS_H_
