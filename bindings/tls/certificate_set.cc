// SNI name matching and certificate DNS names (see certificate_set.h).
#include "bindings/tls/certificate_set.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace pimap::tls {

namespace {
// Lower case without a trailing dot ("Mail.Example.ORG." names the same
// host as "mail.example.org").
std::string Normalize(absl::string_view name) {
  absl::ConsumeSuffix(&name, ".");
  return absl::AsciiStrToLower(name);
}
}  // namespace

void SniNames::Add(const std::vector<std::string>& names, int index) {
  for (const std::string& raw : names) {
    std::string name = Normalize(raw);
    // An embedded NUL is an attack on C-string comparisons, not a name.
    if (name.find('\0') != std::string::npos) continue;
    absl::string_view rest = name;
    if (absl::ConsumePrefix(&rest, "*.")) {
      // "*.org"-like names and a "*" anywhere else are not wildcards a client
      // accepts (RFC 6125 6.4.3); they could only match by accident.
      if (rest.find('.') == absl::string_view::npos ||
          rest.find('*') != absl::string_view::npos) {
        continue;
      }
      wildcards_.try_emplace(std::string(rest), index);
    } else if (!name.empty() && name.find('*') == std::string::npos) {
      exact_.try_emplace(std::move(name), index);
    }
  }
}

int SniNames::Find(absl::string_view host) const {
  const std::string name = Normalize(host);
  if (name.empty()) return -1;
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  // The wildcard stands for exactly one whole, non-empty label.
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string::npos) return -1;
  if (auto it = wildcards_.find(absl::string_view(name).substr(dot + 1));
      it != wildcards_.end()) {
    return it->second;
  }
  return -1;
}

std::vector<std::string> CertificateDnsNames(X509* cert) {
  std::vector<std::string> names;
  auto* general = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (general != nullptr) {
    for (size_t i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
      if (name->type != GEN_DNS) continue;
      const ASN1_STRING* dns = name->d.dNSName;
      names.push_back(Normalize(absl::string_view(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
          static_cast<size_t>(ASN1_STRING_length(dns)))));
    }
    GENERAL_NAMES_free(general);
  }
  if (!names.empty()) return names;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) return names;
  const ASN1_STRING* cn =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  names.push_back(Normalize(absl::string_view(
      reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
      static_cast<size_t>(ASN1_STRING_length(cn)))));
  return names;
}

}  // namespace pimap::tls
