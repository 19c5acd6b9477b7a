// SNI name matching (certificate_set.h) and the certificate a server context
// with several of them presents to a client asking for a name (tls_context.h).
#include "bindings/tls/certificate_set.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "bindings/tls/tls_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bindings/tls/test_certs.h"

namespace pimap::tls {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SniNamesTest, ExactNamesIgnoreCaseAndATrailingDot) {
  SniNames names;
  names.Add({"a.test"}, 1);
  names.Add({"B.Test"}, 2);
  EXPECT_EQ(names.Find("a.test"), 1);
  EXPECT_EQ(names.Find("A.TEST"), 1);
  EXPECT_EQ(names.Find("a.test."), 1);
  EXPECT_EQ(names.Find("b.test"), 2);
  EXPECT_EQ(names.Find("c.test"), -1);
  EXPECT_EQ(names.Find("test"), -1);
}

TEST(SniNamesTest, NoServerNameMatchesNothing) {
  SniNames names;
  names.Add({"a.test", "*.example.org"}, 1);
  EXPECT_EQ(names.Find(""), -1);
  EXPECT_EQ(names.Find("."), -1);
}

TEST(SniNamesTest, WildcardCoversExactlyOneFirstLabel) {
  SniNames names;
  names.Add({"*.Example.org"}, 3);
  EXPECT_EQ(names.Find("mail.example.org"), 3);
  EXPECT_EQ(names.Find("MAIL.EXAMPLE.ORG"), 3);
  EXPECT_EQ(names.Find("example.org"), -1);
  EXPECT_EQ(names.Find("a.b.example.org"), -1);
  EXPECT_EQ(names.Find(".example.org"), -1);
  EXPECT_EQ(names.Find("mail.example.org.evil"), -1);
}

TEST(SniNamesTest, ExactNameWinsOverWildcardAndFirstCertificateWins) {
  SniNames names;
  names.Add({"*.example.org"}, 1);
  names.Add({"imap.example.org", "*.example.org"}, 2);
  names.Add({"imap.example.org"}, 3);
  EXPECT_EQ(names.Find("imap.example.org"), 2);
  EXPECT_EQ(names.Find("www.example.org"), 1);
}

TEST(SniNamesTest, IgnoresWildcardsNoClientAccepts) {
  SniNames names;
  names.Add({"*.org", "a*.example.org", "*.*.example.org", "*", ""}, 1);
  EXPECT_EQ(names.Find("example.org"), -1);
  EXPECT_EQ(names.Find("ab.example.org"), -1);
  EXPECT_EQ(names.Find("a.b.example.org"), -1);
  EXPECT_EQ(names.Find("x"), -1);
}

TEST(CertificateDnsNamesTest, CommonNameWhenThereIsNoSubjectAltName) {
  bssl::UniquePtr<EVP_PKEY> key = testing::NewP256Key();
  ASSERT_NE(key, nullptr);
  bssl::UniquePtr<X509> cert =
      testing::NewSelfSignedCert(key.get(), "Mail.Example.ORG");
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(CertificateDnsNames(cert.get()), ElementsAre("mail.example.org"));
}

class SniContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        creds_.Write(Path("default.pem"), Path("default.key"), "default.test"));
    ASSERT_TRUE(creds_.Write(Path("a.pem"), Path("a.key"), "a.test"));
    ASSERT_TRUE(
        creds_.Write(Path("wild.pem"), Path("wild.key"), "*.wild.test"));
    client_ctx_.reset(SSL_CTX_new(TLS_method()));
    ASSERT_NE(client_ctx_, nullptr);
    // The test checks which certificate comes, not whether it is trusted.
    SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_NONE, nullptr);
  }
  std::string Path(const std::string& name) {
    return (creds_.dir() / name).string();
  }
  std::vector<CertificateFiles> Files() {
    return {{Path("default.pem"), Path("default.key")},
            {Path("a.pem"), Path("a.key")},
            {Path("wild.pem"), Path("wild.key")}};
  }
  // The subject CN of the certificate `server` presents to a client sending
  // `sni` (none when empty); "" when the handshake fails. ALPN "imap" is
  // offered, and `alpn` receives what was chosen.
  std::string PeerName(const TlsContext& server, const std::string& sni,
                       std::string* alpn = nullptr) {
    bssl::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
    SSL_set_connect_state(client.get());
    SSL_set_bio(client.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    if (!sni.empty()) SSL_set_tlsext_host_name(client.get(), sni.c_str());
    static const uint8_t kImap[] = {4, 'i', 'm', 'a', 'p'};
    SSL_set_alpn_protos(client.get(), kImap, sizeof(kImap));
    bssl::UniquePtr<SSL> ssl(server.NewServerSsl());
    if (!testing::MemoryHandshake(client.get(), ssl.get())) return "";
    if (alpn != nullptr) {
      const uint8_t* chosen;
      unsigned len;
      SSL_get0_alpn_selected(client.get(), &chosen, &len);
      alpn->assign(reinterpret_cast<const char*>(chosen), len);
    }
    bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(client.get()));
    if (peer == nullptr) return "";
    std::vector<std::string> names = CertificateDnsNames(peer.get());
    return names.empty() ? "" : names[0];
  }

  testing::TempCredentials creds_;
  bssl::UniquePtr<SSL_CTX> client_ctx_;
};

TEST_F(SniContextTest, ServerNameSelectsTheCertificate) {
  auto server = TlsContext::CreateServer(Files(), {"imap"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::string alpn;
  EXPECT_EQ(PeerName(**server, "a.test", &alpn), "a.test");
  EXPECT_EQ(alpn, "imap");  // negotiated after the switch too
  EXPECT_EQ(PeerName(**server, "A.Test"), "a.test");
  EXPECT_EQ(PeerName(**server, "x.wild.test"), "*.wild.test");
  EXPECT_EQ(PeerName(**server, "a.b.wild.test"), "default.test");
  EXPECT_EQ(PeerName(**server, "other.test"), "default.test");
  EXPECT_EQ(PeerName(**server, ""), "default.test");
}

// A reload drops the TlsContext while handshakes it began are still running:
// they must finish on what the SSL holds (its SSL_CTX and the callbacks'
// state).
TEST_F(SniContextTest, HandshakeOutlivesItsTlsContext) {
  auto server = TlsContext::CreateServer(Files(), {"imap"});
  ASSERT_TRUE(server.ok()) << server.status();
  bssl::UniquePtr<SSL> ssl((*server)->NewServerSsl());
  server->reset();
  bssl::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
  SSL_set_connect_state(client.get());
  SSL_set_bio(client.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_tlsext_host_name(client.get(), "a.test");
  static const uint8_t kImap[] = {4, 'i', 'm', 'a', 'p'};
  SSL_set_alpn_protos(client.get(), kImap, sizeof(kImap));
  ASSERT_TRUE(testing::MemoryHandshake(client.get(), ssl.get()));
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(client.get()));
  ASSERT_NE(peer, nullptr);
  EXPECT_THAT(CertificateDnsNames(peer.get()), ElementsAre("a.test"));
}

TEST_F(SniContextTest, KeyOfAnotherCertificateIsRefusedByName) {
  std::vector<CertificateFiles> files = Files();
  files[1].key_pem_path = Path("wild.key");
  auto server = TlsContext::CreateServer(files);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("does not match"));
  EXPECT_THAT(server.status().message(), HasSubstr(Path("a.pem")));
}

TEST_F(SniContextTest, MissingFileIsRefusedByName) {
  std::vector<CertificateFiles> files = Files();
  files[2].cert_pem_path = Path("nope.pem");
  auto server = TlsContext::CreateServer(files);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr(Path("nope.pem")));
}

}  // namespace
}  // namespace pimap::tls
