// A new message's headline, its Subject and From as display text, which the
// Web Push wake-up of `--outband-payload full` shows; and how one is made
// from what a source gives (the store's MessageNew push, the watch's FETCH
// of the two header fields), within one bound whatever the source.
// Private: a headline is never logged.
#ifndef PIMAP_CORE_SESSION_HEADLINE_H_
#define PIMAP_CORE_SESSION_HEADLINE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace pimap::session {

struct MessageHeadline {
  std::string subject;  // UTF-8, no control characters, <= kMaxHeadlineBytes
  std::string from;     // the same
};

// Each field at most, cut at a character boundary: with both at the bound
// and every byte JSON-escaped the wake-up's body stays well below RFC 8291's
// 4096-byte record.
inline constexpr size_t kMaxHeadlineBytes = 256;

// From raw header values (RFC 2047 encoded-words decoded, unfolded, CR/LF and
// other controls stripped, cut; core/imap/header_text.h). `subject_decoded`:
// the source decoded the Subject already (Dovecot's push does; its "from" is
// the raw header), so it is not decoded twice. Null when both come out empty.
std::shared_ptr<const MessageHeadline> MakeHeadline(
    absl::string_view raw_subject, absl::string_view raw_from,
    bool subject_decoded = false);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_HEADLINE_H_
