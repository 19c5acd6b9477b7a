// The forwarded connection's first line (forward_record.h). The record is a
// sequence of length-prefixed fields in a fixed order ("<decimal length>:"
// then the bytes), so that any byte may appear in a password or tag.
#include "core/cluster/forward_record.h"

#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pimap::cluster {
namespace {

constexpr absl::string_view kVerb = "XFORWARD1 ";
constexpr size_t kFieldCount = 12;

void AppendField(std::string* out, absl::string_view field) {
  absl::StrAppend(out, field.size(), ":", field);
}

std::string EndpointBytes(const Endpoint& e) {
  std::string out(19, '\0');
  out[0] = static_cast<char>(e.family);
  std::memcpy(out.data() + 1, e.ip.data(), 16);
  out[17] = static_cast<char>(e.port >> 8);
  out[18] = static_cast<char>(e.port & 0xff);
  return out;
}

bool ParseEndpoint(absl::string_view bytes, Endpoint* e) {
  if (bytes.size() != 19) return false;
  const auto family = static_cast<uint8_t>(bytes[0]);
  if (family != 0 && family != 4 && family != 6) return false;
  e->family = family;
  std::memcpy(e->ip.data(), bytes.data() + 1, 16);
  e->port = static_cast<uint16_t>((static_cast<uint8_t>(bytes[17]) << 8) |
                                  static_cast<uint8_t>(bytes[18]));
  return true;
}

std::string Mac(absl::string_view secret, absl::string_view record) {
  uint8_t mac[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), secret.size(),
           reinterpret_cast<const uint8_t*>(record.data()), record.size(), mac,
           &len) == nullptr) {
    return std::string();  // allocation failure: no MAC matches it
  }
  return std::string(reinterpret_cast<const char*>(mac), len);
}

ForwardParse Invalid(std::string* error, absl::string_view why) {
  *error = std::string(why);
  return ForwardParse::kInvalid;
}

}  // namespace

std::string EncodeForwardLine(const ForwardRecord& record,
                              absl::string_view secret) {
  std::string fields;
  AppendField(&fields, record.tag);
  AppendField(&fields, record.user);
  AppendField(&fields, record.device);
  AppendField(&fields, record.password);
  AppendField(&fields, record.client_id);
  AppendField(&fields, record.terse ? "1" : "0");
  AppendField(&fields, absl::StrCat(record.hops));
  AppendField(&fields, EndpointBytes(record.client.peer));
  AppendField(&fields, EndpointBytes(record.client.local));
  AppendField(&fields, absl::StrCat(record.client.conn));
  AppendField(&fields, absl::StrCat(record.issued_unix));
  AppendField(&fields, record.secure ? "1" : "0");
  std::string line(kVerb);
  absl::StrAppend(&line, absl::WebSafeBase64Escape(fields), " ",
                  absl::BytesToHexString(Mac(secret, fields)), "\r\n");
  // Wipe the plain copy of the password; the line itself is the caller's.
  OPENSSL_cleanse(fields.data(), fields.size());
  return line;
}

ForwardParse ParseForwardLine(absl::string_view input, absl::string_view secret,
                              int64_t now_unix, ForwardRecord* record,
                              size_t* consumed, std::string* error) {
  const size_t prefix = std::min(input.size(), kVerb.size());
  if (input.substr(0, prefix) != kVerb.substr(0, prefix)) {
    return Invalid(error, "not a forwarded connection");
  }
  const size_t eol = input.find("\r\n");
  if (eol == absl::string_view::npos) {
    if (input.size() >= kMaxForwardLineBytes) {
      return Invalid(error, "forward line too long");
    }
    return ForwardParse::kNeedMore;
  }
  if (eol + 2 > kMaxForwardLineBytes) {
    return Invalid(error, "forward line too long");
  }
  absl::string_view line = input.substr(kVerb.size(), eol - kVerb.size());
  const size_t space = line.find(' ');
  if (space == absl::string_view::npos) return Invalid(error, "no MAC");
  std::string fields;
  if (!absl::WebSafeBase64Unescape(line.substr(0, space), &fields)) {
    return Invalid(error, "record is not base64url");
  }
  std::string mac;
  const absl::string_view mac_hex = line.substr(space + 1);
  if (mac_hex.size() != 2 * SHA256_DIGEST_LENGTH) {
    return Invalid(error, "bad MAC length");
  }
  for (char c : mac_hex) {
    if (!absl::ascii_isxdigit(c)) return Invalid(error, "MAC is not hex");
  }
  mac = absl::HexStringToBytes(mac_hex);
  const std::string expected = Mac(secret, fields);
  if (expected.size() != mac.size() ||
      CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0) {
    return Invalid(error, "MAC does not match (wrong --cluster-secret-file?)");
  }
  // Authentic from here on; still parsed strictly.
  absl::string_view rest = fields;
  absl::string_view field[kFieldCount];
  for (size_t i = 0; i < kFieldCount; ++i) {
    const size_t colon = rest.find(':');
    size_t len = 0;
    if (colon == absl::string_view::npos || colon == 0 || colon > 6 ||
        !absl::SimpleAtoi(rest.substr(0, colon), &len) ||
        rest.size() - colon - 1 < len) {
      OPENSSL_cleanse(fields.data(), fields.size());
      return Invalid(error, "malformed record");
    }
    field[i] = rest.substr(colon + 1, len);
    rest.remove_prefix(colon + 1 + len);
  }
  ForwardRecord out;
  uint32_t hops = 0;
  bool ok = rest.empty() && !field[1].empty() &&
            (field[5] == "0" || field[5] == "1") &&
            absl::SimpleAtoi(field[6], &hops) && hops <= kMaxForwardHops &&
            ParseEndpoint(field[7], &out.client.peer) &&
            ParseEndpoint(field[8], &out.client.local) &&
            absl::SimpleAtoi(field[9], &out.client.conn) &&
            absl::SimpleAtoi(field[10], &out.issued_unix) &&
            (field[11] == "0" || field[11] == "1");
  if (ok) {
    out.tag = std::string(field[0]);
    out.user = std::string(field[1]);
    out.device = std::string(field[2]);
    out.password = std::string(field[3]);
    out.client_id = std::string(field[4]);
    out.terse = field[5] == "1";
    out.secure = field[11] == "1";
    out.hops = static_cast<uint8_t>(hops);
  }
  OPENSSL_cleanse(fields.data(), fields.size());
  if (!ok) return Invalid(error, "malformed record");
  if (out.issued_unix < now_unix - kForwardReplayWindowS ||
      out.issued_unix > now_unix + kForwardReplayWindowS) {
    return Invalid(error, "record outside the replay window (clocks?)");
  }
  *record = std::move(out);
  *consumed = eol + 2;
  return ForwardParse::kComplete;
}

}  // namespace pimap::cluster
