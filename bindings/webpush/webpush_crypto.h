// Web Push message encryption (RFC 8291, "aes128gcm" of RFC 8188): ECDH
// P-256 with the browser's key, HKDF-SHA-256 with its auth secret, one
// AES-128-GCM record. All through BoringSSL. Secrets (keys, auth secret) are
// never logged or put into a status message.
#ifndef PIMAP_BINDINGS_WEBPUSH_WEBPUSH_CRYPTO_H_
#define PIMAP_BINDINGS_WEBPUSH_WEBPUSH_CRYPTO_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::webpush {

// The record size announced in the header; one record carries the whole
// message, so the plaintext must be shorter than it minus the tag and the
// delimiter.
inline constexpr uint32_t kRecordSize = 4096;
inline constexpr size_t kMaxPlaintext = kRecordSize - 16 - 1;

// For the RFC's example only: the application server's key pair and the salt
// that are otherwise fresh random values per message.
struct FixedInputs {
  std::string as_private;  // 32-byte P-256 scalar
  std::string salt;        // 16 bytes
};

// The encrypted body: salt(16) || rs(4) || idlen(1)=65 || as_public(65) ||
// ciphertext. `ua_public`: 65-byte uncompressed point; `auth_secret`: 16
// bytes.
absl::StatusOr<std::string> EncryptAes128gcm(
    absl::string_view ua_public, absl::string_view auth_secret,
    absl::string_view plaintext, const FixedInputs* fixed = nullptr);

// The key agreement of one message (RFC 8291 section 3.1), which may be done
// ahead of it: the application server's public key and the ECDH secret with
// the subscription's key. Its private key is gone once the secret is agreed.
// A secret: used for one message only, wiped when destroyed.
struct KeyAgreement {
  std::string as_public;    // 65-byte uncompressed point
  std::string ecdh_secret;  // 32 bytes
  KeyAgreement() = default;
  // By hand: a defaulted move assignment may hand the target's old buffer to
  // the source, which its destructor would then free unwiped.
  KeyAgreement(KeyAgreement&& other) noexcept;
  KeyAgreement& operator=(KeyAgreement&& other) noexcept;
  ~KeyAgreement();
};

// A fresh key pair and its ECDH with `ua_public` (the asymmetric part of a
// message's encryption: what costs the CPU).
absl::StatusOr<KeyAgreement> AgreeKey(absl::string_view ua_public);

// EncryptAes128gcm with a key agreement made ahead (AgreeKey for the same
// `ua_public`), which the caller must not use again.
absl::StatusOr<std::string> EncryptAes128gcmWith(const KeyAgreement& agreement,
                                                 absl::string_view ua_public,
                                                 absl::string_view auth_secret,
                                                 absl::string_view plaintext);

// The browser's side (tests, and a check of the scheme): `ua_private` is the
// 32-byte scalar of `ua_public`. Returns the plaintext without its padding.
absl::StatusOr<std::string> DecryptAes128gcm(absl::string_view ua_private,
                                             absl::string_view ua_public,
                                             absl::string_view auth_secret,
                                             absl::string_view message);

}  // namespace pimap::webpush

#endif  // PIMAP_BINDINGS_WEBPUSH_WEBPUSH_CRYPTO_H_
