// Capability lists.
#include "core/session/capabilities.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pimap::session {

std::string PreAuthCapabilities(bool starttls_available, bool login_allowed,
                                bool xzip) {
  std::string caps = "IMAP4rev1 LITERAL+ SASL-IR";
  if (starttls_available) caps += " STARTTLS";
  caps += login_allowed ? " AUTH=PLAIN" : " LOGINDISABLED";
  if (xzip) caps += " XZIP";
  return caps;
}

std::string PostAuthCapabilities(const std::vector<std::string>& store_caps,
                                 bool pimap, bool compression,
                                 absl::string_view extra) {
  std::string caps = "IMAP4rev1";
  for (const std::string& raw : store_caps) {
    const std::string cap = absl::AsciiStrToUpper(raw);
    if (cap == "IMAP4REV1" || cap == "STARTTLS" || cap == "LOGINDISABLED" ||
        cap == "SASL-IR" || cap == "LOGIN-REFERRALS" ||
        absl::StartsWith(cap, "AUTH=") || absl::StartsWith(cap, "COMPRESS=")) {
      continue;
    }
    // In a P-IMAP session the gateway renumbers results from the device's view;
    // what it cannot renumber (ESEARCH, THREAD, saved results) is not offered.
    if (pimap && (cap == "QRESYNC" || cap == "NOTIFY" || cap == "ESEARCH" ||
                  cap == "ESORT" || cap == "SEARCHRES" ||
                  absl::StartsWith(cap, "CONTEXT=") || absl::StartsWith(cap, "THREAD="))) {
      continue;
    }
    absl::StrAppend(&caps, " ", raw);
  }
  // The P-IMAP R01 tokens for what the gateway implements (protocol.md §2.1),
  // and its own compression (RFC 4978; the store's is per hop, not offered).
  caps += " XFILTER XPIMAPPREF XZIP";
  if (compression) caps += " COMPRESS=DEFLATE";
  if (!extra.empty()) absl::StrAppend(&caps, " ", extra);
  return caps;
}

}  // namespace pimap::session
