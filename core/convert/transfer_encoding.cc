// Base64 and quoted-printable decoding (transfer_encoding.h).
#include "core/convert/transfer_encoding.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pimap::convert {
namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string DecodeBase64(absl::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;  // padding: the data ends here
    const int v = Base64Value(c);
    if (v < 0) continue;  // line breaks and anything outside the alphabet
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string DecodeQuotedPrintable(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (c != '=') {
      out.push_back(c);
      ++i;
      continue;
    }
    // A soft line break: "=" then optional trailing white space, then CRLF.
    size_t j = i + 1;
    while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
    if (j < in.size() && (in[j] == '\r' || in[j] == '\n')) {
      if (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n') ++j;
      i = j + 1;
      continue;
    }
    if (j == in.size()) {  // "=" at the very end: a soft break too
      i = j;
      continue;
    }
    if (i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
        HexValue(in[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 3;
      continue;
    }
    out.push_back('=');  // malformed: kept as it is
    ++i;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> DecodeTransferEncoding(absl::string_view encoding,
                                                   absl::string_view body) {
  const std::string e =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(encoding));
  if (e.empty() || e == "7bit" || e == "8bit" || e == "binary") {
    return std::string(body);
  }
  if (e == "base64") return DecodeBase64(body);
  if (e == "quoted-printable") return DecodeQuotedPrintable(body);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown transfer encoding ", e));
}

}  // namespace pimap::convert
