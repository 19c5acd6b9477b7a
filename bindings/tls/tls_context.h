// TLS configuration (BoringSSL), TLS 1.2 minimum with ECDHE key exchange and
// AEAD ciphers only (TLS 1.3's suites are all of that kind). Server side (the
// device listeners): certificate chain and key from PEM files and the ALPN
// protocols of the listener, and more certificates chosen by the client's SNI
// (certificate_set.h). Client side (the store link, the gateway's own
// HTTPS requests to push services): the trusted CAs, with the peer's
// certificate and name always verified. One context is shared read-only by
// every shard; each connection gets its own SSL object, which keeps what it
// needs alive by itself, so a certificate reload may drop the context while
// connections made from it go on.
#ifndef PIMAP_BINDINGS_TLS_TLS_CONTEXT_H_
#define PIMAP_BINDINGS_TLS_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pimap::tls {

// A certificate chain and its private key, as PEM files.
struct CertificateFiles {
  std::string cert_pem_path;
  std::string key_pem_path;
};

class TlsContext {
 public:
  // `certificates`: the first is the default (no SNI, or a name no other
  // serves); each other one serves the DNS names it carries (subjectAltName
  // dNSNames, else its CN; certificate_set.h) to clients asking for them in
  // SNI. Fails, naming the file, when one cannot be read, a key does not
  // match its certificate, or an SNI certificate names no DNS host.
  static absl::StatusOr<std::shared_ptr<TlsContext>> CreateServer(
      const std::vector<CertificateFiles>& certificates,
      const std::vector<std::string>& alpn = {});
  // One certificate, served to every client.
  // `alpn`: the application protocols offered in ALPN (RFC 7301), in the
  // server's order of preference (e.g. "http/1.1", or "imap" for the IMAP
  // listeners); a client that offers none
  // of them continues without ALPN.
  static absl::StatusOr<std::shared_ptr<TlsContext>> CreateServer(
      const std::string& cert_pem_path, const std::string& key_pem_path,
      const std::vector<std::string>& alpn = {});
  // Verifies every server against the PEM bundle `ca_file`, or the system's
  // trust store when it is empty; with `also_system`, against both (a private
  // CA added to the public ones). There is no way to turn verification off.
  // `alpn`: the protocols offered (e.g. "http/1.1"; none by default).
  static absl::StatusOr<std::shared_ptr<TlsContext>> CreateClient(
      const std::string& ca_file, bool also_system = false,
      const std::vector<std::string>& alpn = {});
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A new server-side SSL object, or null when BoringSSL is out of memory.
  SSL* NewServerSsl() const;
  // A new client-side SSL object that sends `name` in SNI (unless it is an IP
  // address) and accepts only a certificate valid for `name` (a DNS name or
  // an IP address); null when BoringSSL is out of memory.
  SSL* NewClientSsl(const std::string& name) const;

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
  std::string alpn_wire_;  // client: length-prefixed protocol names
};

// The last BoringSSL error as text, for logs and statuses (never contains secrets).
std::string LastTlsError();

}  // namespace pimap::tls

#endif  // PIMAP_BINDINGS_TLS_TLS_CONTEXT_H_
