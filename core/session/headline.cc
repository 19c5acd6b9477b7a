// MakeHeadline (headline.h).
#include "core/session/headline.h"

#include "core/imap/header_text.h"

namespace pimap::session {

std::shared_ptr<const MessageHeadline> MakeHeadline(
    absl::string_view raw_subject, absl::string_view raw_from,
    bool subject_decoded) {
  auto headline = std::make_shared<MessageHeadline>();
  headline->subject = imap::HeaderDisplayText(raw_subject, kMaxHeadlineBytes,
                                              /*decode=*/!subject_decoded);
  headline->from = imap::HeaderDisplayText(raw_from, kMaxHeadlineBytes);
  if (headline->subject.empty() && headline->from.empty()) return nullptr;
  return headline;
}

}  // namespace pimap::session
