// ClassifyResponse (response_class.h): what a store response's first line
// means for the device, given the running job.
#include "core/session/response_class.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "core/session/store_text.h"

namespace pimap::session {

bool IsInternalJob(DeviceJob job) {
  using J = DeviceJob;
  return job == J::kEnable || job == J::kResumeSelect ||
         job == J::kViewSearch || job == J::kSelectSearch ||
         job == J::kRebuild || job == J::kRebuildNew || job == J::kEvalView ||
         job == J::kEvalNotify || job == J::kEvalSync || job == J::kOwnNew ||
         job == J::kCloseExpunge || job == J::kFlagsFetch ||
         job == J::kAcquire || job == J::kLinkEnable || job == J::kLinkSelect ||
         job == J::kLinkSync || job == J::kStatusExamine ||
         job == J::kStatusCount || job == J::kStatusUnseen ||
         job == J::kXdeliverFetch || job == J::kXdeliverSubmit ||
         job == J::kXdeliverAppend || job == J::kXdeliverFlag ||
         job == J::kConvert;
}

namespace {

using J = DeviceJob;

// The numbered responses (EXISTS, RECENT, EXPUNGE, FETCH).
void ClassifyNumbered(const ResponseContext& c, const Untagged& u,
                      absl::string_view line, ResponseClass* r) {
  const bool own_news = c.has_session && c.unwatched && c.folder_selected;
  // A job that fetches a message's body for the gateway (XDELIVER's
  // original, XCONVERT's part): that FETCH is its answer; any other FETCH
  // meanwhile is news, handled as while idling (journaled when it is of the
  // device's folder), never taken for the answer nor dropped.
  const bool fetches_body = c.job == J::kXdeliverFetch || c.job == J::kConvert;
  if (u.name == "FETCH" && fetches_body && absl::StrContains(line, "BODY[")) {
    r->action = RespAction::kCollect;
  } else if (u.name == "FETCH" && c.job == J::kRebuild) {
    r->action = RespAction::kCollect;  // flag changes the device missed
  } else if (u.name == "FETCH" &&
             (c.job == J::kIdle || fetches_body || IsMaintenanceJob(c.job))) {
    // A flag change while idling (or while we ask the store for verdicts in
    // the middle of an IDLE) goes through the journal and the filters; so do
    // the flags we fetch to resolve a pushed change.
    if (own_news || c.job == J::kFlagsFetch) r->action = RespAction::kCollect;
  } else if (u.name == "EXISTS" && own_news) {
    r->extra = ResponseClass::Extra::kOwnNew;
  } else if (u.name == "FETCH" && !IsInternalJob(c.job) && c.has_session) {
    r->extra = ResponseClass::Extra::kRenumberFetch;
  }
  // EXISTS/RECENT/EXPUNGE and FETCH outside the view: the journal, fed by the
  // user's watch, is the one source of such news for the device.
}

// "* OK/NO/BAD [code] text": the codes a SELECT reports.
void ClassifyStatus(const ResponseContext& c, absl::string_view line,
                    ResponseClass* r) {
  uint32_t uidvalidity = 0;
  size_t at = line.find("[UIDVALIDITY ");
  // A folder the gateway selects for itself (a borrowed link's SELECT, a
  // filtered STATUS's EXAMINE) is not the device's view.
  if (at != absl::string_view::npos &&
      absl::SimpleAtoi(line.substr(at + 13, line.find(']', at) - at - 13),
                       &uidvalidity) &&
      c.job != J::kLinkSelect && c.job != J::kStatusExamine) {
    r->uidvalidity = uidvalidity;
  }
  at = line.find("[HIGHESTMODSEQ ");
  if (at != absl::string_view::npos &&
      (c.job == J::kSelect || c.job == J::kResumeSelect)) {
    uint64_t modseq = 0;
    absl::SimpleAtoi(line.substr(at + 15, line.find(']', at) - at - 15),
                     &modseq);
    r->select_modseq = modseq;
  }
  // MODSEQ bookkeeping of the store connection is not the device's news (the
  // device did not ENABLE CONDSTORE here), except as SELECT reports it.
  const bool modseq_noise = absl::StrContains(line, "[HIGHESTMODSEQ ") &&
                            (c.job != J::kSelect || !c.device_condstore);
  // [CLOSED] (RFC 7162 §3.2.11) says the store connection's previous mailbox
  // is closed: the gateway's QRESYNC bookkeeping (a borrowed link may have
  // had another folder selected than the device ever had), never sent to a
  // device, which cannot enable QRESYNC in a P-IMAP session.
  const bool closed_code = absl::StrContains(line, "[CLOSED]");
  if (!IsInternalJob(c.job) && !modseq_noise && !closed_code) {
    r->action = RespAction::kForward;
  }
}

}  // namespace

ResponseClass ClassifyResponse(const ResponseContext& c,
                               absl::string_view line) {
  ResponseClass r;
  const bool internal = IsInternalJob(c.job);
  if (absl::StartsWith(line, "+")) {
    if (c.job == J::kIdle) r.extra = ResponseClass::Extra::kIdleContinuation;
    return r;
  }
  if (!absl::StartsWith(line, "* ")) {
    // Our own job's completion is collected; a device tag (a streamed APPEND,
    // LOGOUT) goes out as it is.
    absl::string_view tag = line.substr(0, line.find(' '));
    r.action =
        tag == c.job_up_tag ? RespAction::kCollect : RespAction::kForward;
    return r;
  }
  const Untagged u = ParseUntagged(line);
  if (u.numbered) {
    ClassifyNumbered(c, u, line, &r);
  } else if (u.name == "VANISHED") {
    // Expunges by UID: the device's own command's (it asked to expunge), or
    // news of a folder the watch does not journal; a rebuild's are what the
    // device missed. EARLIER ones are old news, except what a borrowed link's
    // SELECT (QRESYNC) says changed since the device's view.
    const bool earlier = absl::StrContains(line, "(EARLIER)");
    if (c.job == J::kRebuild ||
        ((!earlier || c.job == J::kLinkSelect) &&
         (!internal || IsMaintenanceJob(c.job)) &&
         (c.job_may_expunge || (c.has_session && c.unwatched)))) {
      r.action = RespAction::kCollect;
    }
  } else if (u.name == "STATUS" && c.job == J::kStatus) {
    r.action = RespAction::kCollect;
  } else if (u.name == "SEARCH" || u.name == "SORT") {
    if (c.job == J::kSearch) r.action = RespAction::kCollect;
  } else if (u.name == "ESEARCH") {
    r.action = (c.job == J::kViewSearch || c.job == J::kSelectSearch ||
                c.job == J::kRebuildNew || c.job == J::kEvalView ||
                c.job == J::kEvalNotify || c.job == J::kOwnNew ||
                c.job == J::kStatusCount || c.job == J::kStatusUnseen)
                   ? RespAction::kCollect
                   : RespAction::kForward;
  } else if (u.name == "OK" || u.name == "NO" || u.name == "BAD") {
    ClassifyStatus(c, line, &r);
  } else if (u.name == "ENABLED") {
    // ours
  } else if (!internal) {
    r.action = RespAction::kForward;
  }
  return r;
}

}  // namespace pimap::session
