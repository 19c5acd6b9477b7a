// The EMN encodings (emn_document.h). WBXML tokens of EMN 1.0 (code page 0):
// tag emn 0x05; attribute starts timestamp 0x05, mailbox 0x06, mailbox
// "mailat:" 0x07 (and pop://, imap://, http(s):// ones, unused here);
// attribute values ".com" 0x85, ".edu" 0x86, ".net" 0x87, ".org" 0x88.
#include "bindings/emn/emn_document.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace pimap::emn {
namespace {

// WAP-192 global tokens.
constexpr char kEnd = 0x01;
constexpr char kStrI = 0x03;
constexpr char kOpaque = static_cast<char>(0xC3);
// EMN 1.0 tokens.
constexpr char kTagEmnWithAttributes = static_cast<char>(0x05 | 0x80);
constexpr char kAttrTimestamp = 0x05;
constexpr char kAttrMailboxMailat = 0x07;

struct ValueToken {
  absl::string_view text;
  char token;
};
constexpr std::array<ValueToken, 4> kValueTokens = {{
    {".com", static_cast<char>(0x85)},
    {".edu", static_cast<char>(0x86)},
    {".net", static_cast<char>(0x87)},
    {".org", static_cast<char>(0x88)},
}};

bool IsControl(char c) {
  return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

void AppendXmlAttribute(std::string* out, absl::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&':
        out->append("&amp;");
        break;
      case '<':
        out->append("&lt;");
        break;
      case '>':
        out->append("&gt;");
        break;
      case '"':
        out->append("&quot;");
        break;
      default:
        // XML 1.0 cannot carry most control characters; a user key has
        // none, but nothing unparseable leaves here.
        if (!IsControl(c)) out->push_back(c);
    }
  }
}

// A WBXML multi-byte unsigned integer (WAP-192 §5.1): 7 bits per octet, most
// significant first, the continuation bit on all but the last.
void AppendMbUint32(std::string* out, uint32_t v) {
  char buf[5];
  int n = 0;
  do {
    buf[n++] = static_cast<char>(v & 0x7f);
    v >>= 7;
  } while (v != 0);
  while (n > 1) out->push_back(static_cast<char>(buf[--n] | 0x80));
  out->push_back(buf[0]);
}

// An inline string (STR_I): the bytes, then the terminating NUL (left out
// of the value: a NUL would end it early).
void AppendStrI(std::string* out, absl::string_view s) {
  if (s.empty()) return;
  out->push_back(kStrI);
  for (char c : s) {
    if (c != '\0') out->push_back(c);
  }
  out->push_back('\0');
}

// The mailbox value after "mailat:": inline strings, with the spec's
// attribute-value tokens for the four domain endings it has them for.
void AppendMailboxValue(std::string* out, absl::string_view value) {
  size_t plain_from = 0;
  size_t i = 0;
  while (i < value.size()) {
    const ValueToken* hit = nullptr;
    for (const ValueToken& t : kValueTokens) {
      if (value.substr(i, t.text.size()) == t.text) {
        hit = &t;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    AppendStrI(out, value.substr(plain_from, i - plain_from));
    out->push_back(hit->token);
    i += hit->text.size();
    plain_from = i;
  }
  AppendStrI(out, value.substr(plain_from));
}

}  // namespace

std::string EmnXml(absl::string_view mailbox, absl::Time when) {
  std::string out =
      "<?xml version=\"1.0\"?>\n"
      "<!DOCTYPE emn PUBLIC \"-//WAPFORUM//DTD EMN 1.0//EN\" "
      "\"http://www.wapforum.org/DTD/emn.dtd\">\n"
      "<emn mailbox=\"mailat:";
  AppendXmlAttribute(&out, mailbox);
  absl::StrAppend(
      &out, "\" timestamp=\"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", when, absl::UTCTimeZone()),
      "\"/>\n");
  return out;
}

std::string EmnElement(absl::string_view mailbox, absl::Time when) {
  std::string out = "<emn mailbox=\"mailat:";
  AppendXmlAttribute(&out, mailbox);
  absl::StrAppend(
      &out, "\" timestamp=\"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", when, absl::UTCTimeZone()),
      "\"></emn>");
  return out;
}

std::string EmnTimestamp(absl::Time when) {
  const absl::TimeZone::CivilInfo t = absl::UTCTimeZone().At(when);
  const int64_t year = t.cs.year();
  const int parts[7] = {static_cast<int>(year / 100 % 100),
                        static_cast<int>(year % 100),
                        t.cs.month(),
                        t.cs.day(),
                        t.cs.hour(),
                        t.cs.minute(),
                        t.cs.second()};
  std::string out;
  for (int v : parts) {
    out.push_back(static_cast<char>((v / 10) << 4 | (v % 10)));
  }
  while (!out.empty() && out.back() == '\0') out.pop_back();
  return out;
}

std::string EmnWbxml(absl::string_view mailbox, absl::Time when) {
  std::string out;
  out.push_back(static_cast<char>(kWbxmlVersion13));
  AppendMbUint32(&out, kEmnPublicId);
  AppendMbUint32(&out, kCharsetUtf8);
  AppendMbUint32(&out, 0);               // string table length: none
  out.push_back(kTagEmnWithAttributes);  // no content: no END after it
  out.push_back(kAttrMailboxMailat);
  AppendMailboxValue(&out, mailbox);
  out.push_back(kAttrTimestamp);
  const std::string stamp = EmnTimestamp(when);
  out.push_back(kOpaque);
  AppendMbUint32(&out, static_cast<uint32_t>(stamp.size()));
  out.append(stamp);
  out.push_back(kEnd);  // end of the attribute list
  return out;
}

}  // namespace pimap::emn
