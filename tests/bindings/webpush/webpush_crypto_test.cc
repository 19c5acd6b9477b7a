// RFC 8291 aes128gcm (bindings/webpush/webpush_crypto.h) against the example
// of RFC 8291 §5 (fixed keys and salt: the exact message must come out), a
// round trip with fresh keys, and VAPID tokens (vapid.h) verified with the
// public key they announce.
#include "bindings/webpush/webpush_crypto.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/sha.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "bindings/webpush/vapid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::webpush {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string B64(absl::string_view text) {
  std::string out;
  EXPECT_TRUE(absl::WebSafeBase64Unescape(text, &out)) << text;
  return out;
}

// RFC 8291 §5.
constexpr char kPlaintext[] = "When I grow up, I want to be a watermelon";
constexpr char kAsPrivate[] = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
constexpr char kUaPrivate[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
constexpr char kUaPublic[] =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH"
    "6SRpkNtoIAiw4";
constexpr char kSalt[] = "DGv6ra1nlYgDCS1FRnbzlw";
constexpr char kAuth[] = "BTBZMqHH6r4Tts7J_aSIgg";
constexpr char kMessage[] =
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIg"
    "Dll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVB"
    "St2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

TEST(WebPushCryptoTest, Rfc8291ExampleEncrypts) {
  FixedInputs fixed{B64(kAsPrivate), B64(kSalt)};
  absl::StatusOr<std::string> sealed =
      EncryptAes128gcm(B64(kUaPublic), B64(kAuth), kPlaintext, &fixed);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  std::string got;
  absl::WebSafeBase64Escape(*sealed, &got);
  EXPECT_EQ(got, kMessage);
}

TEST(WebPushCryptoTest, Rfc8291ExampleDecrypts) {
  absl::StatusOr<std::string> opened = DecryptAes128gcm(
      B64(kUaPrivate), B64(kUaPublic), B64(kAuth), B64(kMessage));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, kPlaintext);
  // A wrong auth secret does not authenticate.
  std::string auth = B64(kAuth);
  auth[0] ^= 1;
  EXPECT_FALSE(
      DecryptAes128gcm(B64(kUaPrivate), B64(kUaPublic), auth, B64(kMessage))
          .ok());
}

TEST(WebPushCryptoTest, FreshKeysRoundTrip) {
  const std::string body = R"({"folder":"INBOX","count":3,"uidnext":42})";
  absl::StatusOr<std::string> a =
      EncryptAes128gcm(B64(kUaPublic), B64(kAuth), body);
  absl::StatusOr<std::string> b =
      EncryptAes128gcm(B64(kUaPublic), B64(kAuth), body);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b) << "salt and key must be fresh per message";
  EXPECT_EQ(a->size(), 86 + body.size() + 1 + 16);
  absl::StatusOr<std::string> opened =
      DecryptAes128gcm(B64(kUaPrivate), B64(kUaPublic), B64(kAuth), *a);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, body);
}

TEST(WebPushCryptoTest, AgreementMadeAheadEncryptsForTheSubscription) {
  absl::StatusOr<KeyAgreement> ahead = AgreeKey(B64(kUaPublic));
  ASSERT_TRUE(ahead.ok()) << ahead.status();
  EXPECT_EQ(ahead->as_public.size(), 65u);
  EXPECT_EQ(ahead->ecdh_secret.size(), 32u);
  const std::string body = R"({"folder":"INBOX","count":1,"uidnext":7})";
  absl::StatusOr<std::string> sealed =
      EncryptAes128gcmWith(*ahead, B64(kUaPublic), B64(kAuth), body);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  // The header names the agreement's key; the browser's side opens it.
  EXPECT_EQ(sealed->substr(21, 65), ahead->as_public);
  absl::StatusOr<std::string> opened =
      DecryptAes128gcm(B64(kUaPrivate), B64(kUaPublic), B64(kAuth), *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, body);
  // Two agreements are two key pairs.
  absl::StatusOr<KeyAgreement> other = AgreeKey(B64(kUaPublic));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->as_public, ahead->as_public);
  // No agreement, or one for a key that is not a point: an error.
  EXPECT_FALSE(
      EncryptAes128gcmWith(KeyAgreement(), B64(kUaPublic), B64(kAuth), body)
          .ok());
  std::string not_on_curve = B64(kUaPublic);
  not_on_curve[10] ^= 1;
  EXPECT_FALSE(AgreeKey(not_on_curve).ok());
  EXPECT_FALSE(AgreeKey("short").ok());
}

