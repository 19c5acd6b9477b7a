// The OMA E-Mail Notification (OMA-Push-EMN-V1_0, 2002) of a wake-up, in its
// two forms: the textual XML document and its binary WBXML encoding (WAP-192
// WBXML with the EMN token tables), which an operator's SMSC or WAP Push
// Proxy Gateway carries to the phone. Pure encoding; docs/emn.md says what of
// the specifications was followed and why.
#ifndef PIMAP_BINDINGS_EMN_EMN_DOCUMENT_H_
#define PIMAP_BINDINGS_EMN_EMN_DOCUMENT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pimap::emn {

inline constexpr absl::string_view kEmnWbxmlType =
    "application/vnd.wap.emn+wbxml";
inline constexpr absl::string_view kEmnTextType = "text/vnd.wap.emn+xml";

// WBXML header values used (WAP-192 §5.4 and the EMN spec's §9):
inline constexpr uint8_t kWbxmlVersion13 = 0x03;  // WBXML 1.3
inline constexpr uint8_t kEmnPublicId = 0x0D;  // "-//WAPFORUM//DTD EMN 1.0//EN"
inline constexpr uint8_t kCharsetUtf8 = 0x6A;  // IANA MIBenum 106

// <?xml version="1.0"?>, the DOCTYPE, and
// <emn mailbox="mailat:MAILBOX" timestamp="YYYY-MM-DDThh:mm:ssZ"/>
// (the mailbox XML-escaped; control characters left out).
std::string EmnXml(absl::string_view mailbox, absl::Time when);

// The element alone, without prolog or DOCTYPE:
// <emn mailbox="mailat:MAILBOX" timestamp="YYYY-MM-DDThh:mm:ssZ"></emn>, the
// form the draft's examples carry in one datagram (the UDP channel).
std::string EmnElement(absl::string_view mailbox, absl::Time when);

// The same document in WBXML: header (version 1.3, public id 0x0D, UTF-8, no
// string table), the emn tag with attributes and no content, mailbox with
// the "mailat:" attribute-start token and the rest inline (".com", ".edu",
// ".net", ".org" as the spec's attribute-value tokens), timestamp as OPAQUE
// binary-coded date (see EmnTimestamp).
std::string EmnWbxml(absl::string_view mailbox, absl::Time when);

// The OPAQUE data of a timestamp: YYYYMMDDhhmmss as 7 octets of two decimal
// digits each (0x20 0x02 for 2002), trailing octets of value zero left out
// (EMN 1.0 §9.3, as the SI "created" attribute: WAP-167 §8.2.2).
std::string EmnTimestamp(absl::Time when);

}  // namespace pimap::emn

#endif  // PIMAP_BINDINGS_EMN_EMN_DOCUMENT_H_
