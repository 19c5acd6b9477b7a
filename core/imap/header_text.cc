// Header field values as display text (header_text.h): field lookup,
// unfolding, RFC 2047 decoding, clean-up and the UTF-8 cut.
#include "core/imap/header_text.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace pimap::imap {

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// The length of the UTF-8 sequence at the start of `s`, or 0 if it is not a
// well-formed one (overlong forms, surrogates and values past U+10FFFF are
// not; RFC 3629).
size_t Utf8Length(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

void AppendLatin1(std::string* out, absl::string_view bytes) {
  for (char ch : bytes) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out->push_back(ch);
    } else {
      out->push_back(static_cast<char>(0xC0 | (c >> 6)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 2047 §4.2 "Q": '_' is a space, "=XX" a byte.
std::optional<std::string> DecodeQ(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = HexValue(text[i + 1]), lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// One encoded-word at the start of `s`: its length and decoded UTF-8, or
// nullopt if there is none there or it cannot be decoded.
std::optional<std::string> EncodedWord(absl::string_view s, size_t* length) {
  if (!absl::StartsWith(s, "=?")) return std::nullopt;
  // RFC 2047 §2 allows 75 characters; longer ones are tolerated up to a
  // bound that keeps a value full of "=?" linear to scan.
  constexpr size_t kMaxWordBytes = 1024;
  s = s.substr(0, kMaxWordBytes);
  const size_t q1 = s.find('?', 2);
  if (q1 == absl::string_view::npos || q1 + 2 >= s.size() || s[q1 + 2] != '?') {
    return std::nullopt;
  }
  const size_t end = s.find("?=", q1 + 3);
  if (end == absl::string_view::npos) return std::nullopt;
  absl::string_view charset = s.substr(2, q1 - 2);
  const char encoding =
      absl::ascii_toupper(static_cast<unsigned char>(s[q1 + 1]));
  const absl::string_view text = s.substr(q1 + 3, end - (q1 + 3));
  // An encoded-word holds no blanks or controls (RFC 2047 §2).
  for (char c : s.substr(0, end)) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return std::nullopt;
  }
  if (const size_t star = charset.find('*'); star != absl::string_view::npos) {
    charset = charset.substr(0, star);  // RFC 2231 §5: "*language"
  }
  const bool latin1 = absl::EqualsIgnoreCase(charset, "ISO-8859-1") ||
                      absl::EqualsIgnoreCase(charset, "latin1");
  if (!latin1 && !absl::EqualsIgnoreCase(charset, "UTF-8") &&
      !absl::EqualsIgnoreCase(charset, "utf8") &&
      !absl::EqualsIgnoreCase(charset, "US-ASCII")) {
    return std::nullopt;
  }
  std::string bytes;
  if (encoding == 'B') {
    if (!absl::Base64Unescape(text, &bytes)) return std::nullopt;
  } else if (encoding == 'Q') {
    std::optional<std::string> q = DecodeQ(text);
    if (!q) return std::nullopt;
    bytes = *std::move(q);
  } else {
    return std::nullopt;
  }
  *length = end + 2;
  if (!latin1) return bytes;  // UTF-8 (US-ASCII is a subset); checked later
  std::string out;
  AppendLatin1(&out, bytes);
  return out;
}

// CRLF (or a bare CR or LF) followed by a blank is folding (RFC 5322 §2.2.3):
// removed, the blank kept.
std::string Unfold(absl::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    size_t j = i;
    if (raw[j] == '\r') ++j;
    if (j < raw.size() && raw[j] == '\n') ++j;
    if (j > i && j < raw.size() && IsBlank(raw[j])) {
      i = j - 1;
      continue;
    }
    out.push_back(raw[i]);
  }
  return out;
}

}  // namespace

std::string HeaderFieldValue(absl::string_view block, absl::string_view name) {
  size_t pos = 0;
  while (pos < block.size()) {
    size_t eol = block.find('\n', pos);
    if (eol == absl::string_view::npos) eol = block.size();
    const absl::string_view line = block.substr(pos, eol - pos);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        absl::EqualsIgnoreCase(line.substr(0, name.size()), name)) {
      // The value runs on over continuation lines (starting with a blank).
      size_t end = eol;
      while (end + 1 < block.size() && IsBlank(block[end + 1])) {
        end = block.find('\n', end + 1);
        if (end == absl::string_view::npos) end = block.size();
      }
      absl::string_view value =
          block.substr(pos + name.size() + 1, end - pos - name.size() - 1);
      while (!value.empty() && IsBlank(value.front())) value.remove_prefix(1);
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) {
        value.remove_suffix(1);
      }
      return std::string(value);
    }
    pos = eol + 1;
  }
  return "";
}

std::string DecodeEncodedWords(absl::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  // Blanks seen since the last encoded-word, held back: dropped if another
  // encoded-word follows them directly.
  bool after_word = false;
  size_t held = 0;
  size_t i = 0;
  while (i < raw.size()) {
    size_t length = 0;
    if (raw[i] == '=') {
      if (std::optional<std::string> word =
              EncodedWord(raw.substr(i), &length)) {
        out += *word;
        held = 0;
        after_word = true;
        i += length;
        continue;
      }
    }
    if (after_word && IsBlank(raw[i])) {
      ++held;
      ++i;
      continue;
    }
    if (held > 0) out.append(raw.data() + i - held, held);
    held = 0;
    after_word = false;
    out.push_back(raw[i]);
    ++i;
  }
  if (held > 0) out.append(raw.data() + raw.size() - held, held);
  return out;
}

absl::string_view CutUtf8(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  // Back over continuation bytes (10xxxxxx) to the start of the character
  // that would be split.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

std::string HeaderDisplayText(absl::string_view raw, size_t max_bytes,
                              bool decode) {
  // Only the start is ever shown: what lies past a generous multiple of the
  // bound is not worked on (decoding never grows text more than twofold).
  raw = raw.substr(0, std::max<size_t>(4096, 16 * max_bytes));
  std::string text = Unfold(raw);
  if (decode) text = DecodeEncodedWords(text);
  std::string out;
  out.reserve(text.size());
  bool space = false;  // a space is owed before the next visible character
  absl::string_view rest = text;
  while (!rest.empty()) {
    const unsigned char c = static_cast<unsigned char>(rest[0]);
    const size_t n = Utf8Length(rest);
    // C0 controls, DEL and C1 controls (U+0080..U+009F).
    if (c <= ' ' || c == 0x7f ||
        (n == 2 && c == 0xC2 && static_cast<unsigned char>(rest[1]) < 0xA0)) {
      space = true;
      rest.remove_prefix(n == 0 ? 1 : n);
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      rest.remove_prefix(1);
      continue;
    }
    out.append(rest.data(), n);
    rest.remove_prefix(n);
    if (out.size() > max_bytes) break;  // enough to cut from
  }
  out.resize(CutUtf8(out, max_bytes).size());
  return out;
}

}  // namespace pimap::imap
