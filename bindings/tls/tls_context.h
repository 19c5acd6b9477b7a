// Server-side TLS configuration (BoringSSL): certificate chain and key from PEM
// files, TLS 1.2 minimum. One context is shared read-only by every shard; each
// connection gets its own SSL object.
#ifndef PIMAP_BINDINGS_TLS_TLS_CONTEXT_H_
#define PIMAP_BINDINGS_TLS_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace pimap::tls {

class TlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<TlsContext>> CreateServer(
      const std::string& cert_pem_path, const std::string& key_pem_path);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A new server-side SSL object, or null when BoringSSL is out of memory.
  SSL* NewServerSsl() const;

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The last BoringSSL error as text, for logs and statuses (never contains secrets).
std::string LastTlsError();

}  // namespace pimap::tls

#endif  // PIMAP_BINDINGS_TLS_TLS_CONTEXT_H_
