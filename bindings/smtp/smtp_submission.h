// XDELIVER's way out: each composed message goes to the operator's MTA
// (--smtp HOST:PORT) over a connection of its own on the shard's ring —
// resolve (engine::Resolver), connect (engine::Socket, every address in
// turn), the SMTP dialog (smtp_dialog.h) with STARTTLS under it when asked,
// all within a deadline. Never blocks the shard. One connection per message:
// XDELIVER is rare next to the push traffic, and a fresh connection keeps
// one message's failure from touching another's.
#ifndef PIMAP_BINDINGS_SMTP_SMTP_SUBMISSION_H_
#define PIMAP_BINDINGS_SMTP_SMTP_SUBMISSION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "bindings/smtp/smtp_dialog.h"
#include "core/session/mail_submitter.h"

namespace pimap::engine {
class Resolver;
class Shard;
}  // namespace pimap::engine
namespace pimap::tls {
class TlsContext;
}

namespace pimap::smtp {

struct SmtpConfig {
  std::string host;  // a name or an IP literal
  uint16_t port = 25;
  SmtpOptions options;         // EHLO name, STARTTLS, AUTH PLAIN
  int64_t timeout_ms = 60000;  // the whole submission
  // The client context STARTTLS verifies the MTA with (null: no STARTTLS).
  std::shared_ptr<tls::TlsContext> tls;
};

class SmtpSubmitter final : public session::MailSubmitter {
 public:
  // `config` outlives the submitter; `resolver` is the shard's (registered
  // in its services: answers find it there).
  SmtpSubmitter(engine::Shard* shard, engine::Resolver* resolver,
                const SmtpConfig* config)
      : shard_(shard), resolver_(resolver), config_(config) {}
  void Submit(mail::OutgoingMail mail, Done done) override;

 private:
  engine::Shard* shard_;
  engine::Resolver* resolver_;
  const SmtpConfig* config_;
};

}  // namespace pimap::smtp

#endif  // PIMAP_BINDINGS_SMTP_SMTP_SUBMISSION_H_
