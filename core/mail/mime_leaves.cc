// MIME leaves and transfer decoding (mime_leaves.h).
#include "core/mail/mime_leaves.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/convert/transfer_encoding.h"
#include "core/mail/header_fields.h"

namespace pimap::mail {

namespace {

// Where each delimiter line "--boundary" of `body` starts (at the body's
// start or after a line end) and whether it is the closing one.
struct Delimiter {
  size_t start;       // the CRLF before it (or the "--" at offset 0)
  size_t after_line;  // the first byte after the delimiter line
  bool closing;
};

std::vector<Delimiter> FindDelimiters(absl::string_view body,
                                      absl::string_view boundary) {
  std::vector<Delimiter> out;
  const std::string dash = absl::StrCat("--", boundary);
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t hit = body.find(dash, pos);
    if (hit == absl::string_view::npos) break;
    size_t start = hit;
    const bool at_line_start = hit == 0 || body[hit - 1] == '\n';
    if (!at_line_start) {
      pos = hit + 1;
      continue;
    }
    if (hit >= 2 && body[hit - 2] == '\r') {
      start = hit - 2;
    } else if (hit >= 1) {
      start = hit - 1;
    }
    size_t after = hit + dash.size();
    const bool closing = body.substr(after, 2) == "--";
    if (closing) after += 2;
    // Transport padding (blanks) up to the line end.
    while (after < body.size() && (body[after] == ' ' || body[after] == '\t')) {
      ++after;
    }
    if (after < body.size() && body[after] != '\r' && body[after] != '\n') {
      pos = hit + 1;  // "--boundaryX": a longer line, not ours
      continue;
    }
    if (body.substr(after, 2) == "\r\n") {
      after += 2;
    } else if (after < body.size()) {
      ++after;
    }
    out.push_back({start, after, closing});
    if (closing) break;
    pos = after;
  }
  return out;
}

void Collect(absl::string_view entity, int depth, bool top,
             std::vector<MimeLeaf>* out) {
  const EntitySplit split = SplitEntity(entity);
  const std::string content_type = FieldValue(split.header, "Content-Type");
  std::string media = MediaType(content_type);
  if (media.empty()) media = "text/plain";
  if (absl::StartsWith(media, "multipart/") && depth < kMaxMimeDepth) {
    const std::string boundary = Parameter(content_type, "boundary");
    if (!boundary.empty()) {
      const std::vector<Delimiter> d = FindDelimiters(split.body, boundary);
      if (d.size() >= 2 || (d.size() == 1 && !d[0].closing)) {
        for (size_t i = 0; i < d.size() && !d[i].closing; ++i) {
          const size_t begin = d[i].after_line;
          const size_t end =
              i + 1 < d.size() ? d[i + 1].start : split.body.size();
          if (end < begin) continue;
          Collect(split.body.substr(begin, end - begin), depth + 1, false, out);
        }
        return;
      }
    }
  }
  MimeLeaf leaf;
  leaf.entity = entity;
  leaf.header = split.header;
  leaf.body = split.body;
  leaf.media_type = std::move(media);
  leaf.charset = Parameter(content_type, "charset");
  leaf.encoding = absl::AsciiStrToLower(
      FieldValue(split.header, "Content-Transfer-Encoding"));
  leaf.attachment = MediaType(FieldValue(
                        split.header, "Content-Disposition")) == "attachment";
  leaf.top_level = top;
  out->push_back(std::move(leaf));
}

}  // namespace

std::vector<MimeLeaf> MimeLeaves(absl::string_view message) {
  std::vector<MimeLeaf> out;
  Collect(message, 0, true, &out);
  return out;
}

std::string DecodeBody(const MimeLeaf& leaf) {
  // One decoder for XDELIVER and XCONVERT; an encoding it does not know
  // leaves the bytes as they are.
  absl::StatusOr<std::string> decoded =
      convert::DecodeTransferEncoding(leaf.encoding, leaf.body);
  return decoded.ok() ? *std::move(decoded) : std::string(leaf.body);
}

}  // namespace pimap::mail
