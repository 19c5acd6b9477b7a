// TlsContext: loading the PEM certificate and key, and the shape of the
// per-connection SSL objects it makes (server side, memory BIOs); the client
// side (the store link): CA loading and certificate/name verification.
#include "bindings/tls/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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

TEST(TlsContextTest, ClientWithMissingCaFileIsInvalidArgument) {
  auto ctx = TlsContext::CreateClient("/nonexistent/ca.pem");
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ctx.status().message(), HasSubstr("/nonexistent/ca.pem"));
}

// The store's certificate (CN pimap.test, see test_certs.h) is checked
// against the CA file and the configured name; both must hold.
TEST(TlsContextTest, ClientVerifiesIssuerAndName) {
  testing::TempCredentials store;
  ASSERT_TRUE(store.Generate());
  auto server = TlsContext::CreateServer(store.cert_path(), store.key_path());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string other_cert = (store.dir() / "other_cert.pem").string();
  const std::string other_key = (store.dir() / "other_key.pem").string();
  ASSERT_TRUE(store.Write(other_cert, other_key));

  struct Case {
    std::string ca;
    std::string name;
    long verify;
  };
  for (const Case& c :
       {Case{store.cert_path(), "pimap.test", X509_V_OK},
        Case{store.cert_path(), "other.test", X509_V_ERR_HOSTNAME_MISMATCH},
        Case{store.cert_path(), "127.0.0.1", X509_V_ERR_IP_ADDRESS_MISMATCH},
        Case{other_cert, "pimap.test",
             X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT}}) {
    SCOPED_TRACE(c.ca + " " + c.name);
    auto client = TlsContext::CreateClient(c.ca);
    ASSERT_TRUE(client.ok()) << client.status();
    bssl::UniquePtr<SSL> cssl((*client)->NewClientSsl(c.name));
    bssl::UniquePtr<SSL> sssl((*server)->NewServerSsl());
    ASSERT_NE(cssl, nullptr);
    EXPECT_FALSE(SSL_is_server(cssl.get()));
    EXPECT_EQ(testing::MemoryHandshake(cssl.get(), sssl.get()),
              c.verify == X509_V_OK);
    EXPECT_EQ(SSL_get_verify_result(cssl.get()), c.verify);
  }
}

}  // namespace
}  // namespace pimap::tls
