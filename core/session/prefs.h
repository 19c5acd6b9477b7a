// Per-device P-IMAP preferences: XSETPIMAPPREF / XGETPIMAPPREF(S)
// (protocol.md §3.2 [Modern]), their validation and durable form.
//
// Supported names and values (names and keyword values case-insensitive;
// values are stored and shown canonically upper-cased, except the address):
//  * PIMAP_OUTBAND_ADDRESS     astring (phone number, email or SIP address,
//                              or a Web Push subscription: JSON, checked by
//                              ParseWebPushSubscription whenever it starts
//                              with "{" or the channel is WEBPUSH; BAD
//                              otherwise); stored verbatim, "" until set;
//                              at most kMaxOutbandAddress bytes.
//  * PIMAP_OUTBAND_CHANNEL     SMS, WAP_PUSH, UDP, WEBPUSH or NONE (WEBPUSH
//                              with an address set needs it to be a
//                              subscription: BAD; SMS and WAP_PUSH need it
//                              to be an MSISDN or WAP Push address,
//                              CheckEmnAddress: BAD, whichever of the two
//                              is set last). Any other value
//                              (JMS, MMS, GSMSMS, WAPWDP, SIP named by the
//                              drafts, or anything else) is unsupported: NO.
//  * PIMAP_INBAND_NEW_FORMAT,  NONE, or an RFC 3501 fetch argument: ALL, FAST,
//    PIMAP_OUTBAND_NEW_FORMAT  FULL, one fetch-att, or a parenthesised list
//                              of fetch-atts (macros are not allowed inside
//                              a list). fetch-atts: FLAGS INTERNALDATE
//                              RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID
//                              RFC822 RFC822.HEADER RFC822.TEXT MODSEQ
//                              BODY[section]<p.n> BODY.PEEK[section]<p.n>
//                              BINARY[.PEEK][part]<p.n> BINARY.SIZE[part].
//  * PIMAP_EVENT_FILTER        ALL, NONE or NEW.
// Errors: unknown name, missing or malformed value -> InvalidArgument (BAD);
// a well-formed but unsupported value -> FailedPrecondition (NO).
#ifndef PIMAP_CORE_SESSION_PREFS_H_
#define PIMAP_CORE_SESSION_PREFS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"

namespace pimap::session {

struct DevicePrefs {
  std::string outband_address;
  std::string outband_channel = "NONE";
  std::string inband_new_format = "NONE";  // canonical IMAP text
  std::string outband_new_format = "NONE";
  std::string event_filter = "ALL";

  // args after XSETPIMAPPREF: one name and its value. On error nothing
  // changes. `replay`: the durable form is being read back (Parse), and the
  // SMS/WAP_PUSH address check is skipped, so that an address stored before
  // that check existed does not cost the device all its preferences (the
  // EMN channel checks it again when it sends).
  absl::Status Set(const std::vector<imap::Arg>& args, bool replay = false);
  // args after XGETPIMAPPREF(S): a parenthesised list of names, or a single
  // name. Returns the payload of the untagged response without the
  // "* XGETPIMAPPREF " prefix: "(NAME VALUE NAME VALUE)", names in the order
  // asked (repeats kept). List values keep their parentheses; the address is
  // written as an astring via the writer. Unknown names -> InvalidArgument.
  absl::StatusOr<std::string> Get(const std::vector<imap::Arg>& args) const;

  // Durable form: "p PIMAP-PREFS 1\r\n" and one "p XSETPIMAPPREF <name>
  // <value>\r\n" per preference, replayed through Set() by Parse.
  std::string Serialize() const;
  static absl::StatusOr<DevicePrefs> Parse(absl::string_view text);

  bool operator==(const DevicePrefs&) const = default;
};

// The values Set() accepts per keyword preference, as XPROVISION lists them
// (name, "(V1 V2 ...)"); PIMAP_OUTBAND_CHANNEL's are all it stores (the
// channels served are the dispatcher's). Fetch items with a section are
// shown with an empty one ("BODY[]"). PIMAP_OUTBAND_ADDRESS is free-form.
std::vector<std::pair<std::string, std::string>> AcceptedPrefValues();

// Validates an RFC 3501 fetch argument (macro, one fetch-att, or a list)
// and renders it canonically (upper-cased keywords, single spaces).
absl::StatusOr<std::string> CanonicalFetchArg(const imap::Arg& arg);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_PREFS_H_
