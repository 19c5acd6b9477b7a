// BoringSSL server and client context set-up.
#include "bindings/tls/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"

namespace pimap::tls {

namespace {
// TLS 1.2 suites with forward secrecy and authenticated encryption only: no
// CBC (padding-oracle history, Lucky13), no static RSA key exchange (no
// forward secrecy, Bleichenbacher). TLS 1.3 suites are all ECDHE + AEAD and
// BoringSSL does not let them be configured.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
}  // namespace

std::string LastTlsError() {
  uint32_t err = ERR_get_error();
  if (err == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

namespace {
// A context with the protocol and cipher policy above, or an error.
absl::StatusOr<SSL_CTX*> NewPolicyContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new failed");
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_strict_cipher_list(ctx, kTls12Ciphers) != 1) {
    std::string err = LastTlsError();
    SSL_CTX_free(ctx);
    return absl::InternalError(absl::StrCat("TLS policy not accepted: ", err));
  }
  return ctx;
}

// Debian's bundle of the system's trusted CAs (ca-certificates); BoringSSL's
// built-in default paths are Android's, which do not exist here.
constexpr char kSystemCaFile[] = "/etc/ssl/certs/ca-certificates.crt";
}  // namespace

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::CreateClient(
    const std::string& ca_file, bool also_system,
    const std::vector<std::string>& alpn) {
  absl::StatusOr<SSL_CTX*> made = NewPolicyContext();
  if (!made.ok()) return made.status();
  SSL_CTX* ctx = *made;
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));
  std::vector<std::string> files;
  if (ca_file.empty() || also_system) files.push_back(kSystemCaFile);
  if (!ca_file.empty()) files.push_back(ca_file);
  for (const std::string& file : files) {
    if (SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) == 1)
      continue;
    // The system's bundle as an addition may be absent (a minimal system
    // without ca-certificates): `ca_file` is then the only trust.
    if (file == kSystemCaFile && !ca_file.empty()) {
      ERR_clear_error();
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load TLS CA file ", file, ": ", LastTlsError()));
  }
  // Always: a store link that does not check whom it talks to would hand the
  // users' passwords to whoever sits in between.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  for (const std::string& protocol : alpn) {
    if (protocol.empty() || protocol.size() > 255) {
      return absl::InvalidArgumentError("bad ALPN protocol name");
    }
    context->alpn_wire_.push_back(static_cast<char>(protocol.size()));
    context->alpn_wire_ += protocol;
  }
  return context;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::CreateServer(
    const std::string& cert_pem_path, const std::string& key_pem_path,
    const std::vector<std::string>& alpn) {
  absl::StatusOr<SSL_CTX*> made = NewPolicyContext();
  if (!made.ok()) return made.status();
  SSL_CTX* ctx = *made;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem_path.c_str()) != 1) {
    std::string err = LastTlsError();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load TLS certificate ", cert_pem_path, ": ", err));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_pem_path.c_str(), SSL_FILETYPE_PEM) !=
          1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    std::string err = LastTlsError();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load TLS key ", key_pem_path, ": ", err));
  }
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));
  for (const std::string& protocol : alpn) {
    if (protocol.empty() || protocol.size() > 255) {
      return absl::InvalidArgumentError("bad ALPN protocol name");
    }
    context->alpn_wire_.push_back(static_cast<char>(protocol.size()));
    context->alpn_wire_ += protocol;
  }
  if (!alpn.empty()) {
    SSL_CTX_set_alpn_select_cb(ctx, &TlsContext::SelectAlpn, context.get());
  }
  return context;
}

int TlsContext::SelectAlpn(SSL*, const uint8_t** out, uint8_t* out_len,
                           const uint8_t* in, unsigned in_len, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  uint8_t* selected = nullptr;
  // Server preference: the first of ours that the client offers.
  if (SSL_select_next_proto(
          &selected, out_len,
          reinterpret_cast<const uint8_t*>(self->alpn_wire_.data()),
          static_cast<unsigned>(self->alpn_wire_.size()), in,
          in_len) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

SSL* TlsContext::NewServerSsl() const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  SSL_set_accept_state(ssl);
  // The certificate, keys and cipher lists the handshake needed are dropped once
  // it is done: they are the context's, and an idle connection should not pin a
  // copy (BoringSSL; nothing here queries the configuration afterwards).
  SSL_set_shed_handshake_config(ssl, 1);
  // Memory BIOs: BoringSSL never touches the socket, which is an io_uring direct
  // descriptor with no fd number it could use anyway.
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  return ssl;
}

SSL* TlsContext::NewClientSsl(const std::string& name) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  SSL_set_connect_state(ssl);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  in6_addr ip;
  const bool is_ip = inet_pton(AF_INET, name.c_str(), &ip) == 1 ||
                     inet_pton(AF_INET6, name.c_str(), &ip) == 1;
  // SNI carries host names only (RFC 6066); an address is checked against
  // the certificate's IP subjectAltNames.
  if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
             : X509_VERIFY_PARAM_set1_host(param, name.data(), name.size())) !=
          1 ||
      (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) ||
      (!alpn_wire_.empty() &&
       SSL_set_alpn_protos(ssl,
                           reinterpret_cast<const uint8_t*>(alpn_wire_.data()),
                           alpn_wire_.size()) != 0)) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  return ssl;
}

}  // namespace pimap::tls
