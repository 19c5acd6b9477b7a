// XDELIVER in a P-IMAP session (protocol.md §3.6, docs/xdeliver.md): the
// engine's side. The steps run one after the other, each a job on the
// device's store link (borrowed, in pooled mode) but the submission:
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
#include "core/session/store_text.h"

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
  if (absl::StrContains(user_, '@')) return user_;
  const std::string& domain = services_.registry->config().smtp_sender_domain;
  if (domain.empty()) return "";
  return absl::StrCat(user_, "@", domain);
}

void DeviceDriver::Xdeliver(const imap::Command& command) {
  std::string out;
  auto no = [&](absl::string_view code, absl::string_view text) {
    imap::AppendTaggedStatus(&out, command.tag, "NO", code, text);
    Write(std::move(out));
  };
  if (registry().submitter() == nullptr) {
    return no("CANNOT", "XDELIVER is not enabled on this gateway (no --smtp)");
  }
  absl::StatusOr<mail::XdeliverRequest> request = mail::ParseXdeliver(command);
  if (!request.ok()) {
    WriteBad(command.tag, request.status().message());
    return;
  }
  if (SenderAddress().empty()) {
    return no("CANNOT",
              "No mail address for this login (--smtp-sender-domain)");
  }
  auto state = std::make_unique<XdeliverState>();
  state->request = *std::move(request);
  if (state->request.kind != mail::DeliverKind::kNew) {
    const std::string& selected = session_->selected_folder;
    std::string folder =
        state->request.mailbox.empty() ? selected : state->request.mailbox;
    if (absl::EqualsIgnoreCase(folder, "INBOX")) folder = "INBOX";
    if (folder.empty()) {
      WriteBad(command.tag,
               "XDELIVER R|F: no mailbox selected; name the original's");
      return;
    }
    // The device's own link stays in the device's folder; only a borrowed
    // one can be taken to another folder (and brought back after).
    if (services_.pool == nullptr && folder != selected) {
      return no("CANNOT",
                "The original must be in the selected mailbox on this gateway");
    }
    state->folder = std::move(folder);
  }
  job_device_tag_ = command.tag;
  cmd().xdeliver = std::move(state);
  if (cmd().xdeliver->request.kind == mail::DeliverKind::kNew) {
    ComposeAndSubmit();
    return;
  }
  SendJob(Job::kXdeliverFetch, command.tag,
          absl::StrCat("UID FETCH ", cmd().xdeliver->request.uid,
                       " (BODY.PEEK[])"));
}

void DeviceDriver::TakeXdeliverOriginal(absl::string_view response) {
  XdeliverState* x = cmd().xdeliver.get();
  if (x == nullptr) return;
  const size_t at = response.find("BODY[] {");
  if (at == absl::string_view::npos) return;
  const size_t close = response.find('}', at);
  size_t size = 0;
  if (close == absl::string_view::npos ||
      !absl::SimpleAtoi(response.substr(at + 8, close - at - 8), &size) ||
      response.substr(close + 1, 2) != "\r\n") {
    return;
  }
  const absl::string_view head = response.substr(0, at);
  const size_t begin = close + 3;
  if (response.size() - begin < size) return;  // cut: past what is collected
  const absl::string_view tail = response.substr(begin + size);
  // The UID is before or after the literal; only this message will do (not
  // someone's flag change passing by).
  std::optional<uint32_t> uid = FetchUid(absl::StrCat(head, tail));
  if (!uid.has_value() || *uid != x->request.uid) return;
  x->original.assign(response.data() + begin, size);
}

void DeviceDriver::ComposeAndSubmit() {
  XdeliverState& x = *cmd().xdeliver;
  mail::ComposeRequest compose;
  compose.kind = x.request.kind;
  compose.attach = x.request.attach;
  compose.message = x.request.message;
  compose.original = x.original;
  compose.sender = SenderAddress();
  compose.boundary_seed =
      absl::StrCat(absl::Hex(reinterpret_cast<uintptr_t>(this)), "_",
                   MonotonicNowMs(), "_", next_up_tag_);
  absl::StatusOr<mail::OutgoingMail> mail = mail::ComposeOutgoing(compose);
  if (!mail.ok()) {
    FinishXdeliver(absl::StrCat("NO ", mail.status().message()));
    return;
  }
  x.request.message.clear();
  x.request.message.shrink_to_fit();
  x.original.clear();
  x.original.shrink_to_fit();
  if (!x.request.save_to.empty()) x.sent = mail->data;
  job_ = Job::kXdeliverSubmit;
  cmd().job_up_tag.clear();
  Paused(true, false);
  std::weak_ptr<bool> alive = alive_;
  PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event("xdeliver")
      << "submitting to " << mail->recipients.size() << " recipients, "
      << mail->data.size() << " bytes";
  registry().submitter()->Submit(
      *std::move(mail), [this, alive](absl::Status s) {
        if (alive.expired()) return;  // the device is gone (sent all the same)
        Busy busy(this);
        if (job_ != Job::kXdeliverSubmit || cmd().xdeliver == nullptr) return;
        OnSubmitted(std::move(s));
      });
}

