// Capability lists.
#include "core/session/capabilities.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pimap::session {

std::string PreAuthCapabilities(bool starttls_available, bool login_allowed,
                                bool xzip) {
  // LITERAL-, not LITERAL+: before login a non-synchronising literal may hold
  // at most 4096 bytes (RFC 7888 section 4), so an unauthenticated client
  // cannot push large literals without waiting for "+".
  std::string caps = "IMAP4rev1 LITERAL- SASL-IR ID";
  if (starttls_available) caps += " STARTTLS";
  caps += login_allowed ? " AUTH=PLAIN" : " LOGINDISABLED";
  if (xzip) caps += " XZIP";
  caps += " XTERSE";  // any state, before login too (terse.h)
  return caps;
}

std::string PostAuthCapabilities(const std::vector<std::string>& store_caps,
                                 bool pimap, bool compression,
                                 absl::string_view extra) {
  std::string caps = "IMAP4rev1";
  for (const std::string& raw : store_caps) {
    const std::string cap = absl::AsciiStrToUpper(raw);
    // ID is the gateway's own (client_id.h), listed below.
    if (cap == "IMAP4REV1" || cap == "STARTTLS" || cap == "LOGINDISABLED" ||
        cap == "SASL-IR" || cap == "LOGIN-REFERRALS" || cap == "ID" ||
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
  // The P-IMAP R01 tokens for what the gateway implements (protocol.md §2.1):
  // XFILTER and XPIMAPPREF only in a P-IMAP session (a regular session
  // answers them NO [CANNOT]); XPROVISION, XZIP and ID everywhere (§2.2), and
  // its own compression (RFC 4978; the store's is per hop, not offered).
  if (pimap) caps += " XFILTER XPIMAPPREF";
  caps += " XPROVISION XZIP ID";
  caps += " XTERSE XSYNC";
  // XCONVERT/XUIDCONVERT (§3.7; device_driver_convert.cc): P-IMAP only.
  if (pimap) caps += " XCONVERT";
  // XPSEARCH (§3.8; device_driver_xpsearch.cc): P-IMAP only.
  if (pimap) caps += " XPSEARCH";
  if (compression) caps += " COMPRESS=DEFLATE";
  if (!extra.empty()) absl::StrAppend(&caps, " ", extra);
  return caps;
}

}  // namespace pimap::session
