// Response writer. The invariant that matters: whatever AppendAstring or
// AppendString writes is read back to the same bytes by the command parser.
#include "core/imap/writer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pimap::imap {
namespace {

constexpr size_t kMaxQuoted = 1024;
constexpr size_t kMaxLogBytes = 200;

bool IsSafeAtomChar(unsigned char c) {
  // ATOM-CHAR minus "[" and "]": CHAR except atom-specials and resp-specials.
  return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '%' &&
         c != '*' && c != '"' && c != '\\' && c != '[' && c != ']';
}

bool IsQuotable(absl::string_view s) {
  if (s.size() > kMaxQuoted) return false;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == 0 || c == '\r' || c == '\n' || c >= 0x80) return false;
  }
  return true;
}

void AppendQuoted(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendSanitized(std::string* out, absl::string_view s) {
  for (char c : s) {
    out->push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
  }
}

void AppendStatusTail(std::string* out, absl::string_view status,
                      absl::string_view code, absl::string_view text) {
  AppendSanitized(out, status);
  if (!code.empty()) {
    out->append(" [");
    AppendSanitized(out, code);
    out->push_back(']');
  }
  if (!text.empty()) {
    out->push_back(' ');
    AppendSanitized(out, text);
  }
  out->append("\r\n");
}

}  // namespace

void AppendString(std::string* out, absl::string_view s) {
  if (IsQuotable(s)) {
    AppendQuoted(out, s);
    return;
  }
  absl::StrAppend(out, "{", s.size(), "}\r\n");
  out->append(s.data(), s.size());
}

void AppendAstring(std::string* out, absl::string_view s) {
  bool atom = !s.empty() && !absl::EqualsIgnoreCase(s, "NIL");
  for (size_t i = 0; atom && i < s.size(); ++i) {
    atom = IsSafeAtomChar(static_cast<unsigned char>(s[i]));
  }
  if (atom) {
    out->append(s.data(), s.size());
    return;
  }
  AppendString(out, s);
}

void AppendNString(std::string* out, const std::string* s_or_null) {
  if (s_or_null == nullptr) {
    out->append("NIL");
    return;
  }
  AppendString(out, *s_or_null);
}

void AppendTaggedStatus(std::string* out, absl::string_view tag,
                        absl::string_view status, absl::string_view code,
                        absl::string_view text) {
  AppendSanitized(out, tag);
  out->push_back(' ');
  AppendStatusTail(out, status, code, text);
}

void AppendUntaggedStatus(std::string* out, absl::string_view status,
                          absl::string_view code, absl::string_view text) {
  out->append("* ");
  AppendStatusTail(out, status, code, text);
}

std::string QuoteForLog(absl::string_view s) {
  std::string out = "\"";
  const size_t n = s.size() > kMaxLogBytes ? kMaxLogBytes : s.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\r':
        out.append("\\r");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out.append("\\x");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  if (n < s.size()) absl::StrAppend(&out, "...(", s.size(), " bytes)");
  return out;
}

}  // namespace pimap::imap
