// Throwaway TLS credentials for tests: a fresh P-256 key and a self-signed
// certificate for it, written as PEM files into a new temporary directory (the
// context loads from paths, as pimapd does).
#ifndef PIMAP_TESTS_BINDINGS_TLS_TEST_CERTS_H_
#define PIMAP_TESTS_BINDINGS_TLS_TEST_CERTS_H_

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace pimap::tls::testing {

inline bssl::UniquePtr<EVP_PKEY> NewP256Key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (ec == nullptr || EC_KEY_generate_key(ec.get()) != 1) return nullptr;
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (key == nullptr || EVP_PKEY_assign_EC_KEY(key.get(), ec.release()) != 1) {
    return nullptr;
  }
  return key;
}

inline bssl::UniquePtr<X509> NewSelfSignedCert(
    EVP_PKEY* key, const std::string& common_name = "pimap.test") {
  bssl::UniquePtr<X509> cert(X509_new());
  if (cert == nullptr) return nullptr;
  X509_NAME* name = X509_get_subject_name(cert.get());
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) == nullptr ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0) !=
          1 ||
      X509_set_issuer_name(cert.get(), name) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1 ||
      X509_sign(cert.get(), key, EVP_sha256()) == 0) {
    return nullptr;
  }
  return cert;
}

// Where the PEM files of one generated identity are. The directory is removed
// with this.
class TempCredentials {
 public:
  TempCredentials() {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / "pimap_tls_XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    cert_path_ = (dir_ / "cert.pem").string();
    key_path_ = (dir_ / "key.pem").string();
  }
  ~TempCredentials() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  TempCredentials(const TempCredentials&) = delete;
  TempCredentials& operator=(const TempCredentials&) = delete;

  // Generates a key and its certificate into the two files; false on failure.
  bool Generate() { return Write(cert_path_, key_path_); }
  // Writes a new identity: the certificate (subject CN `common_name`, no
  // subjectAltName) to `cert_path`, the key to `key_path`.
  bool Write(const std::string& cert_path, const std::string& key_path,
             const std::string& common_name = "pimap.test") {
    if (dir_.empty()) return false;
    bssl::UniquePtr<EVP_PKEY> key = NewP256Key();
    if (key == nullptr) return false;
    bssl::UniquePtr<X509> cert = NewSelfSignedCert(key.get(), common_name);
    if (cert == nullptr) return false;
    bssl::UniquePtr<BIO> cert_out(BIO_new_file(cert_path.c_str(), "w"));
    bssl::UniquePtr<BIO> key_out(BIO_new_file(key_path.c_str(), "w"));
    return cert_out != nullptr && key_out != nullptr &&
           PEM_write_bio_X509(cert_out.get(), cert.get()) == 1 &&
           PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr,
                                    0, nullptr, nullptr) == 1;
  }

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& cert_path() const { return cert_path_; }
  const std::string& key_path() const { return key_path_; }

 private:
  std::filesystem::path dir_;
  std::string cert_path_;
  std::string key_path_;
};

// Runs the handshake of `client` against `server` (SSL objects over memory
// BIOs), moving ciphertext between them until both finish or neither makes
// progress; true when both finished.
inline bool MemoryHandshake(SSL* client, SSL* server) {
  for (int round = 0; round < 16; ++round) {
    SSL_do_handshake(client);
    SSL_do_handshake(server);
    for (auto [from, to] :
         {std::pair{client, server}, std::pair{server, client}}) {
      char buf[16384];
      int n;
      while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0) {
        BIO_write(SSL_get_rbio(to), buf, n);
      }
    }
    if (SSL_is_init_finished(client) && SSL_is_init_finished(server)) break;
  }
  ERR_clear_error();
  return SSL_is_init_finished(client) && SSL_is_init_finished(server);
}

}  // namespace pimap::tls::testing

#endif  // PIMAP_TESTS_BINDINGS_TLS_TEST_CERTS_H_
