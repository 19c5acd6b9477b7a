// BoringSSL server and client context set-up.
#include "bindings/tls/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bindings/tls/certificate_set.h"

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

namespace {

// What the server-side callbacks need, owned by the default SSL_CTX through
// its ex_data, so that it lives exactly as long as that SSL_CTX: every SSL
// made from it holds a reference (as its session context), so a handshake
// still running when a certificate reload has dropped the TlsContext never
// sees a freed callback argument.
struct ServerState {
  std::string alpn_wire;  // length-prefixed protocol names, our preference
  SniNames names;
  // By the index in `names`; [0], the default, is null: nothing to switch.
  std::vector<bssl::UniquePtr<SSL_CTX>> by_index;
};

void FreeServerState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ServerState*>(ptr);
}

int ServerStateIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &FreeServerState);
  return index;
}

int SelectAlpn(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
               unsigned in_len, void* arg) {
  const auto* state = static_cast<const ServerState*>(arg);
  uint8_t* selected = nullptr;
  // Server preference: the first of ours that the client offers.
  if (SSL_select_next_proto(
          &selected, out_len,
          reinterpret_cast<const uint8_t*>(state->alpn_wire.data()),
          static_cast<unsigned>(state->alpn_wire.size()), in,
          in_len) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// SNI: switches the handshake to the certificate serving the name asked for.
// No SNI, or a name no certificate serves: the default one (clients that
// verify names then fail, as they would against a single certificate).
int SelectCertificate(SSL* ssl, int*, void* arg) {
  const auto* state = static_cast<const ServerState*>(arg);
  const char* host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (host == nullptr) return SSL_TLSEXT_ERR_OK;
  const int index = state->names.Find(host);
  // SSL_set_SSL_CTX takes only the certificate settings (and a reference);
  // ciphers, versions and the session tickets stay the default context's.
  if (index > 0) SSL_set_SSL_CTX(ssl, state->by_index[index].get());
  return SSL_TLSEXT_ERR_OK;
}

// Loads `files` into `ctx`; the error names the file and what is wrong.
absl::Status LoadCertificate(SSL_CTX* ctx, const CertificateFiles& files) {
  for (const std::string* path : {&files.cert_pem_path, &files.key_pem_path}) {
    if (access(path->c_str(), R_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read TLS ",
                       path == &files.cert_pem_path ? "certificate " : "key ",
                       *path, ": ", std::strerror(errno)));
    }
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_pem_path.c_str()) !=
      1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load TLS certificate ", files.cert_pem_path, ": ",
                     LastTlsError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key_pem_path.c_str(),
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    const uint32_t err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_X509 &&
        ERR_GET_REASON(err) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("TLS key ", files.key_pem_path,
                       " does not match certificate ", files.cert_pem_path));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load TLS key ", files.key_pem_path, ": ", LastTlsError()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::CreateServer(
    const std::string& cert_pem_path, const std::string& key_pem_path,
    const std::vector<std::string>& alpn) {
  return CreateServer({CertificateFiles{cert_pem_path, key_pem_path}}, alpn);
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::CreateServer(
    const std::vector<CertificateFiles>& certificates,
    const std::vector<std::string>& alpn) {
  if (certificates.empty()) {
    return absl::InvalidArgumentError("no TLS certificate given");
  }
  auto state = std::make_unique<ServerState>();
  for (const std::string& protocol : alpn) {
    if (protocol.empty() || protocol.size() > 255) {
      return absl::InvalidArgumentError("bad ALPN protocol name");
    }
    state->alpn_wire.push_back(static_cast<char>(protocol.size()));
    state->alpn_wire += protocol;
  }
  for (size_t i = 0; i < certificates.size(); ++i) {
    absl::StatusOr<SSL_CTX*> made = NewPolicyContext();
    if (!made.ok()) return made.status();
    bssl::UniquePtr<SSL_CTX> ctx(*made);
    if (absl::Status st = LoadCertificate(ctx.get(), certificates[i]);
        !st.ok()) {
      return st;
    }
    std::vector<std::string> names =
        CertificateDnsNames(SSL_CTX_get0_certificate(ctx.get()));
    if (i > 0 && names.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS certificate ", certificates[i].cert_pem_path,
                       " names no DNS host (no subjectAltName dNSName, no "
                       "CN), so no SNI can select it"));
    }
    // Every context negotiates ALPN: which one the handshake consults after
    // an SNI switch is BoringSSL's business, so both give the same answer.
    if (!alpn.empty()) {
      SSL_CTX_set_alpn_select_cb(ctx.get(), &SelectAlpn, state.get());
    }
    state->names.Add(names, static_cast<int>(i));
    state->by_index.push_back(std::move(ctx));
  }
  SSL_CTX* ctx = state->by_index[0].release();
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));
  if (certificates.size() > 1) {
    SSL_CTX_set_tlsext_servername_callback(ctx, &SelectCertificate);
    SSL_CTX_set_tlsext_servername_arg(ctx, state.get());
  }
  if (SSL_CTX_set_ex_data(ctx, ServerStateIndex(), state.get()) != 1) {
    return absl::InternalError("SSL_CTX_set_ex_data failed");
  }
  state.release();  // now the SSL_CTX's (FreeServerState)
  return context;
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
