// Client TLS for pimap-bench over memory BIOs (see tls_client.h).
#include "bench/loadgen/tls_client.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pimap::bench {

std::string LastTlsErrorText() {
  uint32_t err = ERR_get_error();
  if (err == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

absl::StatusOr<std::shared_ptr<TlsClientContext>> TlsClientContext::Create(
    const std::string& ca_file, const std::string& verify_host) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Every device is a new client: no session resumption between devices, so each
  // connection pays a full handshake, as a fleet of separate phones would.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
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

TlsClientTransport::TlsClientTransport(engine::Transport* inner, SSL* ssl)
    : inner_(inner), ssl_(ssl) {
  inner_->SetHandler(this);
}

TlsClientTransport::~TlsClientTransport() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsClientTransport::SetHandler(engine::TransportHandler* handler) {
  handler_ = handler;
  if (handler_ != nullptr) Pump();  // first call: SSL_do_handshake sends the ClientHello
}

void TlsClientTransport::SetReading(bool on) {
  reading_ = on;
  if (inner_ != nullptr) inner_->SetReading(on);
  if (on) Pump();
}

void TlsClientTransport::Write(absl::string_view bytes) {
  if (dead_) return;
  if (!handshake_done_) {
    early_output_.append(bytes.data(), bytes.size());
    return;
  }
  while (!bytes.empty()) {
    const int chunk = static_cast<int>(std::min<size_t>(bytes.size(), 1 << 20));
    const int n = SSL_write(ssl_, bytes.data(), chunk);
    if (n <= 0) {
      Fail(absl::InternalError(absl::StrCat("TLS write: ", LastTlsErrorText())));
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  FlushCiphertext();
}

void TlsClientTransport::FlushCiphertext() {
  if (inner_ == nullptr) return;
  BIO* wbio = SSL_get_wbio(ssl_);
  size_t pending;
  while ((pending = BIO_pending(wbio)) > 0) {
    std::string out(pending, '\0');
    const int n = BIO_read(wbio, out.data(), static_cast<int>(pending));
    if (n <= 0) break;
    out.resize(static_cast<size_t>(n));
    inner_->Write(std::move(out));
  }
}

void TlsClientTransport::OnTransportData(absl::string_view data) {
  BIO_write(SSL_get_rbio(ssl_), data.data(), static_cast<int>(data.size()));
  Pump();
}

void TlsClientTransport::DeleteSoon() {
  if (in_pump_) {
    delete_pending_ = true;
  } else {
    delete this;
  }
}

void TlsClientTransport::Pump() {
  if (dead_ || in_pump_) return;
  in_pump_ = true;
  if (!handshake_done_) {
    const int rc = SSL_do_handshake(ssl_);
    FlushCiphertext();
    if (rc != 1) {
      const int err = SSL_get_error(ssl_, rc);
      in_pump_ = false;
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        std::string why = LastTlsErrorText();
        const long verify = SSL_get_verify_result(ssl_);
        if (verify != X509_V_OK)
          why = absl::StrCat(why, " (certificate: ", X509_verify_cert_error_string(verify), ")");
        Fail(absl::UnavailableError(absl::StrCat("TLS handshake failed: ", why)));
      }
      if (delete_pending_) delete this;
      return;
    }
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
  }
  char buf[16 * 1024];
  while (reading_ && handler_ != nullptr && !dead_) {
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      handler_->OnTransportData(absl::string_view(buf, static_cast<size_t>(n)));
      if (delete_pending_) break;
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    FlushCiphertext();  // post-handshake messages (key updates)
    if (err == SSL_ERROR_ZERO_RETURN) {
      in_pump_ = false;
      Fail(absl::OkStatus());  // close_notify from the server
      if (delete_pending_) delete this;
      return;
    }
    if (err != SSL_ERROR_WANT_READ) {
      in_pump_ = false;
      Fail(absl::UnavailableError(absl::StrCat("TLS read: ", LastTlsErrorText())));
      if (delete_pending_) delete this;
      return;
    }
    break;
  }
  in_pump_ = false;
  if (delete_pending_) delete this;
}

void TlsClientTransport::OnTransportDrained() {
  if (handler_ != nullptr) handler_->OnTransportDrained();
}

void TlsClientTransport::OnTransportClosed(absl::Status reason) {
  inner_ = nullptr;  // the socket is gone already
  engine::TransportHandler* handler = handler_;
  handler_ = nullptr;
  const bool was_dead = dead_;
  dead_ = true;
  if (handler != nullptr && !was_dead) handler->OnTransportClosed(std::move(reason));
  DeleteSoon();
}

void TlsClientTransport::Fail(absl::Status reason) {
  if (dead_) return;
  dead_ = true;
  engine::TransportHandler* handler = handler_;
  handler_ = nullptr;
  if (inner_ != nullptr) {
    inner_->SetHandler(nullptr);
    inner_->Abort();
    inner_ = nullptr;
  }
  if (handler != nullptr) handler->OnTransportClosed(std::move(reason));
  DeleteSoon();
}

void TlsClientTransport::Close() {
  if (dead_) return;
  dead_ = true;
  handler_ = nullptr;
  SSL_shutdown(ssl_);  // queues close_notify
  FlushCiphertext();
  if (inner_ != nullptr) {
    inner_->SetHandler(nullptr);
    inner_->Close();  // flushes, then closes
    inner_ = nullptr;
  }
  DeleteSoon();
}

void TlsClientTransport::Abort() {
  if (dead_) return;
  dead_ = true;
  handler_ = nullptr;
  if (inner_ != nullptr) {
    inner_->SetHandler(nullptr);
    inner_->Abort();
    inner_ = nullptr;
  }
  DeleteSoon();
}

}  // namespace pimap::bench
