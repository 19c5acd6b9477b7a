// SNI: which of a TLS listener's certificates a ClientHello's server name
// selects. Owns the host-name matching (exact names and RFC 6125 left-most
// "*." wildcards, ASCII case-insensitive, trailing dot ignored) and reading
// the DNS names a certificate serves. The SSL_CTXs holding the certificates
// belong to TlsContext (tls_context.cc).
#ifndef PIMAP_BINDINGS_TLS_CERTIFICATE_SET_H_
#define PIMAP_BINDINGS_TLS_CERTIFICATE_SET_H_

#include <openssl/base.h>

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace pimap::tls {

// Host names -> the index of the certificate that serves them. Built once at
// start-up (or reload) from the certificates given; read-only afterwards, so
// every shard may look up concurrently. Bounded by the certificates' names.
class SniNames {
 public:
  // Adds `names` (DNS names as in a certificate: "mail.example.org" or
  // "*.example.org") for certificate `index`. A name already present keeps
  // its first certificate: the order given is the order of preference.
  void Add(const std::vector<std::string>& names, int index);
  // The certificate for `host` (a ClientHello's server name): an exact name
  // first, then a wildcard covering exactly its first label; -1 when none
  // matches or `host` is empty.
  int Find(absl::string_view host) const;

 private:
  absl::flat_hash_map<std::string, int> exact_;  // lower case, no dot
  absl::flat_hash_map<std::string, int>
      wildcards_;  // "example.org" of "*.example.org"
};

// The DNS names `cert` serves, lower case: its subjectAltName dNSNames, or
// when it has none, its subject's common name (what clients fall back to).
std::vector<std::string> CertificateDnsNames(X509* cert);

}  // namespace pimap::tls

#endif  // PIMAP_BINDINGS_TLS_CERTIFICATE_SET_H_
