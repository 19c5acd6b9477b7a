// XDELIVER's steps (xdeliver_run.h): what comes after what, and the store
// commands and answers they make.
#include "core/session/xdeliver_run.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/imap/writer.h"
#include "core/session/store_text.h"

namespace pimap::session {

std::string XdeliverSender(absl::string_view user, absl::string_view domain) {
  if (absl::StrContains(user, '@')) return std::string(user);
  if (domain.empty()) return "";
  return absl::StrCat(user, "@", domain);
}

absl::StatusOr<std::unique_ptr<XdeliverRun>> XdeliverRun::Start(
    const imap::Command& command, XdeliverContext context) {
  absl::StatusOr<mail::XdeliverRequest> request = mail::ParseXdeliver(command);
  if (!request.ok()) return request.status();
  if (context.sender.empty()) {
    return absl::FailedPreconditionError(
        "No mail address for this login (--smtp-sender-domain)");
  }
  std::unique_ptr<XdeliverRun> run(new XdeliverRun());
  run->context_ = std::move(context);
  run->request_ = *std::move(request);
  if (run->context_.store_folder) {
    // Both name folders of the store: a virtual folder's is its backing one.
    mail::XdeliverRequest& r = run->request_;
    if (!r.mailbox.empty()) r.mailbox = run->context_.store_folder(r.mailbox);
    if (!r.save_to.empty()) r.save_to = run->context_.store_folder(r.save_to);
    run->context_.store_folder = nullptr;  // its session may go before the run
  }
  if (run->request_.kind == mail::DeliverKind::kNew) {
    run->Compose();
    return run;
  }
  std::string& selected = run->context_.selected_folder;
  if (absl::EqualsIgnoreCase(selected, "INBOX")) selected = "INBOX";
  std::string folder =
      run->request_.mailbox.empty() ? selected : run->request_.mailbox;
  if (absl::EqualsIgnoreCase(folder, "INBOX")) folder = "INBOX";
  if (folder.empty()) {
    return absl::InvalidArgumentError(
        "XDELIVER R|F: no mailbox selected; name the original's");
  }
  if (!run->context_.other_folders && folder != selected) {
    return absl::FailedPreconditionError(
        "The original must be in the selected mailbox on this gateway");
  }
  run->folder_ = std::move(folder);
  run->step_ = Step::kFetch;
  return run;
}

std::string XdeliverRun::StoreCommand() {
  switch (step_) {
    case Step::kFetch:
      return absl::StrCat("UID FETCH ", request_.uid, " (BODY.PEEK[])");
    case Step::kAppend: {
      std::string command = "APPEND ";
      imap::AppendAstring(&command, request_.save_to);
      absl::StrAppend(&command, " (\\Seen) {", sent_.size(), "+}\r\n");
      command += sent_;
      sent_.clear();
      sent_.shrink_to_fit();
      return command;
    }
    case Step::kFlag:
      return absl::StrCat(
          "UID STORE ", request_.uid,
          context_.silent_flag ? " +FLAGS.SILENT (" : " +FLAGS (",
          request_.kind == mail::DeliverKind::kReply ? "\\Answered"
                                                     : "$Forwarded",
          ")");
    default:
      return "";
  }
}

bool XdeliverRun::TakeOriginal(absl::string_view response) {
  if (step_ != Step::kFetch) return false;
  const size_t at = response.find("BODY[] {");
  if (at == absl::string_view::npos) return false;
  const size_t close = response.find('}', at);
  size_t size = 0;
  if (close == absl::string_view::npos ||
      !absl::SimpleAtoi(response.substr(at + 8, close - at - 8), &size) ||
      response.substr(close + 1, 2) != "\r\n") {
    return false;
  }
  const absl::string_view head = response.substr(0, at);
  const size_t begin = close + 3;
  if (response.size() - begin < size) return false;  // cut: past the bound
  const absl::string_view tail = response.substr(begin + size);
  // The UID is before or after the literal; only this message will do (not
  // someone's flag change passing by).
  std::optional<uint32_t> uid = FetchUid(absl::StrCat(head, tail));
  if (!uid.has_value() || *uid != request_.uid) return false;
  original_.assign(response.data() + begin, size);
  return true;
}

void XdeliverRun::OnStoreDone(bool ok, absl::string_view rest) {
  switch (step_) {
    case Step::kFetch:
      if (original_.empty() && dropped_) {
        Finish("NO [LIMIT] The original is larger than this gateway takes");
        return;
      }
      if (!ok || original_.empty()) {
        Finish(absl::StrCat("NO [NONEXISTENT] No message with UID ",
                            request_.uid, " in ", folder_));
        return;
      }
      Compose();
      return;
    case Step::kAppend: {
      // "OK [APPENDUID <uidvalidity> <uid>] ..." (UIDPLUS); a failed copy
      // still leaves the message sent: OK without the code.
      const size_t at = rest.find("[APPENDUID ");
      if (ok && at != absl::string_view::npos) {
        const size_t end = rest.find(']', at);
        if (end != absl::string_view::npos) {
          appenduid_ = std::string(rest.substr(at + 1, end - at - 1));
        }
      }
      AfterAppend();
      return;
    }
    case Step::kFlag:
      // Sent either way: a flag that could not be set is no reason for NO.
      Finish(appenduid_.empty()
                 ? "OK XDELIVER completed"
                 : absl::StrCat("OK [", appenduid_, "] XDELIVER completed"));
      return;
    default:
      return;
  }
}

bool XdeliverRun::StepElsewhere() const {
  switch (step_) {
    case Step::kFetch:
      return elsewhere();
    case Step::kFlag:
      return elsewhere() ||
             (context_.selected_read_only && context_.other_folders);
    default:
      return false;
  }
}

void XdeliverRun::OnResponseDropped() {
  if (step_ == Step::kFetch) dropped_ = true;
}

void XdeliverRun::OnStoreUnavailable(absl::string_view why) {
  if (step_ == Step::kFetch) {
    Finish(absl::StrCat("NO [UNAVAILABLE] ", why));
    return;
  }
  OnStoreDone(false, "");  // after the MTA's 250: sent all the same
}

void XdeliverRun::Compose() {
  mail::ComposeRequest compose;
  compose.kind = request_.kind;
  compose.attach = request_.attach;
  compose.message = request_.message;
  compose.original = original_;
  compose.sender = context_.sender;
  compose.boundary_seed = context_.boundary_seed;
  absl::StatusOr<mail::OutgoingMail> mail = mail::ComposeOutgoing(compose);
  request_.message.clear();
  request_.message.shrink_to_fit();
  original_.clear();
  original_.shrink_to_fit();
  if (!mail.ok()) {
    Finish(absl::StrCat("NO ", mail.status().message()));
    return;
  }
  mail_ = *std::move(mail);
  if (!request_.save_to.empty()) sent_ = mail_.data;
  step_ = Step::kSubmit;
}

mail::OutgoingMail XdeliverRun::TakeMail() { return std::move(mail_); }

void XdeliverRun::OnSubmitted(const absl::Status& status) {
  if (step_ != Step::kSubmit) return;
  if (!status.ok()) {
    // The MTA's own words for the device; nothing was saved or flagged.
    Finish(absl::StrCat("NO ", status.message()));
    return;
  }
  submitted_ = true;
  // LITERAL+ (RFC 7888) carries the copy in one go; Dovecot has it. Without
  // it there is no copy (the OK then has no APPENDUID, as §3.6 allows).
  if (!request_.save_to.empty() && context_.literal_plus) {
    step_ = Step::kAppend;
    return;
  }
  sent_.clear();
  AfterAppend();
}

void XdeliverRun::AfterAppend() {
  if (request_.kind != mail::DeliverKind::kNew) {
    step_ = Step::kFlag;
    return;
  }
  Finish(appenduid_.empty()
             ? "OK XDELIVER completed"
             : absl::StrCat("OK [", appenduid_, "] XDELIVER completed"));
}

void XdeliverRun::Finish(absl::string_view rest) {
  // The MTA's reply is the peer's text: no control characters reach the
  // device's status line.
  answer_.assign(rest.data(), rest.size());
  for (char& c : answer_) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  step_ = Step::kDone;
}

}  // namespace pimap::session
