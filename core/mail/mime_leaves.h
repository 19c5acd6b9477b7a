// The leaf entities of a MIME message (RFC 2045/2046) in document order, each
// as the exact bytes it has inside the message (header and body), so that
// XDELIVER can copy an original's attachments byte for byte and find its
// first text part. multipart/* is descended (to a bounded depth); anything
// else, message/rfc822 included, is a leaf. Also the transfer decoding of a
// leaf's body (quoted-printable, base64) for quoting its text.
#ifndef PIMAP_CORE_MAIL_MIME_LEAVES_H_
#define PIMAP_CORE_MAIL_MIME_LEAVES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pimap::mail {

struct MimeLeaf {
  absl::string_view entity;  // header + blank line + body, as in the message
  absl::string_view header;
  absl::string_view body;
  std::string media_type;   // lower-cased; "text/plain" when none is given
  std::string charset;      // as given (empty: none)
  std::string encoding;     // Content-Transfer-Encoding, lower-cased
  bool attachment = false;  // Content-Disposition: attachment
  bool top_level = false;   // the message itself is this leaf (no multipart)
};

// Multipart nesting followed at most this deep; deeper parts are leaves.
inline constexpr int kMaxMimeDepth = 16;

// The leaves of `message`. A multipart without its boundary, or whose
// boundary never occurs, is one leaf (never an error: the original is
// whatever the store holds).
std::vector<MimeLeaf> MimeLeaves(absl::string_view message);

// A leaf's body with its transfer encoding undone (7bit/8bit/binary as is).
std::string DecodeBody(const MimeLeaf& leaf);

}  // namespace pimap::mail

#endif  // PIMAP_CORE_MAIL_MIME_LEAVES_H_
