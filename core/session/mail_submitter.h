// What XDELIVER hands a composed message to (the session engine knows no
// SMTP): a shard's submitter (bindings/smtp/smtp_submission.h) relays it to
// the operator's MTA on the shard's ring. Null in DriverServices: XDELIVER
// is not offered.
#ifndef PIMAP_CORE_SESSION_MAIL_SUBMITTER_H_
#define PIMAP_CORE_SESSION_MAIL_SUBMITTER_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "core/mail/compose.h"

namespace pimap::session {

class MailSubmitter {
 public:
  // OK once the MTA accepted the message (its 250 after the data); else the
  // MTA's reply or what went wrong, fit for the device's NO. Runs exactly
  // once, on the shard's thread (possibly before Submit() returns).
  using Done = absl::AnyInvocable<void(absl::Status)>;
  virtual ~MailSubmitter() = default;
  virtual void Submit(mail::OutgoingMail mail, Done done) = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_MAIL_SUBMITTER_H_
