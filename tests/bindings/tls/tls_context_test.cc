// TlsContext: loading the PEM certificate and key, and the shape of the
// per-connection SSL objects it makes (server side, memory BIOs).
#include "bindings/tls/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <fstream>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bindings/tls/test_certs.h"

namespace pimap::tls {
namespace {

using ::testing::HasSubstr;

TEST(TlsContextTest, LoadsGeneratedCertificateAndKey) {
  testing::TempCredentials creds;
  ASSERT_TRUE(creds.Generate());
  auto ctx = TlsContext::CreateServer(creds.cert_path(), creds.key_path());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_NE(*ctx, nullptr);
}

TEST(TlsContextTest, MissingCertificateIsInvalidArgument) {
  testing::TempCredentials creds;
  ASSERT_TRUE(creds.Generate());
  const std::string missing = (creds.dir() / "nope.pem").string();
  auto ctx = TlsContext::CreateServer(missing, creds.key_path());
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ctx.status().message(), HasSubstr(missing));
}

TEST(TlsContextTest, GarbageKeyIsInvalidArgument) {
  testing::TempCredentials creds;
  ASSERT_TRUE(creds.Generate());
  std::ofstream(creds.key_path(), std::ios::trunc) << "not a key\n";
  auto ctx = TlsContext::CreateServer(creds.cert_path(), creds.key_path());
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ctx.status().message(), HasSubstr(creds.key_path()));
}

TEST(TlsContextTest, KeyOfAnotherCertificateIsRejected) {
  testing::TempCredentials creds;
  ASSERT_TRUE(creds.Generate());
  // A second identity: its key does not belong to the first certificate.
  const std::string other_cert = (creds.dir() / "other_cert.pem").string();
  const std::string other_key = (creds.dir() / "other_key.pem").string();
  ASSERT_TRUE(creds.Write(other_cert, other_key));
  auto ctx = TlsContext::CreateServer(creds.cert_path(), other_key);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TlsContextTest, NewServerSslIsServerSideOverTwoMemoryBios) {
  testing::TempCredentials creds;
  ASSERT_TRUE(creds.Generate());
  auto ctx = TlsContext::CreateServer(creds.cert_path(), creds.key_path());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  bssl::UniquePtr<SSL> ssl((*ctx)->NewServerSsl());
  ASSERT_NE(ssl, nullptr);
  EXPECT_TRUE(SSL_is_server(ssl.get()));
  BIO* rbio = SSL_get_rbio(ssl.get());
  BIO* wbio = SSL_get_wbio(ssl.get());
  ASSERT_NE(rbio, nullptr);
  ASSERT_NE(wbio, nullptr);
  EXPECT_NE(rbio, wbio);  // one BIO for both would loop ciphertext back
  EXPECT_EQ(BIO_method_type(rbio), BIO_TYPE_MEM);
  EXPECT_EQ(BIO_method_type(wbio), BIO_TYPE_MEM);
}

// Issue 14: BoringSSL's defaults would also offer CBC suites and static RSA
// key exchange. Every TLS 1.2 suite a connection may pick must be ECDHE with
// an AEAD; TLS 1.1 and older are off.
TEST(TlsContextTest, OffersOnlyEcdheAeadSuitesFromTls12) {
  testing::TempCredentials creds;
  ASSERT_TRUE(creds.Generate());
  auto ctx = TlsContext::CreateServer(creds.cert_path(), creds.key_path());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  bssl::UniquePtr<SSL> ssl((*ctx)->NewServerSsl());
  ASSERT_NE(ssl, nullptr);
  EXPECT_EQ(SSL_get_min_proto_version(ssl.get()), TLS1_2_VERSION);
  const STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl.get());
  ASSERT_NE(ciphers, nullptr);
  ASSERT_GT(sk_SSL_CIPHER_num(ciphers), 0u);
  bool gcm = false;
  for (size_t i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    EXPECT_TRUE(SSL_CIPHER_is_aead(c)) << SSL_CIPHER_get_name(c);
    EXPECT_FALSE(SSL_CIPHER_is_block_cipher(c)) << SSL_CIPHER_get_name(c);
    EXPECT_EQ(SSL_CIPHER_get_kx_nid(c), NID_kx_ecdhe) << SSL_CIPHER_get_name(c);
    if (SSL_CIPHER_get_cipher_nid(c) == NID_aes_128_gcm) gcm = true;
  }
  EXPECT_TRUE(gcm);  // the common suites are still there
}

TEST(TlsContextTest, LastTlsErrorDescribesAndClearsTheQueue) {
  ERR_clear_error();
  EXPECT_EQ(LastTlsError(), "unknown TLS error");
  // Provoke a real error: an unreadable PEM.
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf("garbage", 7));
  EXPECT_EQ(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), nullptr);
  EXPECT_NE(LastTlsError(), "unknown TLS error");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace pimap::tls
