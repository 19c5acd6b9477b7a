// XDELIVER's composition (compose.h): envelope, Bcc removal, the quoted
// original and its attachments.
#include "core/mail/compose.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/convert/html_text.h"
#include "core/mail/address_list.h"
#include "core/mail/header_fields.h"
#include "core/mail/mime_leaves.h"

namespace pimap::mail {

namespace {

bool Has8Bit(absl::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) > 127;
  });
}

bool HasLongLine(absl::string_view s) {
  size_t run = 0;
  for (char c : s) {
    run = c == '\n' ? 0 : run + 1;
    if (run > 998) return true;
  }
  return false;
}

bool IsMimeField(absl::string_view name) {
  return absl::StartsWithIgnoreCase(name, "Content-") ||
         absl::EqualsIgnoreCase(name, "MIME-Version");
}

// The first text part of the original: text/plain, else text/html as text.
// Returns whether one was found; *leaf_index the leaf it came from.
bool OriginalText(const std::vector<MimeLeaf>& leaves, std::string* text,
                  std::string* charset, size_t* leaf_index) {
  for (const char* type : {"text/plain", "text/html"}) {
    for (size_t i = 0; i < leaves.size(); ++i) {
      const MimeLeaf& leaf = leaves[i];
      if (leaf.attachment || leaf.media_type != type) continue;
      std::string decoded = DecodeBody(leaf);
      if (leaf.media_type == "text/html") {
        // XCONVERT's renderer; bounded by what it reads (a text rendering is
        // no longer than its HTML but for line breaks and entities).
        absl::StatusOr<std::string> plain =
            convert::HtmlToText(decoded, 2 * decoded.size() + 1024);
        if (plain.ok()) decoded = *std::move(plain);
      }
      *text = std::move(decoded);
      *charset = leaf.charset;
      *leaf_index = i;
      return true;
    }
  }
  return false;
}

// "> " before each line of `text` (CRLF line ends out).
std::string Quote(absl::string_view text) {
  std::string normalized = NormalizeCrlf(text);
  absl::string_view t(normalized);
  while (absl::EndsWith(t, "\r\n")) t.remove_suffix(2);
  std::string out;
  for (absl::string_view line : absl::StrSplit(t, "\r\n")) {
    absl::StrAppend(&out, absl::StartsWith(line, ">") ? ">" : "> ", line,
                    "\r\n");
  }
  return out;
}

// The line(s) that introduce the quoted original.
std::string Introduction(DeliverKind kind, absl::string_view original_header) {
  const std::string from = FieldValue(original_header, "From");
  const std::string date = FieldValue(original_header, "Date");
  if (kind == DeliverKind::kReply) {
    if (date.empty()) return absl::StrCat(from, " wrote:\r\n");
    return absl::StrCat("On ", date, ", ", from, " wrote:\r\n");
  }
  std::string out = "-------- Forwarded Message --------\r\n";
  for (const char* name : {"Subject", "Date", "From", "To", "Cc"}) {
    const std::string value = FieldValue(original_header, name);
    if (!value.empty()) absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "\r\n");
  return out;
}

// A text/plain entity holding `text` (CRLF), its encoding chosen so that it
// travels over any SMTP (7bit or quoted-printable).
std::string TextEntity(absl::string_view text, absl::string_view charset) {
  const bool qp = Has8Bit(text) || HasLongLine(text);
  std::string out = absl::StrCat(
      "Content-Type: text/plain; charset=",
      charset.empty() ? (qp ? "utf-8" : "us-ascii") : charset, "\r\n",
      "Content-Transfer-Encoding: ", qp ? "quoted-printable" : "7bit",
      "\r\n\r\n");
  absl::StrAppend(&out, qp ? EncodeQuotedPrintable(text) : std::string(text));
  return out;
}

// A leaf as a part of our multipart: its entity as is, but for the message
// itself being the leaf (its header then carries From, To...: only the MIME
// fields go along).
std::string LeafEntity(const MimeLeaf& leaf) {
  if (!leaf.top_level) return std::string(leaf.entity);
  std::string out;
  for (const HeaderField& f : HeaderFields(leaf.header)) {
    if (IsMimeField(f.name) &&
        !absl::EqualsIgnoreCase(f.name, "MIME-Version")) {
      absl::StrAppend(&out, f.raw);
    }
  }
  absl::StrAppend(&out, "\r\n", leaf.body);
  return out;
}

// A boundary that none of `parts` contains.
std::string PickBoundary(absl::string_view seed,
                         const std::vector<std::string>& parts) {
  for (int n = 0;; ++n) {
    std::string b = absl::StrCat("=_pimap_", seed, "_", n);
    if (std::none_of(parts.begin(), parts.end(), [&](const std::string& p) {
          return absl::StrContains(p, b);
        })) {
      return b;
    }
  }
}

}  // namespace

std::string NormalizeCrlf(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EncodeQuotedPrintable(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t column = 0;
  auto put = [&](absl::string_view piece) {
    if (column + piece.size() > 75) {
      out += "=\r\n";
      column = 0;
    }
    out.append(piece.data(), piece.size());
    column += piece.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "\r\n";
      column = 0;
      ++i;
      continue;
    }
    const bool line_end_next = i + 1 == text.size() || text[i + 1] == '\r';
    const bool literal = (c >= 33 && c <= 126 && c != '=') ||
                         ((c == ' ' || c == '\t') && !line_end_next);
    if (literal) {
      const char ch = static_cast<char>(c);
      put(absl::string_view(&ch, 1));
    } else {
      const char enc[3] = {'=', kHex[c >> 4], kHex[c & 15]};
      put(absl::string_view(enc, 3));
    }
  }
  return out;
}

