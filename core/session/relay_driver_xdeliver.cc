// XDELIVER in a regular (relayed) session (protocol.md §2.2: R01 allows it
// without a device ID; docs/xdeliver.md): the relay runs the gateway's own
// command instead of relaying it. XdeliverRun (xdeliver_run.h) decides the
// steps, as for a P-IMAP device; the relay carries them out on the client's
// own store link, tagged "~x<n>", input held until the tagged answer.
//
// The link is the client's: whatever the store says meanwhile that is not
// our command's (new mail, an expunge) is the client's and is passed on,
// so its MSN map stays the store's. Only the original's FETCH with its body
// is kept back. The link stays in the client's mailbox: an original in
// another one is read and flagged on a pooled link (RunElsewhere,
// side_commands.h). The flag is set without .SILENT: a stock client keeps
// its flags in step from the FETCH the store then sends.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/base/log.h"
#include "core/base/timer_wheel.h"
#include "core/imap/writer.h"
#include "core/session/mail_submitter.h"
#include "core/session/relay_driver.h"
#include "core/session/xdeliver_run.h"

namespace pimap::session {

MailSubmitter* RelayDriver::submitter() const {
  return services_.registry != nullptr ? services_.registry->submitter()
                                       : nullptr;
}

std::string RelayDriver::ExtraCapabilities() const {
  // XDELIVER where it works: a submitter (--smtp) on this shard.
  return submitter() != nullptr ? "XDELIVER" : "";
}

void RelayDriver::Xdeliver(const imap::Command& command) {
  auto no = [&](absl::string_view text) {
    std::string out;
    imap::AppendTaggedStatus(&out, command.tag, "NO", "CANNOT", text);
    Write(std::move(out));
  };
  if (submitter() == nullptr) {
    return no("XDELIVER is not enabled on this gateway (no --smtp)");
  }
  if (link_ == nullptr) return no("No connection to the message store");
  XdeliverContext context;
  context.sender =
      XdeliverSender(user_, services_.registry->config().smtp_sender_domain);
  context.selected_folder = client_.folder();
  // The client's link stays in its mailbox; another one is reached on a
  // pooled link (RunElsewhere).
  context.other_folders = services_.pool != nullptr;
  // An EXAMINEd mailbox takes no STORE on the client's link: the flag is set
  // on a pooled one (SideCommands selects read-write).
  context.selected_read_only = client_.read_only();
  context.silent_flag = false;
  for (const std::string& cap : store_capabilities()) {
    if (absl::EqualsIgnoreCase(cap, "LITERAL+")) context.literal_plus = true;
  }
  context.boundary_seed =
      absl::StrCat(absl::Hex(reinterpret_cast<uintptr_t>(this)), "_",
                   MonotonicNowMs(), "_", next_tag_);
  absl::StatusOr<std::unique_ptr<XdeliverRun>> run =
      XdeliverRun::Start(command, std::move(context));
  if (!run.ok()) {
    if (absl::IsInvalidArgument(run.status())) {
      std::string out;
      imap::AppendTaggedStatus(&out, command.tag, "BAD", "",
                               run.status().message());
      Write(std::move(out));
      return;
    }
    return no(run.status().message());
  }
  xdeliver_ = *std::move(run);
  xdeliver_tag_ = command.tag;
  HoldInput();
  AdvanceXdeliver();
}

void RelayDriver::AdvanceXdeliver() {
  switch (xdeliver_->step()) {
    case XdeliverRun::Step::kFetch:
    case XdeliverRun::Step::kAppend:
    case XdeliverRun::Step::kFlag: {
      if (xdeliver_->StepElsewhere()) {
        RunElsewhere();
        return;
      }
      if (link_ == nullptr) {
        // Lost meanwhile (OnStoreClosed says goodbye); nothing to run on.
        return;
      }
      xdeliver_up_tag_ = absl::StrCat("~x", ++next_tag_);
      collected_.clear();
      collect_overflow_ = false;
      // No store timer: like the client's own commands on this link, ours
      // wait for the store (a large SAVETO copy may take a while).
      link_->Send(absl::StrCat(xdeliver_up_tag_, " ", xdeliver_->StoreCommand(),
                               "\r\n"));
      return;
    }
    case XdeliverRun::Step::kSubmit: {
      mail::OutgoingMail mail = xdeliver_->TakeMail();
      PIMAP_LOG(INFO).Conn(credentials_.origin).User(user_).Event("xdeliver")
          << "submitting to " << mail.recipients.size() << " recipients, "
          << mail.data.size() << " bytes (relayed session)";
      std::weak_ptr<bool> alive = alive_;
      submitter()->Submit(std::move(mail), [this, alive](absl::Status s) {
        if (alive.expired()) return;  // the client is gone (sent all the same)
        Busy busy(this);
        if (xdeliver_ == nullptr) return;
        if (!s.ok()) {
          PIMAP_LOG(INFO)
                  .Conn(credentials_.origin)
                  .User(user_)
                  .Event("xdeliver.refused")
              << s.message();
        }
        xdeliver_->OnSubmitted(s);
        AdvanceXdeliver();
      });
      return;
    }
    case XdeliverRun::Step::kDone: {
      std::string out =
          absl::StrCat(xdeliver_tag_, " ", xdeliver_->answer(), "\r\n");
      xdeliver_.reset();
      xdeliver_tag_.clear();
      Write(std::move(out));
      ReleaseInput();
      return;
    }
  }
}

void RelayDriver::RunElsewhere() {
  StoreCredentials plain = credentials_;
  plain.profile = "relay:";  // SELECT, UID FETCH, UID STORE need nothing more
  std::weak_ptr<bool> alive = alive_;
  StoreLinkPool* pool = services_.pool;
  pool->Borrow(
      plain, services_.borrow_timeout_ms,
      [this, alive, pool](absl::StatusOr<PooledLink*> lent) {
        if (alive.expired() || xdeliver_ == nullptr) {
          // The client left meanwhile (the pool outlives drivers).
          if (lent.ok()) pool->Return(*lent, /*reusable=*/true);
          return;
        }
        Busy busy(this);
        if (!lent.ok()) {
          xdeliver_->OnStoreUnavailable("The message store is not available");
          AdvanceXdeliver();
          return;
        }
        side_ = std::make_unique<SideCommands>(pool, *lent, CollectLimit());
        side_->Run(
            xdeliver_->folder(), xdeliver_->StoreCommand(),
            [this](absl::string_view raw) {
              if (xdeliver_ != nullptr) xdeliver_->TakeOriginal(raw);
            },
            [this](const SideCommands::Result& result) {
              Busy busy(this);
              side_.reset();  // the link is back in the pool
              if (xdeliver_ == nullptr) return;
              if (result.dropped) xdeliver_->OnResponseDropped();
              if (result.lost) {
                xdeliver_->OnStoreUnavailable(
                    "Connection to the message store lost");
              } else {
                xdeliver_->OnStoreDone(result.ok, result.rest);
              }
              AdvanceXdeliver();
            });
      });
}

void RelayDriver::OnXdeliverResponse(absl::string_view completed_tag) {
  std::string raw = std::exchange(collected_, std::string());
  const bool overflow = std::exchange(collect_overflow_, false);
  if (!completed_tag.empty() && completed_tag == xdeliver_up_tag_) {
    xdeliver_up_tag_.clear();
    absl::string_view rest = raw;
    rest.remove_prefix(std::min(rest.size(), completed_tag.size() + 1));
    rest = absl::StripTrailingAsciiWhitespace(rest);
    xdeliver_->OnStoreDone(absl::StartsWithIgnoreCase(rest, "OK"), rest);
    AdvanceXdeliver();
    return;
  }
  // Too big to hold: only the original's body gets that big (the fetch then
  // ends NO [LIMIT]: better than a cut response to the client).
  if (overflow) {
    xdeliver_->OnResponseDropped();
    return;
  }
  if (xdeliver_->TakeOriginal(raw)) return;
  // The client's news: passed on whole, and the session state follows.
  const size_t eol = raw.find("\r\n");
  client_.OnResponseLine(absl::string_view(raw).substr(
      0, std::min(eol, RelayClientState::kMaxLine)));
  Write(std::move(raw));
}

}  // namespace pimap::session
