// Client-side TLS for pimap-bench (--binding tls): BoringSSL through memory BIOs over
// the bench's io_uring sockets, the same pattern as the server's
// bindings/tls/tls_transport.{h,cc} but in connect state. Ciphertext from the socket
// goes into the SSL's read BIO; what SSL_write / the handshake produce is drained from
// the write BIO into the socket. The device sees an engine::Transport carrying
// plaintext, so the IMAP state machine is the same for tcp and tls.
#ifndef PIMAP_BENCH_LOADGEN_TLS_CLIENT_H_
#define PIMAP_BENCH_LOADGEN_TLS_CLIENT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/engine/transport.h"

namespace pimap::bench {

// One client SSL_CTX, shared read-only by every bench shard.
class TlsClientContext {
 public:
  // ca_file empty: no certificate verification (the bench's self-signed test cert).
  // Otherwise the peer must chain to ca_file, and `verify_host` (an IP literal or a DNS
  // name) must match its subjectAltName.
  static absl::StatusOr<std::shared_ptr<TlsClientContext>> Create(const std::string& ca_file,
                                                                 const std::string& verify_host);
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

// TLS over an inner transport (the device's socket). Owns `inner` and `ssl`.
// The handshake starts when the handler is set (ClientHello); plaintext written before
// it finishes waits and is sent right after.
class TlsClientTransport final : public engine::Transport, private engine::TransportHandler {
 public:
  TlsClientTransport(engine::Transport* inner, SSL* ssl);

  void SetHandler(engine::TransportHandler* handler) override;
  void Write(absl::string_view bytes) override;
  void Write(std::string&& bytes) override { Write(absl::string_view(bytes)); }
  using Transport::Write;
  size_t PendingOutput() const override {
    return early_output_.size() + (inner_ != nullptr ? inner_->PendingOutput() : 0);
  }
  void SetReading(bool on) override;
  void Close() override;
  void Abort() override;
  bool is_tls() const override { return true; }

 private:
  ~TlsClientTransport() override;
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;

  void Pump();
  void FlushCiphertext();
  void Fail(absl::Status reason);
  void DeleteSoon();  // deferred while Pump() is on the stack

  engine::Transport* inner_;
  SSL* ssl_;
  engine::TransportHandler* handler_ = nullptr;
  bool reading_ = true;
  bool handshake_done_ = false;
  bool dead_ = false;
  bool in_pump_ = false;
  bool delete_pending_ = false;
  std::string early_output_;
};

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_TLS_CLIENT_H_
