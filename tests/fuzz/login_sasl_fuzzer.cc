// libFuzzer target: the login name ("user#device@domain", core/imap/
// login_name) and SASL PLAIN (core/imap/sasl), both read from a device before
// it is authenticated. Invariants: an accepted login loses and adds nothing
// (user with "#device" put back is the input); SASL PLAIN decoding is exactly
// "two NULs, non-empty authcid" over the base64 decoding and round-trips
// through EncodeSaslPlain.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/imap/login_name.h"
#include "core/imap/sasl.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pimap::imap::DecodeSaslPlain;
using pimap::imap::EncodeSaslPlain;
using pimap::imap::SaslPlain;

void CheckLogin(absl::string_view login) {
  auto name = pimap::imap::ParseLoginName(login);
  if (!name.ok()) return;
  FUZZ_CHECK(!name->user.empty());
  FUZZ_CHECK(name->device.find('#') == std::string::npos);
  // The domain (after the last '@') ends the user; "#device" goes before it.
  const size_t at = login.rfind('@');
  const size_t domain_len =
      at == absl::string_view::npos ? 0 : login.size() - at;
  FUZZ_CHECK(domain_len <= name->user.size());
  const size_t split = name->user.size() - domain_len;
  const std::string rebuilt =
      absl::StrCat(name->user.substr(0, split),
                   name->has_device() ? absl::StrCat("#", name->device) : "",
                   name->user.substr(split));
  FUZZ_CHECK(rebuilt == login);
  for (const std::string* s : {&name->user, &name->device}) {
    for (char c : *s) {
      FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    }
  }
}

bool Same(const SaslPlain& a, const SaslPlain& b) {
  return a.authzid == b.authzid && a.authcid == b.authcid &&
         a.password == b.password;
}

void CheckSasl(absl::string_view text) {
  // As the device sends it: base64 text.
  auto decoded = DecodeSaslPlain(text);
  if (decoded.ok()) {
    FUZZ_CHECK(!decoded->authcid.empty());
    auto again = DecodeSaslPlain(EncodeSaslPlain(*decoded));
    FUZZ_CHECK(again.ok() && Same(*again, *decoded));
  }
  // The same bytes as the decoded message: accepted exactly when they hold
  // two NULs and a non-empty authcid, and split there.
  const std::string encoded = absl::Base64Escape(text);
  auto plain = DecodeSaslPlain(encoded.empty() ? "=" : encoded);
  const std::vector<absl::string_view> parts =
      absl::StrSplit(text, absl::ByChar('\0'));
  const bool valid = parts.size() == 3 && !parts[1].empty();
  FUZZ_CHECK(plain.ok() == valid);
  if (valid) {
    FUZZ_CHECK(plain->authzid == parts[0] && plain->authcid == parts[1] &&
               plain->password == parts[2]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  CheckLogin(text);
  CheckSasl(text);
  return 0;
}
