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

absl::Status DeriveKeys(const EC_KEY* own, absl::string_view peer_public,
                        absl::string_view ua_public,
                        absl::string_view as_public,
                        absl::string_view auth_secret, absl::string_view salt,
                        Keys* keys) {
  const EC_GROUP* group = EC_KEY_get0_group(own);
  bssl::UniquePtr<EC_POINT> peer(EC_POINT_new(group));
  if (peer == nullptr ||
      !EC_POINT_oct2point(group, peer.get(),
                          reinterpret_cast<const uint8_t*>(peer_public.data()),
                          peer_public.size(), nullptr)) {
    return absl::InvalidArgumentError(
        "web push encryption: the subscription's key is not a P-256 point");
  }
  uint8_t ecdh[32];
  if (ECDH_compute_key(ecdh, sizeof(ecdh), peer.get(), own, nullptr) !=
      sizeof(ecdh)) {
    return Fail("ECDH failed");
  }
  // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0x00 ua as, 32)
  const std::string key_info = absl::StrCat(
      absl::string_view("WebPush: info\0", 14), ua_public, as_public);
  uint8_t ikm[32];
  const bool ikm_ok = HKDF(
      ikm, sizeof(ikm), EVP_sha256(), ecdh, sizeof(ecdh),
      reinterpret_cast<const uint8_t*>(auth_secret.data()), auth_secret.size(),
      reinterpret_cast<const uint8_t*>(key_info.data()), key_info.size());
  OPENSSL_cleanse(ecdh, sizeof(ecdh));
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

}  // namespace

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
  bssl::UniquePtr<EC_KEY> own;
  std::string salt(kSaltSize, '\0');
  if (fixed != nullptr) {
    own = KeyFromScalar(fixed->as_private);
    salt = fixed->salt;
  } else {
    own.reset(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    if (own != nullptr && !EC_KEY_generate_key(own.get())) own.reset();
    RAND_bytes(reinterpret_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (own == nullptr || salt.size() != kSaltSize) return Fail("no key");
  const std::string as_public = PublicOctets(own.get());
  if (as_public.empty()) return Fail("no public key");
  Keys keys;
  if (absl::Status s = DeriveKeys(own.get(), ua_public, ua_public, as_public,
                                  auth_secret, salt, &keys);
      !s.ok()) {
    return s;
  }
  std::string out = salt;
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
  Keys keys;
  if (absl::Status s = DeriveKeys(own.get(), as_public, ua_public, as_public,
                                  auth_secret, salt, &keys);
      !s.ok()) {
    return s;
  }
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
