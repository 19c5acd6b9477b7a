// VAPID JWTs (vapid.h): ES256 over SHA-256 with BoringSSL's ECDSA, the DER
// signature turned into the raw r||s that JWS wants (RFC 7518 §3.4).
#include "bindings/webpush/vapid.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/json_string.h"

namespace pimap::webpush {
namespace {

std::string B64Url(absl::string_view bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);  // no padding
  return out;
}

std::string PublicKeyB64(const EC_KEY* key) {
  uint8_t point[65];
  const size_t n = EC_POINT_point2oct(
      EC_KEY_get0_group(key), EC_KEY_get0_public_key(key),
      POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), nullptr);
  if (n != sizeof(point)) return "";
  return B64Url(absl::string_view(reinterpret_cast<char*>(point), n));
}

// The JWT's claims (RFC 8292 §2): the push service's origin, the expiry and
// the contact.
std::string JwtClaims(absl::string_view origin, int64_t exp,
                      absl::string_view subject) {
  std::string out = R"({"aud":)";
  AppendJsonString(&out, origin);
  absl::StrAppend(&out, R"(,"exp":)", exp, R"(,"sub":)");
  AppendJsonString(&out, subject);
  out.push_back('}');
  return out;
}

}  // namespace

VapidSigner::VapidSigner(EC_KEY* key, std::string subject,
                         std::string public_key)
    : key_(key),
      subject_(std::move(subject)),
      public_key_(std::move(public_key)) {}

VapidSigner::~VapidSigner() { EC_KEY_free(key_); }

absl::StatusOr<std::unique_ptr<VapidSigner>> VapidSigner::FromPem(
    absl::string_view pem, absl::string_view subject) {
  if (!absl::StartsWith(subject, "mailto:") &&
      !absl::StartsWith(subject, "https:")) {
    return absl::InvalidArgumentError(
        "--vapid-subject must be a mailto: or https: URI");
  }
  for (char c : subject) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "--vapid-subject has control characters");
    }
  }
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  bssl::UniquePtr<EVP_PKEY> pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  EC_KEY* key = pkey == nullptr ? nullptr : EVP_PKEY_get1_EC_KEY(pkey.get());
  // Not the key's bytes: only whether it is one.
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "--vapid-key: not a PEM private key of an elliptic curve");
  }
  if (EC_GROUP_get_curve_name(EC_KEY_get0_group(key)) != NID_X9_62_prime256v1) {
    EC_KEY_free(key);
    return absl::InvalidArgumentError("--vapid-key: not a P-256 key");
  }
  std::string public_key = PublicKeyB64(key);
  return std::unique_ptr<VapidSigner>(
      new VapidSigner(key, std::string(subject), std::move(public_key)));
}

absl::StatusOr<std::string> VapidSigner::Authorization(absl::string_view origin,
                                                       int64_t now_unix) {
  auto it = tokens_.find(origin);
  if (it != tokens_.end() && it->second.exp - now_unix > kRenewBeforeSeconds) {
    return it->second.header;
  }
  const int64_t exp = now_unix + kLifetimeSeconds;
  absl::StatusOr<std::string> jwt = Sign(origin, exp);
  if (!jwt.ok()) return jwt.status();
  std::string header = absl::StrCat("vapid t=", *jwt, ", k=", public_key_);
  if (it == tokens_.end() && tokens_.size() >= kMaxCachedOrigins) {
    tokens_.clear();
  }
  tokens_[origin] = Token{header, exp};
  return header;
}

absl::StatusOr<std::string> VapidSigner::Sign(absl::string_view origin,
                                              int64_t exp) {
  const std::string signing_input =
      absl::StrCat(B64Url(R"({"typ":"JWT","alg":"ES256"})"), ".",
                   B64Url(JwtClaims(origin, exp, subject_)));
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(signing_input.data()),
         signing_input.size(), digest);
  bssl::UniquePtr<ECDSA_SIG> sig(ECDSA_do_sign(digest, sizeof(digest), key_));
  if (sig == nullptr) return absl::InternalError("VAPID: signing failed");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  uint8_t raw[64];
  if (!BN_bn2bin_padded(raw, 32, r) || !BN_bn2bin_padded(raw + 32, 32, s)) {
    return absl::InternalError("VAPID: signing failed");
  }
  return absl::StrCat(
      signing_input, ".",
      B64Url(absl::string_view(reinterpret_cast<char*>(raw), sizeof(raw))));
}

absl::StatusOr<VapidKeyPair> GenerateVapidKey() {
  bssl::UniquePtr<EC_KEY> key(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (key == nullptr || !EC_KEY_generate_key(key.get())) {
    return absl::InternalError("cannot generate a P-256 key");
  }
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      !PEM_write_bio_ECPrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                  nullptr, nullptr)) {
    return absl::InternalError("cannot write the key as PEM");
  }
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  VapidKeyPair pair;
  pair.private_pem.assign(reinterpret_cast<const char*>(data), len);
  pair.public_key = PublicKeyB64(key.get());
  return pair;
}

}  // namespace pimap::webpush
