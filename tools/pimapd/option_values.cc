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


// ---- The option table's row parsers (options.h) ----

namespace {

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Strict: digits only (no sign, no spaces), within [lo, hi].
}  // namespace

absl::StatusOr<int64_t> ParseIntInRange(absl::string_view text, int64_t lo,
                                        int64_t hi) {
  int64_t v = 0;
  if (!AllDigits(text) || !absl::SimpleAtoi(text, &v) || v < lo || v > hi) {
    return InvalidArgumentError(
        absl::StrCat("expected an integer in ", lo, "..", hi));
  }
  return v;
}

std::string FormatByteSize(uint64_t v) {
  if (v != 0 && v % (1ull << 30) == 0) return absl::StrCat(v >> 30, "G");
  if (v != 0 && v % (1ull << 20) == 0) return absl::StrCat(v >> 20, "M");
  if (v != 0 && v % (1ull << 10) == 0) return absl::StrCat(v >> 10, "K");
  return absl::StrCat(v);
}

absl::StatusOr<uint64_t> ParseSizeInRange(absl::string_view text, uint64_t lo,
                                          uint64_t hi) {
  absl::StatusOr<uint64_t> v = ParseByteSize(text);
  if (!v.ok()) return v.status();
  if (*v < lo || *v > hi) {
    return InvalidArgumentError(absl::StrCat(
        "expected a size in ", FormatByteSize(lo), "..", FormatByteSize(hi)));
  }
  return *v;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  const std::string v = absl::AsciiStrToLower(text);
  if (v == "true" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "no" || v == "0") return false;
  return InvalidArgumentError("expected true, false, yes, no, 1 or 0");
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view text) {
  absl::StatusOr<absl::Duration> d = ParseDurationOrSeconds(text);
  if (!d.ok()) return d.status();
  if (*d <= absl::ZeroDuration()) {
    return InvalidArgumentError("the duration must be positive");
  }
  return *d;
}

// Zero allowed (it means "off" for the options that take this).
absl::StatusOr<absl::Duration> ParseNonNegativeDuration(
    absl::string_view text) {
  absl::StatusOr<absl::Duration> d = ParseDurationOrSeconds(text);
  if (!d.ok()) return d.status();
  if (*d < absl::ZeroDuration()) {
    return InvalidArgumentError("the duration must not be negative");
  }
  return *d;
}

absl::StatusOr<std::optional<HostPort>> ParseOptionalHostPort(
    absl::string_view text) {
  if (text == "none") return std::optional<HostPort>();
  absl::StatusOr<HostPort> hp = ParseHostPort(text);
  if (!hp.ok()) return hp.status();
  return std::optional<HostPort>(*std::move(hp));
}


}  // namespace pimap
