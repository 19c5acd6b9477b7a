// pimapd's options of the device listeners' TLS certificates (issue 14):
// the default certificate and key, and the certificates chosen by SNI. Rows
// of the one option table (option_spec.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

// Each SNI certificate is loaded, kept in memory and re-read on SIGHUP: a
// bound well past any real deployment (certificates usually carry many names).
constexpr size_t kMaxSniCerts = 64;

absl::Status AddSniCert(absl::string_view v, Options& o) {
  if (v == "none") {
    o.tls_sni_certs.clear();
    return absl::OkStatus();
  }
  std::pair<absl::string_view, absl::string_view> files =
      absl::StrSplit(v, absl::MaxSplits(',', 1));
  files.first = absl::StripAsciiWhitespace(files.first);
  files.second = absl::StripAsciiWhitespace(files.second);
  if (files.first.empty() || files.second.empty()) {
    return absl::InvalidArgumentError(
        "expected CERT_FILE,KEY_FILE (two PEM files)");
  }
  if (o.tls_sni_certs.size() >= kMaxSniCerts) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxSniCerts, " SNI certificates"));
  }
  o.tls_sni_certs.push_back(
      {std::string(files.first), std::string(files.second)});
  return absl::OkStatus();
}

const OptionSpec kTlsOptionSpecs[] = {
    {"tls-cert", "FILE",
     "PEM certificate chain for TLS (give --tls-key too); the default "
     "certificate of every TLS listener (IMAPS, STARTTLS, HTTPS).",
     [](absl::string_view v, Options& o) {
       o.tls_cert = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.tls_cert.empty() ? std::string("none") : o.tls_cert;
     }},
    {"tls-key", "FILE", "PEM private key for TLS (give --tls-cert too).",
     [](absl::string_view v, Options& o) {
       o.tls_key = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.tls_key.empty() ? std::string("none") : o.tls_key;
     }},
    {"tls-sni-cert", "CERT_FILE,KEY_FILE",
     "One more certificate chain and its key (PEM) for every TLS listener, "
     "served to clients whose SNI asks for one of its DNS names (its "
     "subjectAltName dNSNames, else its CN; \"*.example.org\" covers one "
     "label); other clients get --tls-cert. Repeat for more certificates "
     "(at most 64); \"none\" drops those given before (e.g. in the config "
     "file). SIGHUP re-reads all certificate and key files.",
     &AddSniCert,
     [](const Options& o) {
       if (o.tls_sni_certs.empty()) return std::string("none");
       return absl::StrJoin(
           o.tls_sni_certs, " ",
           [](std::string* out, const Options::CertKeyFiles& f) {
             absl::StrAppend(out, f.cert, ",", f.key);
           });
     }},
};

}  // namespace

absl::Span<const OptionSpec> TlsOptionSpecs() { return kTlsOptionSpecs; }

absl::Status ValidateTls(const Options& o) {
  if (!o.tls_sni_certs.empty() && o.tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls-sni-cert needs --tls-cert and --tls-key (the default "
        "certificate)");
  }
  return absl::OkStatus();
}

}  // namespace pimap
