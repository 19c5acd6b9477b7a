// XCONVERT / XUIDCONVERT (protocol.md §3.7), the P-IMAP draft's attachment
// conversion, with RFC 5259 CONVERT semantics inside:
//
//   C: a1 XCONVERT 2 BODY[3] as text/plain        (also XUIDCONVERT <uid>,
//   S: * 2 XCONVERT {1234}                          and R02's UID XCONVERT)
//   S: <1234 octets, transfer encoding removed, converted>
//   S: a1 OK XCONVERT completed
//
// This file owns what is XCONVERT's own and needs no driver: the command's
// parsing, the store FETCH that gets the part (its MIME header and its
// octets, bounded), reading that FETCH's answer, and the untagged response
// (a literal, or literal8 "~{n}" for binary data, RFC 3516). The driver
// (device_driver_convert.cc) runs it; core/convert converts.
#ifndef PIMAP_CORE_SESSION_XCONVERT_H_
#define PIMAP_CORE_SESSION_XCONVERT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"

namespace pimap::session {

// A parsed XCONVERT; its fields stay with the running command
// (CommandState::convert) until it is answered.
struct XConvertRequest {
  std::string name;     // the device's command name, for the OK text
  bool uid = false;     // the number is a UID
  uint32_t number = 0;  // MSN or UID, as the device sent it
  std::string section;  // "3", "1.2"
  std::string to;       // "text/plain", lower-cased, parameters dropped
  // Filled in while it runs.
  uint32_t target_uid = 0;
  uint64_t id = 0;    // tells a late converter result from a newer command's
  std::string fetch;  // the store's FETCH response (literals inline)
};

// Parses the arguments from `args[from]` on: <number> BODY[<part>] as
// <type>/<subtype>[;params]. BODY.PEEK[...] is accepted (R06); conversion
// never sets \Seen. InvalidArgument (for BAD) on anything else.
absl::StatusOr<XConvertRequest> ParseXConvert(
    const std::vector<imap::Arg>& args, size_t from, bool uid);

// The store command (no tag): the part's MIME header and at most
// `max_input_bytes` + 1 of its octets (one more tells "too large").
std::string XConvertFetchCommand(const XConvertRequest& request,
                                 size_t max_input_bytes);

// What the store answered: the part's MIME header and octets.
struct FetchedPart {
  std::string mime_header;
  std::string body;
  bool has_body = false;  // NIL, missing or both empty: no such part
};
FetchedPart ParseXConvertFetch(absl::string_view response,
                               absl::string_view section);

// "* <msn> XCONVERT {n}\r\n<data>\r\n"; "~{n}" when `binary`.
std::string RenderXConvert(uint32_t msn, absl::string_view data, bool binary);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_XCONVERT_H_