void DeviceDriver::OnSubmitted(absl::Status status) {
  if (!status.ok()) {
    PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event(
        "xdeliver.refused")
        << status.message();
    // The MTA's own words for the device; nothing was saved or flagged.
    FinishXdeliver(absl::StrCat("NO ", status.message()));
    return;
  }
  cmd().xdeliver->submitted = true;
  XdeliverAppend();
}

void DeviceDriver::XdeliverAppend() {
  XdeliverState& x = *cmd().xdeliver;
  if (x.request.save_to.empty()) {
    XdeliverFlag();
    return;
  }
  // LITERAL+ (RFC 7888) carries the copy in one go; Dovecot has it. Without
  // it there is no copy (the OK then has no APPENDUID, as §3.6 allows).
  bool literal_plus = false;
  for (const std::string& cap : store_capabilities()) {
    if (absl::EqualsIgnoreCase(cap, "LITERAL+")) literal_plus = true;
  }
  if (!literal_plus) {
    XdeliverFlag();
    return;
  }
  std::string command = "APPEND ";
  imap::AppendAstring(&command, x.request.save_to);
  absl::StrAppend(&command, " (\\Seen) {", x.sent.size(), "+}\r\n");
  command += x.sent;
  x.sent.clear();
  x.sent.shrink_to_fit();
  SendJob(Job::kXdeliverAppend, job_device_tag_, std::move(command));
}

void DeviceDriver::XdeliverFlag() {
  XdeliverState& x = *cmd().xdeliver;
  if (x.request.kind == mail::DeliverKind::kNew) {
    FinishXdeliver(x.appenduid.empty() ? "OK XDELIVER completed"
                                       : absl::StrCat("OK [", x.appenduid,
                                                      "] XDELIVER completed"));
    return;
  }
  SendJob(
      Job::kXdeliverFlag, job_device_tag_,
      absl::StrCat("UID STORE ", x.request.uid, " +FLAGS.SILENT (",
                   x.request.kind == mail::DeliverKind::kReply ? "\\Answered"
                                                               : "$Forwarded",
                   ")"));
}

void DeviceDriver::OnXdeliverJobDone(bool ok, absl::string_view rest) {
  XdeliverState* x = cmd().xdeliver.get();
  if (x == nullptr) {
    FinishCommand(rest);
    return;
  }
  switch (job_) {
    case Job::kXdeliverFetch:
      if (!ok || x->original.empty()) {
        FinishXdeliver(absl::StrCat("NO [NONEXISTENT] No message with UID ",
                                    x->request.uid, " in ", x->folder));
        return;
      }
      ComposeAndSubmit();
      return;
    case Job::kXdeliverAppend: {
      // "OK [APPENDUID <uidvalidity> <uid>] ..." (UIDPLUS); a failed copy
      // still leaves the message sent: OK without the code.
      const size_t at = rest.find("[APPENDUID ");
      if (ok && at != absl::string_view::npos) {
        const size_t end = rest.find(']', at);
        if (end != absl::string_view::npos) {
          x->appenduid = std::string(rest.substr(at + 1, end - at - 1));
        }
      }
      XdeliverFlag();
      return;
    }
    case Job::kXdeliverFlag:
      // Sent either way: a flag that could not be set is no reason for NO.
      FinishXdeliver(
          x->appenduid.empty()
              ? "OK XDELIVER completed"
              : absl::StrCat("OK [", x->appenduid, "] XDELIVER completed"));
      return;
    default:
      FinishCommand(rest);
      return;
  }
}

void DeviceDriver::FinishXdeliver(absl::string_view status_rest) {
  // The MTA's reply is the peer's text: no control characters reach the
  // device's status line.
  std::string rest(status_rest);
  for (char& c : rest) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  cmd().xdeliver.reset();
  FinishCommand(rest);
}

}  // namespace pimap::session
