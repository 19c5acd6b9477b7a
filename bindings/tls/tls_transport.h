// TLS over any Transport, through memory BIOs: ciphertext from the inner
// transport is written into the SSL's read BIO, what SSL_write produces is
// drained from its write BIO into the inner transport. Used for implicit TLS
// and for STARTTLS (which wraps the already-open plain transport).
#ifndef PIMAP_BINDINGS_TLS_TLS_TRANSPORT_H_
#define PIMAP_BINDINGS_TLS_TLS_TRANSPORT_H_

#include <openssl/ssl.h>

#include <string>

#include "core/engine/transport.h"

namespace pimap::tls {

class TlsTransport final : public engine::Transport,
                           private engine::TransportHandler {
 public:
  // Takes ownership of `inner` (closed with this) and `ssl` (freed with this).
  TlsTransport(engine::Transport* inner, SSL* ssl);

  void SetHandler(engine::TransportHandler* handler) override;
  void Write(absl::string_view bytes) override;
  void Write(std::string&& bytes) override { Write(absl::string_view(bytes)); }
  using Transport::Write;
  size_t PendingOutput() const override {
    return early_output_.size() + (inner_ ? inner_->PendingOutput() : 0);
  }
  void SetReading(bool on) override;
  void Close() override;
  void Abort() override;
  bool is_tls() const override { return true; }
  // The protocol ALPN selected (RFC 7301), empty if none; known once the
  // handshake is done (before the first OnTransportData).
  absl::string_view alpn_protocol() const;

  // For hand-over to another shard: gives up the SSL object (with its buffered
  // ciphertext) without closing it; the inner transport must already have been
  // detached (it frees itself). Frees this.
  SSL* ReleaseSsl();

 private:
  ~TlsTransport() override;
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;

  void Pump();  // handshake / decrypt / deliver, as far as reading allows
  void FlushCiphertext();
  void Fail(absl::Status reason);
  // Handlers may close us from inside a callback that Pump() made: deletion
  // waits until Pump() has unwound.
  void DeleteSoon();

  engine::Transport* inner_;
  SSL* ssl_;
  engine::TransportHandler* handler_ = nullptr;
  bool reading_ = true;
  bool handshake_done_ = false;
  bool dead_ = false;
  bool in_pump_ = false;
  bool delete_pending_ = false;
  // Plaintext written before the handshake finished (e.g. the IMAP greeting on
  // an implicit-TLS port): SSL_write cannot take it yet, so it waits here.
  std::string early_output_;
};

}  // namespace pimap::tls

#endif  // PIMAP_BINDINGS_TLS_TLS_TRANSPORT_H_
