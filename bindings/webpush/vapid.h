// VAPID (RFC 8292): the application server's identity towards push services.
// A P-256 key (--vapid-key, PEM) signs a JWT (ES256, raw r||s) whose "aud" is
// the push service's origin and "exp" at most 24 h ahead, carried as
// "Authorization: vapid t=<jwt>, k=<public key>". A token is reused per
// origin until it is close to expiry. One signer per shard: no locks. The
// private key is never logged.
#ifndef PIMAP_BINDINGS_WEBPUSH_VAPID_H_
#define PIMAP_BINDINGS_WEBPUSH_VAPID_H_

#include <openssl/base.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::webpush {

class VapidSigner {
 public:
  // How long a token is valid, and when a new one is made instead.
  static constexpr int64_t kLifetimeSeconds = 12 * 3600;
  static constexpr int64_t kRenewBeforeSeconds = 3600;
  // Tokens kept (one per push-service origin); past it, all are dropped.
  static constexpr size_t kMaxCachedOrigins = 1024;

  // `pem`: a P-256 private key ("EC PRIVATE KEY" or PKCS#8). `subject`:
  // "mailto:..." or "https:..." (RFC 8292 §2.1).
  static absl::StatusOr<std::unique_ptr<VapidSigner>> FromPem(
      absl::string_view pem, absl::string_view subject);
  ~VapidSigner();
  VapidSigner(const VapidSigner&) = delete;
  VapidSigner& operator=(const VapidSigner&) = delete;

  // The Authorization header's value for a request to `origin`
  // ("https://host[:port]") at `now_unix`.
  absl::StatusOr<std::string> Authorization(absl::string_view origin,
                                            int64_t now_unix);
  // The public key as browsers want it (applicationServerKey): base64url of
  // the 65-byte uncompressed point, no padding.
  const std::string& public_key() const { return public_key_; }

 private:
  VapidSigner(EC_KEY* key, std::string subject, std::string public_key);
  absl::StatusOr<std::string> Sign(absl::string_view origin, int64_t exp);

  EC_KEY* key_;
  std::string subject_;
  std::string public_key_;
  struct Token {
    std::string header;
    int64_t exp = 0;
  };
  absl::flat_hash_map<std::string, Token> tokens_;
};

// A new P-256 private key as PEM ("EC PRIVATE KEY"), and its public key in
// base64url (tools/vapid-keygen).
struct VapidKeyPair {
  std::string private_pem;
  std::string public_key;
};
absl::StatusOr<VapidKeyPair> GenerateVapidKey();

}  // namespace pimap::webpush

#endif  // PIMAP_BINDINGS_WEBPUSH_VAPID_H_
