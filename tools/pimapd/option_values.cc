// pimapd's value syntaxes (see options.h): HOST:PORT, byte sizes, durations.
// Apart from the option table (options.cc) because they are the shared
// grammar every row uses, and tested on their own.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tools/pimapd/options.h"

namespace pimap {

using absl::InvalidArgumentError;

std::string HostPort::ToString() const {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  auto error = [&](absl::string_view why) {
    return InvalidArgumentError(absl::StrCat(
        "expected HOST:PORT or [IPV6]:PORT with port 1..65535 (", why, ")"));
  };
  HostPort hp;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return error("missing ']'");
    hp.host = std::string(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) return error("missing port");
    port = rest;
    if (hp.host.empty()) return error("empty host");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return error("missing port");
    const absl::string_view host = text.substr(0, colon);
    if (host.empty()) return error("empty host");
    if (absl::StrContains(host, ':')) {
      return error("IPv6 addresses need brackets");
    }
    hp.host = std::string(host);
    port = text.substr(colon + 1);
  }
  for (char c : hp.host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c)) || c == '[' ||
        c == ']' || c == '/') {
      return error("bad character in host");
    }
  }
  int64_t p = 0;
  if (port.empty() ||
      port.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
    return error("bad port");
  }
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  absl::string_view rest = text;
  size_t digits = 0;
  while (digits < rest.size() &&
         absl::ascii_isdigit(static_cast<unsigned char>(rest[digits]))) {
    ++digits;
  }
  const auto bad = [] {
    return InvalidArgumentError(
        "expected a byte count with an optional K, M or G suffix");
  };
  uint64_t n = 0;
  if (digits == 0 || !absl::SimpleAtoi(rest.substr(0, digits), &n)) {
    return bad();
  }
  rest.remove_prefix(digits);
  unsigned shift = 0;
  if (!rest.empty()) {
    switch (absl::ascii_toupper(static_cast<unsigned char>(rest[0]))) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      default:
        return bad();
    }
    rest.remove_prefix(1);
    if (rest != "" && rest != "B" && rest != "iB") return bad();
  }
  if (shift != 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return InvalidArgumentError("size too large");
  }
  return n << shift;
}

absl::StatusOr<absl::Duration> ParseDurationOrSeconds(absl::string_view text) {
  const auto bad = [] {
    return InvalidArgumentError(
        "expected a duration such as 90s, 10m, 1h30m, or a number of "
        "seconds");
  };
  if (text.empty()) return bad();
  // Bare number of seconds: digits with at most one '.'.
  bool numeric = true;
  int dots = 0;
  for (char c : text) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      numeric = false;
    }
  }
  if (numeric) {
    double secs = 0;
    if (dots > 1 || !absl::SimpleAtod(text, &secs) || !std::isfinite(secs) ||
        secs > 1e9) {
      return bad();
    }
    return absl::Seconds(secs);
  }
  absl::Duration d;
  // ParseDuration accepts "inf"; a timeout must be finite.
  if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return bad();
  }
  return d;
}

}  // namespace pimap
