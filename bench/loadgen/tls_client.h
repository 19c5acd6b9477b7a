// Client-side TLS set-up for pimap-bench (--binding tls|https): the client
// SSL_CTX. The record layer over the bench's io_uring sockets is
// bindings/tls/tls_transport, with SSL objects in connect state. Ciphertext
// from the socket goes into the SSL's read BIO; what SSL_write / the handshake
// produce is drained from the write BIO into the socket. The device sees an
// engine::Transport carrying plaintext, so the IMAP state machine is the same
// for tcp and tls.
#ifndef PIMAP_BENCH_LOADGEN_TLS_CLIENT_H_
#define PIMAP_BENCH_LOADGEN_TLS_CLIENT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/transport.h"

namespace pimap::bench {

// One client SSL_CTX, shared read-only by every bench shard.
class TlsClientContext {
 public:
  // ca_file empty: no certificate verification (the bench's self-signed test
  // cert). Otherwise the peer must chain to ca_file, and `verify_host` (an IP
  // literal or a DNS name) must match its subjectAltName. `alpn`: protocols
  // offered in ALPN (RFC 7301), e.g. {"http/1.1"} for the HTTP binding; none
  // when empty.
  static absl::StatusOr<std::shared_ptr<TlsClientContext>> Create(
      const std::string& ca_file, const std::string& verify_host,
      const std::vector<std::string>& alpn = {});
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // A new client SSL object with its memory BIOs, in connect state; null on OOM.
  SSL* NewSsl() const;

 private:
  TlsClientContext(SSL_CTX* ctx, std::string verify_host)
      : ctx_(ctx), verify_host_(std::move(verify_host)) {}
  SSL_CTX* ctx_;
  std::string verify_host_;
};

std::string LastTlsErrorText();

// The TLS record layer itself is the gateway's own tls::TlsTransport (memory
// BIOs over any engine::Transport); it drives a client SSL the same way.

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_TLS_CLIENT_H_
