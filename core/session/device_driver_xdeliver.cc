// XDELIVER in a P-IMAP session (protocol.md §3.6, docs/xdeliver.md): the
// engine's side of XdeliverRun (xdeliver_run.h, shared with the relay). The
// steps run one after the other, each a job on the device's store link
// (borrowed, in pooled mode) but the submission:
//   R/F: UID FETCH <uid> (BODY.PEEK[]) in the original's folder
//        (kXdeliverFetch; a borrowed link selects that folder first);
//   compose (core/mail/compose.h) and submit (MailSubmitter, the SMTP
//        client on the shard's ring: kXdeliverSubmit, no store command);
//   after the MTA's 250 only: APPEND of the SAVETO copy (kXdeliverAppend),
//        \Answered or $Forwarded on the original (kXdeliverFlag);
//   the tagged answer, "OK [APPENDUID ...]" when the copy was saved.
// Nothing of the store changes before the MTA accepted the message, so a
// refused message leaves no copy and no flag. The responses of these jobs
// are the gateway's own (IsInternalJob): XDELIVER causes no untagged
// response (R06); news the store reports meanwhile are journaled as usual.
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/mail/compose.h"
#include "core/session/device_driver.h"
#include "core/session/event_frames.h"
#include "core/session/mail_submitter.h"
#include "core/session/vfolder.h"
#include "core/session/xdeliver_run.h"

namespace pimap::session {

std::string DeviceDriver::ExtraCapabilities(const DriverServices& services) {
  std::string caps = EventFrames(services.compressor).Capability();
  // XDELIVER where it works: a submitter (--smtp) on this shard.
  if (services.registry != nullptr &&
      services.registry->submitter() != nullptr) {
    absl::StrAppend(&caps, caps.empty() ? "" : " ", "XDELIVER");
  }
  return caps;
}

std::string DeviceDriver::SenderAddress() const {
  return XdeliverSender(user_, services_.registry->config().smtp_sender_domain);
}

void DeviceDriver::Xdeliver(const imap::Command& command) {
  if (registry().submitter() == nullptr) {
    std::string out;
    imap::AppendTaggedStatus(
        &out, command.tag, "NO", "CANNOT",
        "XDELIVER is not enabled on this gateway (no --smtp)");
    Write(std::move(out));
    return;
  }
  XdeliverContext context;
  context.sender = SenderAddress();
  if (session_ != nullptr) {
    context.selected_folder = session_->selected_folder;
    // A virtual folder named as the original's mailbox or SAVETO= is its
    // backing folder (as for COPY and APPEND, device_driver_xpsearch.cc);
    // the selected folder is the backing one already.
    const VirtualFolders* vfolders = &session_->vfolders;
    context.store_folder = [vfolders](absl::string_view name) {
      const VirtualFolder* v = vfolders->Find(name);
      return v != nullptr ? v->backing : std::string(name);
    };
  }
  // The device's own link stays in the device's folder; only a borrowed
  // one can be taken to another folder (and brought back after).
  context.other_folders = services_.pool != nullptr;
  for (const std::string& cap : store_capabilities()) {
    if (absl::EqualsIgnoreCase(cap, "LITERAL+")) context.literal_plus = true;
  }
  context.boundary_seed =
      absl::StrCat(absl::Hex(reinterpret_cast<uintptr_t>(this)), "_",
                   MonotonicNowMs(), "_", next_up_tag_);
  absl::StatusOr<std::unique_ptr<XdeliverRun>> run =
      XdeliverRun::Start(command, std::move(context));
  if (!run.ok()) {
    if (absl::IsInvalidArgument(run.status())) {
      WriteBad(command.tag, run.status().message());
      return;
    }
    std::string out;
    imap::AppendTaggedStatus(&out, command.tag, "NO", "CANNOT",
                             run.status().message());
    Write(std::move(out));
    return;
  }
  job_device_tag_ = command.tag;
  cmd().xdeliver = *std::move(run);
  AdvanceXdeliver();
}

void DeviceDriver::AdvanceXdeliver() {
  XdeliverRun& x = *cmd().xdeliver;
  switch (x.step()) {
    case XdeliverRun::Step::kFetch:
      SendJob(Job::kXdeliverFetch, job_device_tag_, x.StoreCommand());
      return;
    case XdeliverRun::Step::kAppend:
      SendJob(Job::kXdeliverAppend, job_device_tag_, x.StoreCommand());
      return;
    case XdeliverRun::Step::kFlag:
      SendJob(Job::kXdeliverFlag, job_device_tag_, x.StoreCommand());
      return;
    case XdeliverRun::Step::kSubmit:
      SubmitXdeliver();
      return;
    case XdeliverRun::Step::kDone: {
      const std::string rest = x.answer();
      cmd().xdeliver.reset();
      FinishCommand(rest);
      return;
    }
  }
}

void DeviceDriver::SubmitXdeliver() {
  mail::OutgoingMail mail = cmd().xdeliver->TakeMail();
  job_ = Job::kXdeliverSubmit;
  cmd().job_up_tag.clear();
  Paused(true, false);
  std::weak_ptr<bool> alive = alive_;
  PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event("xdeliver")
      << "submitting to " << mail.recipients.size() << " recipients, "
      << mail.data.size() << " bytes";
  registry().submitter()->Submit(
      std::move(mail), [this, alive](absl::Status s) {
        if (alive.expired()) return;  // the device is gone (sent all the same)
        Busy busy(this);
        if (job_ != Job::kXdeliverSubmit || cmd().xdeliver == nullptr) return;
        if (!s.ok()) {
          PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event(
              "xdeliver.refused")
              << s.message();
        }
        cmd().xdeliver->OnSubmitted(s);
        AdvanceXdeliver();
      });
}

void DeviceDriver::OnXdeliverJobDone(bool ok, absl::string_view rest) {
  if (cmd().xdeliver == nullptr) {
    FinishCommand(rest);
    return;
  }
  cmd().xdeliver->OnStoreDone(ok, rest);
  AdvanceXdeliver();
}

}  // namespace pimap::session