TEST(WebPushCryptoTest, RejectsBadInputs) {
  EXPECT_FALSE(EncryptAes128gcm("short", B64(kAuth), "x").ok());
  std::string not_on_curve = B64(kUaPublic);
  not_on_curve[10] ^= 1;
  absl::StatusOr<std::string> r =
      EncryptAes128gcm(not_on_curve, B64(kAuth), "x");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("P-256"));
  EXPECT_FALSE(
      EncryptAes128gcm(B64(kUaPublic), B64(kAuth), std::string(5000, 'x'))
          .ok());
}

// Verifies an ES256 JWT against a base64url public key; returns its payload.
std::string VerifiedPayload(absl::string_view jwt, absl::string_view key) {
  std::vector<std::string> parts = absl::StrSplit(jwt, '.');
  if (parts.size() != 3) return "";
  const std::string raw_key = B64(key);
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<EC_POINT> point(EC_POINT_new(EC_KEY_get0_group(ec.get())));
  if (!EC_POINT_oct2point(EC_KEY_get0_group(ec.get()), point.get(),
                          reinterpret_cast<const uint8_t*>(raw_key.data()),
                          raw_key.size(), nullptr) ||
      !EC_KEY_set_public_key(ec.get(), point.get())) {
    return "";
  }
  const std::string sig = B64(parts[2]);
  if (sig.size() != 64) return "";
  bssl::UniquePtr<ECDSA_SIG> s(ECDSA_SIG_new());
  BIGNUM* r_bn =
      BN_bin2bn(reinterpret_cast<const uint8_t*>(sig.data()), 32, nullptr);
  BIGNUM* s_bn =
      BN_bin2bn(reinterpret_cast<const uint8_t*>(sig.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(s.get(), r_bn, s_bn);
  const std::string input = absl::StrCat(parts[0], ".", parts[1]);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(input.data()), input.size(), digest);
  if (ECDSA_do_verify(digest, sizeof(digest), s.get(), ec.get()) != 1) {
    return "";
  }
  EXPECT_EQ(B64(parts[0]), R"({"typ":"JWT","alg":"ES256"})");
  return B64(parts[1]);
}

TEST(VapidTest, SignsVerifiableTokensAndReusesThem) {
  absl::StatusOr<VapidKeyPair> pair = GenerateVapidKey();
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_THAT(pair->private_pem, StartsWith("-----BEGIN EC PRIVATE KEY-----"));
  EXPECT_EQ(B64(pair->public_key).size(), 65u);
  absl::StatusOr<std::unique_ptr<VapidSigner>> signer =
      VapidSigner::FromPem(pair->private_pem, "mailto:ops@example.net");
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ((*signer)->public_key(), pair->public_key);

  const int64_t now = 1700000000;
  absl::StatusOr<std::string> auth =
      (*signer)->Authorization("https://push.example.net", now);
  ASSERT_TRUE(auth.ok()) << auth.status();
  ASSERT_THAT(*auth, StartsWith("vapid t="));
  const size_t k = auth->find(", k=");
  ASSERT_NE(k, std::string::npos);
  EXPECT_EQ(auth->substr(k + 4), pair->public_key);
  const std::string jwt = auth->substr(8, k - 8);
  EXPECT_EQ(VerifiedPayload(jwt, pair->public_key),
            absl::StrCat(R"({"aud":"https://push.example.net","exp":)",
                         now + VapidSigner::kLifetimeSeconds,
                         R"(,"sub":"mailto:ops@example.net"})"));
  // Reused while far from expiry, per origin; renewed when close to it.
  EXPECT_EQ(*(*signer)->Authorization("https://push.example.net", now + 60),
            *auth);
  EXPECT_NE(*(*signer)->Authorization("https://other.example.net", now), *auth);
  EXPECT_NE(*(*signer)->Authorization("https://push.example.net",
                                      now + VapidSigner::kLifetimeSeconds -
                                          VapidSigner::kRenewBeforeSeconds),
            *auth);
}

TEST(VapidTest, RejectsBadKeysAndSubjects) {
  absl::StatusOr<VapidKeyPair> pair = GenerateVapidKey();
  ASSERT_TRUE(pair.ok());
  EXPECT_FALSE(VapidSigner::FromPem(pair->private_pem, "ops@example.net").ok());
  EXPECT_FALSE(VapidSigner::FromPem("not a key", "mailto:a@b").ok());
}

}  // namespace
}  // namespace pimap::webpush
