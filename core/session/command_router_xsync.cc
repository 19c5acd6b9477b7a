// XSYNC's run (xsync.h, docs/xsync.md): the command group's steps, one after
// the other, each run exactly as XZIP runs its inner command (routed like an
// unwrapped command, relayed or local, with the session's output captured,
// bounded). At each step's end its untagged responses go to the device as
// they are, its tagged completion is kept back: OK runs the next step; NO or
// BAD (or a UIDVALIDITY that is not the client's) ends the group with one
// answer that names the step. Reading the device waits from XSYNC's end to
// its answer, as for XZIP.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/imap/writer.h"
#include "core/session/command_router.h"

namespace pimap::session {

void CommandRouter::RunXsync(const imap::Command& command) {
  std::string refusal;
  absl::StatusOr<XsyncRequest> request = ParseXsync(command.args);
  if (!request.ok()) {
    imap::AppendTaggedStatus(&refusal, command.tag, "BAD", "",
                             request.status().message());
  } else if (!WritesThroughOutput() || xzip_ != nullptr || xsync_ != nullptr) {
    imap::AppendTaggedStatus(&refusal, command.tag, "NO", "CANNOT",
                             "XSYNC is not available here");
  }
  if (!refusal.empty()) {
    Write(std::move(refusal));
    return;
  }
  xsync_ = std::make_unique<XsyncRun>();
  xsync_->tag = command.tag;
  // The plan without QRESYNC: a P-IMAP session does not offer it, and a
  // regular session's client has not necessarily ENABLEd it (RFC 7162 3.2.3).
  xsync_->plan = PlanXsync(*request, command.tag, /*qresync=*/false);
  xsync_->request = *std::move(request);
  StartXsyncStep();
}

void CommandRouter::StartXsyncStep() {
  const XsyncStep& step = xsync_->plan[xsync_->next];
  absl::StatusOr<imap::CommandHead> head = imap::ParseCommandHead(step.line);
  XzipInner inner;
  inner.tag = step.tag;
  inner.name = head.ok() ? head->name : "";
  xzip_ = std::make_unique<Xzip>(xsync_->tag, std::move(inner));
  xzip_->AddLine(step.line, nullptr);
  RunXzip();
}

namespace {

// Splits the step's tagged completion (the last line that starts with its
// tag) from the rest of what it wrote. False when there is none.
bool SplitCompletion(std::string* captured, absl::string_view tag,
                     std::string* completion) {
  const std::string prefix = absl::StrCat(tag, " ");
  size_t at = absl::StartsWith(*captured, prefix) ? 0 : std::string::npos;
  const size_t later = captured->rfind(absl::StrCat("\r\n", prefix));
  if (later != std::string::npos) at = later + 2;
  if (at == std::string::npos) return false;
  size_t end = captured->find("\r\n", at);
  end = end == std::string::npos ? captured->size() : end + 2;
  completion->assign(*captured, at, end - at);
  captured->erase(at, end - at);
  return true;
}

}  // namespace

void CommandRouter::FinishXsyncStep(bool resume) {
  Busy busy(this);
  const std::unique_ptr<Xzip> ran = std::move(xzip_);
  XsyncRun& run = *xsync_;
  run.held_input |= ran->held_input();
  if (output_ == nullptr) {
    xsync_.reset();
    return;
  }
  const XsyncStep& step = run.plan[run.next];
  std::string answer;  // the group's, when it ends at this step
  std::string data;
  std::string completion;
  if (ran->overflowed()) {
    answer = XsyncFailed(
        run.tag, run.next, step, "NO",
        "[LIMIT] The step's answer is too large (run the steps one by one)");
  } else {
    data = ran->TakeCaptured();
    // Written in one piece: as for an XZIP's answer, well under the bound the
    // binding enforces (a quarter is left for what is queued).
    const DriverServices* shard = services();
    const size_t out_bound =
        shard != nullptr ? shard->max_output_bytes : Xzip::kMinCaptureBytes;
    if (data.size() > out_bound - out_bound / 4) {
      data.clear();
      answer = XsyncFailed(
          run.tag, run.next, step, "NO",
          "[LIMIT] The step's answer is too large (run the steps one by one)");
    } else if (!SplitCompletion(&data, step.tag, &completion)) {
      answer = XsyncFailed(run.tag, run.next, step, "NO",
                           "[SERVERBUG] The step did not complete");
    }
  }
  if (answer.empty()) {
    // "tag.n OK [code] text": the status and what follows it.
    absl::string_view rest = completion;
    rest.remove_prefix(step.tag.size() + 1);
    rest = absl::StripSuffix(rest, "\r\n");
    const absl::string_view status = rest.substr(0, rest.find(' '));
    rest.remove_prefix(std::min(rest.size(), status.size() + 1));
    if (!absl::EqualsIgnoreCase(status, "OK")) {
      answer = XsyncFailed(run.tag, run.next, step, status, rest);
    } else if (run.next == 0 && run.request.uidvalidity != 0) {
      const uint32_t uidvalidity = UidValidityIn(data);
      if (uidvalidity != 0 && uidvalidity != run.request.uidvalidity) {
        answer = XsyncUidValidityChanged(run.tag, uidvalidity);
      }
    }
  }
  // The step's data responses, already as the session writes them (terse
  // or not): the captured output passed output()'s rewriting.
  if (!data.empty()) output_->WriteResponse(std::move(data));
  if (answer.empty() && ++run.next < run.plan.size()) {
    StartXsyncStep();
    return;
  }
  if (answer.empty()) answer = XsyncOk(run.tag, run.plan.size());
  const bool held = run.held_input;
  xsync_.reset();
  if (output_ == nullptr) return;
  output_->WriteResponse(TerseText(std::move(answer)));
  if (held && waits_ == 0 && !EngineHoldsInput() && output_ != nullptr) {
    output_->SetCommandRunning(false, resume);
  }
}

}  // namespace pimap::session
