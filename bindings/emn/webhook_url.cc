// ParseWebhookUrl (webhook_url.h).
#include "bindings/emn/webhook_url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace pimap::emn {
namespace {

absl::Status BadUrl(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(why,
                   " (expected https://host[:port][/path], or http:// to a "
                   "private address with --outband-allow-private)"));
}

}  // namespace

absl::StatusOr<WebhookUrl> ParseWebhookUrl(absl::string_view url) {
  WebhookUrl out;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.tls = true;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    out.tls = false;
  } else {
    return BadUrl("not an http(s) URL");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return BadUrl("spaces or control characters");
    }
  }
  const size_t slash = rest.find_first_of("/?#");
  const absl::string_view authority = rest.substr(0, slash);
  absl::string_view path =
      slash == absl::string_view::npos ? "" : rest.substr(slash);
  if (absl::StrContains(path, '#')) return BadUrl("a fragment");
  out.path = absl::StrCat(absl::StartsWith(path, "/") ? "" : "/", path);
  if (authority.empty() || absl::StrContains(authority, '@')) {
    return BadUrl("needs a host (and no user info)");
  }
  absl::string_view host = authority;
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return BadUrl("host malformed");
    host = authority.substr(1, close - 1);
    const absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return BadUrl("host malformed");
      port = after.substr(1);
    }
  } else if (const size_t colon = authority.find(':');
             colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return BadUrl("needs a host");
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != ':') {
      return BadUrl("host has invalid characters");
    }
  }
  uint32_t port_number = out.tls ? 443 : 80;
  if (!port.empty() && (!absl::SimpleAtoi(port, &port_number) ||
                        port_number == 0 || port_number > 65535)) {
    return BadUrl("port invalid");
  }
  out.host = absl::AsciiStrToLower(host);
  out.port = static_cast<uint16_t>(port_number);
  out.authority = std::string(authority);
  return out;
}

}  // namespace pimap::emn
