// TLS record layer over a Transport with memory BIOs.
#include "bindings/tls/tls_transport.h"

#include <openssl/buf.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "bindings/tls/tls_context.h"

namespace pimap::tls {

namespace {
// A memory BIO keeps the capacity of the largest burst it ever held (the
// handshake's certificate chain, one big response): kilobytes per idle TLS
// connection. Once it is empty that storage goes back, so an idle connection
// holds no ciphertext buffer; the next burst allocates again.
void ReleaseIfEmpty(BIO* bio) {
  BUF_MEM* mem = nullptr;
  if (bio == nullptr || BIO_get_mem_ptr(bio, &mem) != 1 || mem == nullptr)
    return;
  if (mem->length == 0 && mem->max > 0) {
    OPENSSL_free(mem->data);
    mem->data = nullptr;
    mem->max = 0;
  }
}
}  // namespace

TlsTransport::TlsTransport(engine::Transport* inner, SSL* ssl)
    : inner_(inner), ssl_(ssl) {
  handshake_done_ = SSL_is_init_finished(ssl_);
  inner_->SetHandler(this);
}

TlsTransport::~TlsTransport() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsTransport::SetHandler(engine::TransportHandler* handler) {
  handler_ = handler;
  if (handler_ != nullptr) Pump();
}

void TlsTransport::SetReading(bool on) {
  reading_ = on;
  inner_->SetReading(on);
  if (on) Pump();
}

void TlsTransport::Write(absl::string_view bytes) {
  if (dead_) return;
  if (!handshake_done_) {
    early_output_.append(bytes.data(), bytes.size());
    return;
  }
  while (!bytes.empty()) {
    // Memory BIOs never block, so SSL_write takes everything (chunked to keep
    // individual calls bounded).
    const int chunk = static_cast<int>(std::min<size_t>(bytes.size(), 1 << 20));
    int n = SSL_write(ssl_, bytes.data(), chunk);
    if (n <= 0) {
      Fail(absl::InternalError(absl::StrCat("TLS write: ", LastTlsError())));
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  FlushCiphertext();
}

void TlsTransport::FlushCiphertext() {
  BIO* wbio = SSL_get_wbio(ssl_);
  size_t pending;
  while ((pending = BIO_pending(wbio)) > 0) {
    std::string out(pending, '\0');
    int n = BIO_read(wbio, out.data(), static_cast<int>(pending));
    if (n <= 0) break;
    out.resize(static_cast<size_t>(n));
    inner_->Write(std::move(out));
  }
  ReleaseIfEmpty(wbio);
}

void TlsTransport::OnTransportData(absl::string_view data) {
  BIO_write(SSL_get_rbio(ssl_), data.data(), static_cast<int>(data.size()));
  Pump();
}

void TlsTransport::DeleteSoon() {
  if (in_pump_) {
    delete_pending_ = true;
  } else {
    delete this;
  }
}

void TlsTransport::Pump() {
  if (dead_ || in_pump_) return;
  in_pump_ = true;
  if (!handshake_done_) {
    int rc = SSL_do_handshake(ssl_);
    FlushCiphertext();
    if (rc == 1) {
      handshake_done_ = true;
      if (!early_output_.empty()) {
        std::string early = std::move(early_output_);
        early_output_.clear();
        Write(early);
        if (dead_) {
          in_pump_ = false;
          if (delete_pending_) delete this;
          return;
        }
      }
    } else {
      int err = SSL_get_error(ssl_, rc);
      in_pump_ = false;
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        std::string why = LastTlsError();
        // A client that rejected the peer's certificate: say why (expired,
        // unknown CA, name mismatch), which the error queue does not.
        if (const long verify = SSL_get_verify_result(ssl_);
            !SSL_is_server(ssl_) && verify != X509_V_OK) {
          absl::StrAppend(&why, " (certificate verification: ",
                          X509_verify_cert_error_string(verify), ")");
        }
        Fail(absl::UnavailableError(
            absl::StrCat("TLS handshake failed: ", why)));
      }
      return;
    }
  }
  char buf[16 * 1024];
  while (reading_ && handler_ != nullptr && !dead_) {
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      handler_->OnTransportData(absl::string_view(buf, static_cast<size_t>(n)));
      if (delete_pending_) break;
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    FlushCiphertext();  // post-handshake messages (tickets, key updates)
    if (err == SSL_ERROR_ZERO_RETURN) {
      in_pump_ = false;
      Fail(absl::OkStatus());  // close_notify from the peer
      return;
    }
    if (err != SSL_ERROR_WANT_READ) {
      in_pump_ = false;
      Fail(absl::UnavailableError(absl::StrCat("TLS read: ", LastTlsError())));
      return;
    }
    break;
  }
  if (!dead_) ReleaseIfEmpty(SSL_get_rbio(ssl_));
  in_pump_ = false;
  if (delete_pending_) delete this;
}

void TlsTransport::OnTransportDrained() {
  if (handler_ != nullptr) handler_->OnTransportDrained();
}

void TlsTransport::OnTransportClosed(absl::Status reason) {
  // The inner transport is gone already.
  inner_ = nullptr;
  engine::TransportHandler* handler = handler_;
  handler_ = nullptr;
  dead_ = true;
  if (handler != nullptr) handler->OnTransportClosed(std::move(reason));
  DeleteSoon();
}

void TlsTransport::Fail(absl::Status reason) {
  if (dead_) return;
  dead_ = true;
  engine::TransportHandler* handler = handler_;
  handler_ = nullptr;
  inner_->SetHandler(nullptr);
  inner_->Abort();
  inner_ = nullptr;
  if (handler != nullptr) handler->OnTransportClosed(std::move(reason));
  DeleteSoon();
}

void TlsTransport::Close() {
  if (dead_) return;
  dead_ = true;
  handler_ = nullptr;
  SSL_shutdown(ssl_);  // queues close_notify
  FlushCiphertext();
  inner_->Close();  // flushes, then closes
  inner_ = nullptr;
  DeleteSoon();
}

void TlsTransport::Abort() {
  if (dead_) return;
  dead_ = true;
  handler_ = nullptr;
  inner_->Abort();
  inner_ = nullptr;
  DeleteSoon();
}

absl::string_view TlsTransport::alpn_protocol() const {
  const uint8_t* data = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return absl::string_view(reinterpret_cast<const char*>(data), length);
}

SSL* TlsTransport::ReleaseSsl() {
  SSL* ssl = ssl_;
  ssl_ = nullptr;
  inner_ = nullptr;
  handler_ = nullptr;
  dead_ = true;
  DeleteSoon();
  return ssl;
}

}  // namespace pimap::tls
