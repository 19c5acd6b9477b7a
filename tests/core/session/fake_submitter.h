// A MailSubmitter for tests: keeps each submitted message and answers it
// when the test says (the MTA's verdict), like the SMTP client would later.
#ifndef PIMAP_TESTS_CORE_SESSION_FAKE_SUBMITTER_H_
#define PIMAP_TESTS_CORE_SESSION_FAKE_SUBMITTER_H_

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/session/mail_submitter.h"
#include "gtest/gtest.h"

namespace pimap::session::testing {

class FakeSubmitter : public MailSubmitter {
 public:
  void Submit(mail::OutgoingMail mail, Done done) override {
    mails.push_back(std::move(mail));
    pending.push_back(std::move(done));
  }
  // The MTA's verdict on the oldest submission.
  void Finish(absl::Status status) {
    ASSERT_FALSE(pending.empty());
    Done done = std::move(pending.front());
    pending.erase(pending.begin());
    done(std::move(status));
  }
  std::vector<mail::OutgoingMail> mails;
  std::vector<Done> pending;
};

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_FAKE_SUBMITTER_H_
