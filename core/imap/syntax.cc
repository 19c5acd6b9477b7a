// RFC 3501 atoms, flags and mailbox names checked outside the parser.
#include "core/imap/syntax.h"

#include "absl/strings/match.h"

namespace pimap::imap {

namespace {

bool IsAtomChar(unsigned char c) {
  if (c <= 0x20 || c >= 0x7f) return false;  // CTL, SP, 8-bit
  switch (c) {
    case '(':
    case ')':
    case '{':
    case '%':
    case '*':
    case '"':
    case '\\':
    case ']':
      return false;
    default:
      return true;
  }
}

}  // namespace

bool IsAtom(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsAtomChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsSystemFlag(absl::string_view s) {
  for (absl::string_view f : {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                              "\\Draft", "\\Recent"}) {
    if (absl::EqualsIgnoreCase(s, f)) return true;
  }
  return false;
}

bool IsFlag(absl::string_view s) { return IsSystemFlag(s) || IsAtom(s); }

bool IsUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;                               // continuation bytes
    unsigned char lo = 0x80, hi = 0xbf;  // range of the first continuation
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // past U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i) {
      if (p[i] < 0x80 || p[i] > 0xbf) return false;
    }
    p += n + 1;
  }
  return true;
}

bool IsMailboxName(absl::string_view s, size_t max_bytes) {
  if (s.empty() || s.size() > max_bytes) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
  }
  return IsUtf8(s);
}

void AppendFlagList(std::string* out, const std::vector<std::string>& flags) {
  bool first = true;
  for (const std::string& f : flags) {
    if (!IsFlag(f)) continue;
    if (!first) out->push_back(' ');
    out->append(f);
    first = false;
  }
}

}  // namespace pimap::imap
