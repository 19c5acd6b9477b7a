// One SMTP submission on the shard's ring (smtp_submission.h): "resolving",
// "connecting" (each address in turn), then the dialog on the transport (TLS
// slipped under it after STARTTLS), until the dialog is done, the peer
// closes or the deadline passes. Callbacks that may come after the end (the
// resolver's, the connect's) check `alive_` first.
#include "bindings/smtp/smtp_submission.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bindings/tls/tls_context.h"
#include "bindings/tls/tls_transport.h"
#include "core/engine/connect_any.h"
#include "core/engine/resolver.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::smtp {
namespace {

class Submission final : private engine::TransportHandler {
 public:
  Submission(engine::Shard* shard, const SmtpConfig* config,
             mail::OutgoingMail mail, session::MailSubmitter::Done done)
      : shard_(shard),
        config_(config),
        dialog_(config->options,
                SmtpEnvelope{std::move(mail.mail_from),
                             std::move(mail.recipients), std::move(mail.data)}),
        done_(std::move(done)) {}

  void Start(engine::Resolver* resolver) {
    timer_ = shard_->timers().Schedule(config_->timeout_ms, [this] {
      timer_ = 0;
      Finish(absl::DeadlineExceededError(
          "the SMTP server did not answer in time"));
    });
    std::weak_ptr<bool> alive = alive_;
    resolver->Resolve(
        config_->host, config_->port,
        [this, alive](
            absl::StatusOr<std::vector<engine::ResolvedAddress>> addresses) {
          if (alive.expired()) return;
          if (!addresses.ok() || addresses->empty()) {
            Finish(absl::UnavailableError(absl::StrCat(
                "cannot resolve the SMTP server ", config_->host)));
            return;
          }
          Connect(*std::move(addresses));
        });
  }

 private:
  ~Submission() override = default;

  void Connect(std::vector<engine::ResolvedAddress> addresses) {
    std::weak_ptr<bool> alive = alive_;
    engine::ConnectAny(
        shard_, std::move(addresses),
        [this, alive](absl::StatusOr<engine::Socket*> socket) {
          if (alive.expired()) {
            if (socket.ok()) (*socket)->Abort();
            return;
          }
          if (!socket.ok()) {
            Finish(absl::UnavailableError(
                absl::StrCat("cannot connect to the SMTP server: ",
                             socket.status().message())));
            return;
          }
          transport_ = *socket;
          transport_->SetHandler(this);  // the greeting comes first
        });
  }

  void OnTransportData(absl::string_view data) override {
    std::string out;
    const SmtpDialog::Next next = dialog_.OnData(data, &out);
    if (!out.empty() && transport_ != nullptr)
      transport_->Write(std::move(out));
    switch (next) {
      case SmtpDialog::Next::kContinue:
        return;
      case SmtpDialog::Next::kDone:
        Finish(dialog_.result());
        return;
      case SmtpDialog::Next::kStartTls:
        StartTls();
        return;
    }
  }

  void StartTls() {
    SSL* ssl = config_->tls != nullptr
                   ? config_->tls->NewClientSsl(config_->host)
                   : nullptr;
    if (ssl == nullptr) {
      Finish(absl::InternalError("no TLS client session for STARTTLS"));
      return;
    }
    transport_->SetHandler(nullptr);
    transport_ = new tls::TlsTransport(transport_, ssl);
    std::string out;
    dialog_.OnTlsStarted(&out);
    // Held by the transport until the handshake is done.
    transport_->Write(std::move(out));
    transport_->SetHandler(this);  // starts the handshake
  }

  void OnTransportClosed(absl::Status reason) override {
    transport_ = nullptr;  // it frees itself
    dialog_.OnClosed(reason.ok() ? "closed" : reason.message());
    Finish(dialog_.result());
  }

  void Finish(absl::Status status) {
    if (finished_) return;
    finished_ = true;
    alive_.reset();
    if (timer_ != 0) shard_->timers().Cancel(timer_);
    timer_ = 0;
    if (transport_ != nullptr) {
      transport_->SetHandler(nullptr);
      // After the 250 the QUIT is on its way out: flushed, then closed.
      if (status.ok()) {
        transport_->Close();
      } else {
        transport_->Abort();
      }
      transport_ = nullptr;
    }
    session::MailSubmitter::Done done = std::move(done_);
    delete this;
    done(std::move(status));
  }

  engine::Shard* shard_;
  const SmtpConfig* config_;
  SmtpDialog dialog_;
  session::MailSubmitter::Done done_;
  engine::Transport* transport_ = nullptr;
  TimerWheel::TimerId timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool finished_ = false;
};

}  // namespace

void SmtpSubmitter::Submit(mail::OutgoingMail mail, Done done) {
  auto* submission =
      new Submission(shard_, config_, std::move(mail), std::move(done));
  submission->Start(resolver_);
}

}  // namespace pimap::smtp
