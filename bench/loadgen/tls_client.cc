// Client TLS for pimap-bench over memory BIOs (see tls_client.h).
#include "bench/loadgen/tls_client.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "bindings/tls/tls_context.h"

namespace pimap::bench {

std::string LastTlsErrorText() { return tls::LastTlsError(); }

absl::StatusOr<std::shared_ptr<TlsClientContext>> TlsClientContext::Create(
    const std::string& ca_file, const std::string& verify_host,
    const std::vector<std::string>& alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Every device is a new client: no session resumption between devices, so each
  // connection pays a full handshake, as a fleet of separate phones would.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!alpn.empty()) {
    std::string wire;
    for (const std::string& p : alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    // BoringSSL: 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx,
                                reinterpret_cast<const uint8_t*>(wire.data()),
                                wire.size()) != 0) {
      SSL_CTX_free(ctx);
      return absl::InternalError("SSL_CTX_set_alpn_protos failed");
    }
  }
  if (ca_file.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      std::string err = LastTlsErrorText();
      SSL_CTX_free(ctx);
      return absl::InvalidArgumentError(absl::StrCat("cannot load --tls-ca ", ca_file, ": ", err));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return std::shared_ptr<TlsClientContext>(
      new TlsClientContext(ctx, ca_file.empty() ? std::string() : verify_host));
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

SSL* TlsClientContext::NewSsl() const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  SSL_set_connect_state(ssl);
  if (!verify_host_.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    // An IP literal is checked against the IP SANs, anything else against DNS names.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, verify_host_.c_str()) != 1) {
      ERR_clear_error();
      X509_VERIFY_PARAM_set1_host(param, verify_host_.data(), verify_host_.size());
      SSL_set_tlsext_host_name(ssl, verify_host_.c_str());
    }
  }
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  return ssl;
}

// ---------------------------------------------------------------- transport

}  // namespace pimap::bench