absl::StatusOr<OutgoingMail> ComposeOutgoing(const ComposeRequest& request) {
  const std::string message = NormalizeCrlf(request.message);
  const EntitySplit split = SplitEntity(message);
  if (split.header.empty() || HeaderFields(split.header).empty()) {
    return absl::InvalidArgumentError("The message has no header");
  }
  OutgoingMail mail;
  mail.mail_from = request.sender;

  // The sender rule: a From: names exactly the user's address.
  const std::vector<std::string> froms = FieldValues(split.header, "From");
  if (froms.size() > 1) {
    return absl::InvalidArgumentError("More than one From: field");
  }
  if (!froms.empty()) {
    absl::StatusOr<std::vector<std::string>> from = AddrSpecs(froms[0]);
    if (!from.ok()) return from.status();
    if (from->size() != 1 || !SameAddress((*from)[0], request.sender)) {
      return absl::PermissionDeniedError(
          absl::StrCat("From: must be ", request.sender));
    }
  }

  // Recipients: To, Cc and Bcc, each once (case-insensitively), refused as
  // soon as there are too many: a device controls the list, and this runs on
  // the shard's thread.
  absl::flat_hash_set<std::string> seen;
  for (const char* name : {"To", "Cc", "Bcc"}) {
    for (const std::string& value : FieldValues(split.header, name)) {
      absl::StatusOr<std::vector<std::string>> addrs = AddrSpecs(value);
      if (!addrs.ok()) return addrs.status();
      for (std::string& a : *addrs) {
        if (!seen.insert(absl::AsciiStrToLower(a)).second) continue;
        if (mail.recipients.size() == kMaxRecipients) {
          return absl::InvalidArgumentError(
              absl::StrCat("More than ", kMaxRecipients, " recipients"));
        }
        mail.recipients.push_back(std::move(a));
      }
    }
  }
  if (mail.recipients.empty()) {
    return absl::InvalidArgumentError("No recipient (To, Cc or Bcc)");
  }

  const bool restructure = request.kind != DeliverKind::kNew;
  std::string header;
  if (froms.empty())
    absl::StrAppend(&header, "From: <", request.sender, ">\r\n");
  for (const HeaderField& f : HeaderFields(split.header)) {
    if (absl::EqualsIgnoreCase(f.name, "Bcc")) continue;
    if (restructure && IsMimeField(f.name)) continue;
    absl::StrAppend(&header, f.raw);
  }
  if (!restructure) {
    mail.data = absl::StrCat(header, "\r\n", split.body);
    return mail;
  }

  // R/F: the device's text, then the original's first text part quoted.
  const std::vector<MimeLeaf> original = MimeLeaves(request.original);
  const EntitySplit original_split = SplitEntity(request.original);
  std::string quoted_text, original_charset;
  size_t text_leaf = SIZE_MAX;
  if (OriginalText(original, &quoted_text, &original_charset, &text_leaf)) {
    quoted_text = absl::StrCat(
        Introduction(request.kind, original_split.header), Quote(quoted_text));
  } else {
    quoted_text = Introduction(request.kind, original_split.header);
  }

  std::vector<std::string> parts;
  const std::vector<MimeLeaf> own = MimeLeaves(message);
  if (own.size() == 1 && absl::StartsWith(own[0].media_type, "text/plain")) {
    // One text: the quote goes into it.
    std::string text = NormalizeCrlf(DecodeBody(own[0]));
    if (!text.empty() && !absl::EndsWith(text, "\r\n")) text += "\r\n";
    const bool own_8bit = Has8Bit(text);
    std::string charset = own[0].charset;
    if (!own_8bit && Has8Bit(quoted_text) && !original_charset.empty()) {
      charset = original_charset;
    }
    parts.push_back(
        TextEntity(absl::StrCat(text, "\r\n", quoted_text), charset));
  } else {
    // The device's own structure stays whole, as the first part; the quote
    // follows as a text part of its own.
    std::string entity;
    for (const HeaderField& f : HeaderFields(split.header)) {
      if (IsMimeField(f.name) &&
          !absl::EqualsIgnoreCase(f.name, "MIME-Version")) {
        absl::StrAppend(&entity, f.raw);
      }
    }
    absl::StrAppend(&entity, "\r\n", split.body);
    parts.push_back(std::move(entity));
    parts.push_back(TextEntity(quoted_text, original_charset));
  }
  if (request.attach) {
    for (size_t i = 0; i < original.size(); ++i) {
      const MimeLeaf& leaf = original[i];
      if (i == text_leaf) continue;
      if (absl::StartsWith(leaf.media_type, "text/") && !leaf.attachment) {
        continue;  // an alternative of the text (text/html), not attached
      }
      parts.push_back(LeafEntity(leaf));
    }
  }

  absl::StrAppend(&header, "MIME-Version: 1.0\r\n");
  if (parts.size() == 1) {
    mail.data = absl::StrCat(header, parts[0]);
    return mail;
  }
  const std::string boundary = PickBoundary(request.boundary_seed, parts);
  std::string body;
  for (const std::string& part : parts) {
    // The line end before the next delimiter belongs to the delimiter (RFC
    // 2046 §5.1.1): each part, attachments above all, keeps its bytes.
    absl::StrAppend(&body, "--", boundary, "\r\n", part, "\r\n");
  }
  absl::StrAppend(&body, "--", boundary, "--\r\n");
  mail.data = absl::StrCat(header, "Content-Type: multipart/mixed; boundary=\"",
                           boundary, "\"\r\n\r\n", body);
  return mail;
}

}  // namespace pimap::mail
