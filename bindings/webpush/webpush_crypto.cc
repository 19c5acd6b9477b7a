// RFC 8291 aes128gcm (webpush_crypto.h) on BoringSSL: EC_KEY/ECDH_compute_key,
// HKDF from <openssl/hkdf.h>, EVP_AEAD AES-128-GCM.
#include "bindings/webpush/webpush_crypto.h"

#include <openssl/aead.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdh.h>
#include <openssl/hkdf.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/rand.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::webpush {
namespace {

constexpr size_t kPointSize = 65;
constexpr size_t kSaltSize = 16;
constexpr size_t kHeaderSize = kSaltSize + 4 + 1 + kPointSize;

absl::Status Fail(absl::string_view what) {
  return absl::InternalError(absl::StrCat("web push encryption: ", what));
}

// The scalar's key with its public point computed.
bssl::UniquePtr<EC_KEY> KeyFromScalar(absl::string_view scalar) {
  bssl::UniquePtr<EC_KEY> key(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<BIGNUM> d(BN_bin2bn(
      reinterpret_cast<const uint8_t*>(scalar.data()), scalar.size(), nullptr));
  if (key == nullptr || d == nullptr) return nullptr;
  const EC_GROUP* group = EC_KEY_get0_group(key.get());
  bssl::UniquePtr<EC_POINT> pub(EC_POINT_new(group));
  if (pub == nullptr || !EC_KEY_set_private_key(key.get(), d.get()) ||
      !EC_POINT_mul(group, pub.get(), d.get(), nullptr, nullptr, nullptr) ||
      !EC_KEY_set_public_key(key.get(), pub.get())) {
    return nullptr;
  }
  return key;
}

std::string PublicOctets(const EC_KEY* key) {
  std::string out(kPointSize, '\0');
  const size_t n = EC_POINT_point2oct(
      EC_KEY_get0_group(key), EC_KEY_get0_public_key(key),
      POINT_CONVERSION_UNCOMPRESSED, reinterpret_cast<uint8_t*>(out.data()),
      out.size(), nullptr);
  return n == kPointSize ? out : std::string();
}

// The content key and nonce of RFC 8291 §3.3-3.4 for one message.
struct Keys {
  uint8_t cek[16];
  uint8_t nonce[12];
  ~Keys() { OPENSSL_cleanse(this, sizeof(*this)); }
};

// ECDH of `own` with the P-256 point `peer_public` (65 octets).
absl::Status Ecdh(const EC_KEY* own, absl::string_view peer_public,
                  uint8_t out[32]) {
  const EC_GROUP* group = EC_KEY_get0_group(own);
  bssl::UniquePtr<EC_POINT> peer(EC_POINT_new(group));
  if (peer == nullptr ||
      !EC_POINT_oct2point(group, peer.get(),
                          reinterpret_cast<const uint8_t*>(peer_public.data()),
                          peer_public.size(), nullptr)) {
    return absl::InvalidArgumentError(
        "web push encryption: the subscription's key is not a P-256 point");
  }
  if (ECDH_compute_key(out, 32, peer.get(), own, nullptr) != 32) {
    return Fail("ECDH failed");
  }
  return absl::OkStatus();
}

// RFC 8291 section 3.3-3.4 from the ECDH secret.
absl::Status DeriveKeys(const uint8_t ecdh[32], absl::string_view ua_public,
                        absl::string_view as_public,
                        absl::string_view auth_secret, absl::string_view salt,
                        Keys* keys) {
  // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0x00 ua as, 32)
  const std::string key_info = absl::StrCat(
      absl::string_view("WebPush: info\0", 14), ua_public, as_public);
  uint8_t ikm[32];
  const bool ikm_ok = HKDF(
      ikm, sizeof(ikm), EVP_sha256(), ecdh, 32,
      reinterpret_cast<const uint8_t*>(auth_secret.data()), auth_secret.size(),
      reinterpret_cast<const uint8_t*>(key_info.data()), key_info.size());
  if (!ikm_ok) return Fail("HKDF failed");
  static constexpr char kCekInfo[] = "Content-Encoding: aes128gcm";  // + 0x00
  static constexpr char kNonceInfo[] = "Content-Encoding: nonce";
  const auto* s = reinterpret_cast<const uint8_t*>(salt.data());
  const bool ok =
      HKDF(keys->cek, sizeof(keys->cek), EVP_sha256(), ikm, sizeof(ikm), s,
           salt.size(), reinterpret_cast<const uint8_t*>(kCekInfo),
           sizeof(kCekInfo)) &&
      HKDF(keys->nonce, sizeof(keys->nonce), EVP_sha256(), ikm, sizeof(ikm), s,
           salt.size(), reinterpret_cast<const uint8_t*>(kNonceInfo),
           sizeof(kNonceInfo));
  OPENSSL_cleanse(ikm, sizeof(ikm));
  return ok ? absl::OkStatus() : Fail("HKDF failed");
}

absl::StatusOr<KeyAgreement> AgreeWith(const EC_KEY* own,
                                       absl::string_view ua_public) {
  KeyAgreement a;
  a.as_public = PublicOctets(own);
  if (a.as_public.empty()) return Fail("no public key");
  a.ecdh_secret.assign(32, '\0');
  if (absl::Status s = Ecdh(own, ua_public,
                            reinterpret_cast<uint8_t*>(a.ecdh_secret.data()));
      !s.ok()) {
    return s;
  }
  return a;
}

absl::StatusOr<std::string> Seal(const KeyAgreement& agreement,
                                 absl::string_view ua_public,
                                 absl::string_view auth_secret,
                                 absl::string_view plaintext,
                                 absl::string_view salt);

}  // namespace

KeyAgreement::KeyAgreement(KeyAgreement&& other) noexcept
    : as_public(std::move(other.as_public)),
      ecdh_secret(std::move(other.ecdh_secret)) {
  other.ecdh_secret.clear();
}

KeyAgreement& KeyAgreement::operator=(KeyAgreement&& other) noexcept {
  if (this == &other) return *this;
  // Wiped before the buffer can change hands.
  if (!ecdh_secret.empty()) {
    OPENSSL_cleanse(ecdh_secret.data(), ecdh_secret.size());
  }
  ecdh_secret.clear();
  as_public = std::move(other.as_public);
  ecdh_secret = std::move(other.ecdh_secret);
  other.ecdh_secret.clear();
  return *this;
}

KeyAgreement::~KeyAgreement() {
  if (!ecdh_secret.empty()) {
    OPENSSL_cleanse(ecdh_secret.data(), ecdh_secret.size());
  }
}

absl::StatusOr<std::string> EncryptAes128gcm(absl::string_view ua_public,
                                             absl::string_view auth_secret,
                                             absl::string_view plaintext,
                                             const FixedInputs* fixed) {
  if (ua_public.size() != kPointSize || auth_secret.size() != 16) {
    return absl::InvalidArgumentError(
        "web push encryption: subscription keys of the wrong size");
  }
  if (plaintext.size() > kMaxPlaintext) {
    return absl::InvalidArgumentError("web push encryption: payload too long");
  }
  absl::StatusOr<KeyAgreement> agreement = absl::InternalError("unset");
  std::string salt(kSaltSize, '\0');
  if (fixed != nullptr) {
    bssl::UniquePtr<EC_KEY> own = KeyFromScalar(fixed->as_private);
    if (own == nullptr) return Fail("no key");
    agreement = AgreeWith(own.get(), ua_public);
    salt = fixed->salt;
  } else {
    agreement = AgreeKey(ua_public);
    RAND_bytes(reinterpret_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!agreement.ok()) return agreement.status();
  return Seal(*agreement, ua_public, auth_secret, plaintext, salt);
}

absl::StatusOr<KeyAgreement> AgreeKey(absl::string_view ua_public) {
  if (ua_public.size() != kPointSize) {
    return absl::InvalidArgumentError(
        "web push encryption: subscription key of the wrong size");
  }
  // RFC 8291 section 2: a new key pair for every message; it is dropped once
  // the secret is agreed.
  bssl::UniquePtr<EC_KEY> own(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (own == nullptr || !EC_KEY_generate_key(own.get())) return Fail("no key");
  return AgreeWith(own.get(), ua_public);
}

absl::StatusOr<std::string> EncryptAes128gcmWith(const KeyAgreement& agreement,
                                                 absl::string_view ua_public,
                                                 absl::string_view auth_secret,
                                                 absl::string_view plaintext) {
  if (ua_public.size() != kPointSize || auth_secret.size() != 16) {
    return absl::InvalidArgumentError(
        "web push encryption: subscription keys of the wrong size");
  }
  if (plaintext.size() > kMaxPlaintext) {
    return absl::InvalidArgumentError("web push encryption: payload too long");
  }
  if (agreement.as_public.size() != kPointSize ||
      agreement.ecdh_secret.size() != 32) {
    return absl::InvalidArgumentError("web push encryption: no key agreement");
  }
  std::string salt(kSaltSize, '\0');
  RAND_bytes(reinterpret_cast<uint8_t*>(salt.data()), salt.size());
  return Seal(agreement, ua_public, auth_secret, plaintext, salt);
}

namespace {

absl::StatusOr<std::string> Seal(const KeyAgreement& agreement,
                                 absl::string_view ua_public,
                                 absl::string_view auth_secret,
                                 absl::string_view plaintext,
                                 absl::string_view salt) {
  const std::string& as_public = agreement.as_public;
  Keys keys;
  if (absl::Status s = DeriveKeys(
          reinterpret_cast<const uint8_t*>(agreement.ecdh_secret.data()),
          ua_public, as_public, auth_secret, salt, &keys);
      !s.ok()) {
    return s;
  }
  std::string out(salt);
  const uint32_t rs = kRecordSize;
  out.push_back(static_cast<char>(rs >> 24));
  out.push_back(static_cast<char>(rs >> 16));
  out.push_back(static_cast<char>(rs >> 8));
  out.push_back(static_cast<char>(rs));
  out.push_back(static_cast<char>(kPointSize));
  out += as_public;
  // The only (so the last) record: the plaintext and its delimiter 0x02.
  const std::string record = absl::StrCat(plaintext, "\x02");
  bssl::ScopedEVP_AEAD_CTX ctx;
  if (!EVP_AEAD_CTX_init(ctx.get(), EVP_aead_aes_128_gcm(), keys.cek,
                         sizeof(keys.cek), EVP_AEAD_DEFAULT_TAG_LENGTH,
                         nullptr)) {
    return Fail("AEAD init failed");
  }
  const size_t header = out.size();
  out.resize(header + record.size() +
             EVP_AEAD_max_overhead(EVP_aead_aes_128_gcm()));
  size_t sealed = 0;
  if (!EVP_AEAD_CTX_seal(ctx.get(), reinterpret_cast<uint8_t*>(&out[header]),
                         &sealed, out.size() - header, keys.nonce,
                         sizeof(keys.nonce),
                         reinterpret_cast<const uint8_t*>(record.data()),
                         record.size(), nullptr, 0)) {
    return Fail("AEAD seal failed");
  }
  out.resize(header + sealed);
  return out;
}

}  // namespace

absl::StatusOr<std::string> DecryptAes128gcm(absl::string_view ua_private,
                                             absl::string_view ua_public,
                                             absl::string_view auth_secret,
                                             absl::string_view message) {
  if (message.size() < kHeaderSize + 16 ||
      static_cast<uint8_t>(message[20]) != kPointSize) {
    return absl::InvalidArgumentError("aes128gcm: malformed header");
  }
  bssl::UniquePtr<EC_KEY> own = KeyFromScalar(ua_private);
  if (own == nullptr) return Fail("no key");
  const absl::string_view salt = message.substr(0, kSaltSize);
  const absl::string_view as_public = message.substr(21, kPointSize);
  uint8_t ecdh[32];
  if (absl::Status s = Ecdh(own.get(), as_public, ecdh); !s.ok()) return s;
  Keys keys;
  const absl::Status derived =
      DeriveKeys(ecdh, ua_public, as_public, auth_secret, salt, &keys);
  OPENSSL_cleanse(ecdh, sizeof(ecdh));
  if (!derived.ok()) return derived;
  bssl::ScopedEVP_AEAD_CTX ctx;
  if (!EVP_AEAD_CTX_init(ctx.get(), EVP_aead_aes_128_gcm(), keys.cek,
                         sizeof(keys.cek), EVP_AEAD_DEFAULT_TAG_LENGTH,
                         nullptr)) {
    return Fail("AEAD init failed");
  }
  const absl::string_view sealed = message.substr(kHeaderSize);
  std::string out(sealed.size(), '\0');
  size_t opened = 0;
  if (!EVP_AEAD_CTX_open(ctx.get(), reinterpret_cast<uint8_t*>(out.data()),
                         &opened, out.size(), keys.nonce, sizeof(keys.nonce),
                         reinterpret_cast<const uint8_t*>(sealed.data()),
                         sealed.size(), nullptr, 0)) {
    return absl::InvalidArgumentError("aes128gcm: does not authenticate");
  }
  out.resize(opened);
  // Padding: zeros after the delimiter 0x02 (the last record).
  while (!out.empty() && out.back() == '\0') out.pop_back();
  if (out.empty() || out.back() != '\x02') {
    return absl::InvalidArgumentError("aes128gcm: no last-record delimiter");
  }
  out.pop_back();
  return out;
}

}  // namespace pimap::webpush
