// Parsing of the out-of-band addresses (outband_address.h): a Web Push
// subscription with RapidJSON (header-only, no exceptions), the JSON parser
// the store-event intake already uses; the EMN addresses by hand (two small
// grammars).
#include "core/session/outband_address.h"

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "rapidjson/document.h"

namespace pimap::session {
namespace {

absl::Status Bad(absl::string_view m) {
  return absl::InvalidArgumentError(
      absl::StrCat("PIMAP_OUTBAND_ADDRESS: Web Push subscription: ", m));
}

// https://host[:port][/path]: no user info, a host of DNS or IP literal
// characters only (the URL goes into a request line and a Host header).
absl::Status ParseEndpoint(absl::string_view url, WebPushSubscription* out) {
  constexpr absl::string_view kScheme = "https://";
  if (!absl::StartsWithIgnoreCase(url, kScheme)) {
    return Bad("endpoint must be an https URL");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Bad("endpoint has spaces or control characters");
    }
  }
  absl::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path =
      slash == absl::string_view::npos ? "" : rest.substr(slash);
  path = path.substr(0, path.find('#'));  // a fragment is not sent
  out->path = absl::StrCat(absl::StartsWith(path, "/") ? "" : "/", path);
  if (authority.empty() || absl::StrContains(authority, '@')) {
    return Bad("endpoint needs a host (and no user info)");
  }
  absl::string_view host = authority;
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return Bad("endpoint host malformed");
    host = authority.substr(1, close - 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Bad("endpoint host malformed");
      port = after.substr(1);
    }
  } else if (const size_t colon = authority.find(':');
             colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Bad("endpoint needs a host");
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != ':') {
      return Bad("endpoint host has invalid characters");
    }
  }
  uint32_t port_number = 443;
  if (!port.empty() && (!absl::SimpleAtoi(port, &port_number) ||
                        port_number == 0 || port_number > 65535)) {
    return Bad("endpoint port invalid");
  }
  out->host = absl::AsciiStrToLower(host);
  out->port = absl::StrCat(port_number);
  const bool v6 = absl::StrContains(out->host, ':');
  out->origin =
      absl::StrCat("https://", v6 ? "[" : "", out->host, v6 ? "]" : "");
  if (port_number != 443) absl::StrAppend(&out->origin, ":", port_number);
  out->endpoint = std::string(url);
  return absl::OkStatus();
}

absl::Status Key(const rapidjson::Value& keys, const char* name, size_t size,
                 std::string* out) {
  auto it = keys.FindMember(name);
  if (it == keys.MemberEnd() || !it->value.IsString()) {
    return Bad(absl::StrCat("keys.", name, " missing"));
  }
  absl::string_view text(it->value.GetString(), it->value.GetStringLength());
  // Browsers give base64url without padding; padding is tolerated.
  if (!absl::WebSafeBase64Unescape(text, out) || out->size() != size) {
    return Bad(
        absl::StrCat("keys.", name, " must be ", size, " bytes in base64url"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WebPushSubscription> ParseWebPushSubscription(
    absl::string_view json) {
  if (json.size() > kMaxOutbandAddress) return Bad("too long");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag |
            rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Bad("not a JSON object");
  WebPushSubscription sub;
  auto endpoint = doc.FindMember("endpoint");
  if (endpoint == doc.MemberEnd() || !endpoint->value.IsString()) {
    return Bad("endpoint missing");
  }
  if (absl::Status s =
          ParseEndpoint(absl::string_view(endpoint->value.GetString(),
                                          endpoint->value.GetStringLength()),
                        &sub);
      !s.ok()) {
    return s;
  }
  auto keys = doc.FindMember("keys");
  if (keys == doc.MemberEnd() || !keys->value.IsObject()) {
    return Bad("keys missing");
  }
  if (absl::Status s = Key(keys->value, "p256dh", 65, &sub.p256dh); !s.ok()) {
    return s;
  }
  if (sub.p256dh[0] != '\x04')
    return Bad("keys.p256dh is not an uncompressed P-256 point");
  if (absl::Status s = Key(keys->value, "auth", 16, &sub.auth); !s.ok()) {
    return s;
  }
  return sub;
}

namespace {

bool IsMsisdn(absl::string_view s) {
  if (absl::StartsWith(s, "+")) s.remove_prefix(1);
  return s.size() >= 3 && s.size() <= 15 &&
         absl::c_all_of(s, [](char c) { return absl::ascii_isdigit(c); });
}

// "WAPPUSH=" value "/TYPE=" type ["@" ppg].
bool IsWapPushAddress(absl::string_view s) {
  if (!absl::ConsumePrefix(&s, "WAPPUSH=")) return false;
  const size_t type_at = s.find("/TYPE=");
  if (type_at == 0 || type_at == absl::string_view::npos) return false;
  const absl::string_view value = s.substr(0, type_at);
  absl::string_view rest = s.substr(type_at + sizeof("/TYPE=") - 1);
  absl::string_view ppg;
  if (const size_t at = rest.find('@'); at != absl::string_view::npos) {
    ppg = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (ppg.empty()) return false;
  }
  const auto value_char = [](char c) {
    return absl::ascii_isalnum(c) || absl::StrContains("+.:_%-", c);
  };
  const auto host_char = [](char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '-';
  };
  return absl::c_all_of(value, value_char) && !rest.empty() &&
         absl::c_all_of(rest, [](char c) { return absl::ascii_isalnum(c); }) &&
         absl::c_all_of(ppg, host_char);
}

}  // namespace

absl::Status CheckEmnAddress(absl::string_view channel,
                             absl::string_view address) {
  if (channel != "SMS" && channel != "WAP_PUSH") return absl::OkStatus();
  const absl::string_view what =
      channel == "SMS" ? "an MSISDN (+ and 3 to 15 digits)"
                       : "an MSISDN (+ and 3 to 15 digits) or a WAP Push "
                         "address (WAPPUSH=<value>/TYPE=<type>[@<ppg>])";
  if (address.size() <= kMaxEmnAddress &&
      (IsMsisdn(address) ||
       (channel == "WAP_PUSH" && IsWapPushAddress(address)))) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "PIMAP_OUTBAND_ADDRESS: channel ", channel, " needs ", what));
}

}  // namespace pimap::session
