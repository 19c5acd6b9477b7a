// Text helpers between a device's commands and the store's responses: parsed
// arguments rendered back for the store (MSN sets inside SEARCH programs turned
// into UID sets from the device's view), and the few fields the session engine
// reads out of store responses (UID of a FETCH, response name, MODSEQ, flags).
#ifndef PIMAP_CORE_SESSION_STORE_TEXT_H_
#define PIMAP_CORE_SESSION_STORE_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/session/uid_view.h"

namespace pimap::session {

// Renders a parsed argument back to IMAP text for the store. Strings that
// cannot be quoted go as non-synchronising literals: the store must not wait
// for "+". To a device (`to_device`), a literal is a response's: "{n}" (RFC
// 3501 §4.3).
void RenderArg(std::string* out, const imap::Arg& arg, bool to_device = false);
// args[from..] separated by spaces.
std::string RenderArgs(const std::vector<imap::Arg>& args, size_t from,
                       bool to_device = false);
// "1:3,7" from UID ranges.
std::string SetOf(const std::vector<std::pair<uint32_t, uint32_t>>& ranges);
// A mailbox name as an IMAP string.
std::string QuotedMailbox(const std::string& name);

// Rewrites a device's SEARCH program for the store: message-sequence sets are the
// device's MSNs, which the store does not know, so each becomes "UID <uids>" from
// the device's view. Arguments of keys that take them are copied as they are.
void RenderSearchKeys(const std::vector<imap::Arg>& args, size_t from,
                      const UidView& view, std::string* out);

// "UID 17" inside the first line of a FETCH response.
std::optional<uint32_t> FetchUid(absl::string_view line);

// "* 12 FETCH ..." → {numbered, "FETCH", " FETCH (...)"}; "* SEARCH ..." → {"SEARCH"}.
struct Untagged {
  bool numbered = false;
  std::string name;
  absl::string_view after_number;  // " FETCH (...)" for numbered responses
};
Untagged ParseUntagged(absl::string_view line);

// Removes " MODSEQ (n)" (or "MODSEQ (n) ") from a FETCH line. True if the
// line held nothing else but the message's UID ("* 3 FETCH (UID 7)"): the
// echo a CONDSTORE store sends for STORE .SILENT (RFC 7162 §3.2), which a
// device without CONDSTORE must not see.
bool StripModseq(std::string* line);

// Flags as one comparable string: sorted, without \Recent (session-specific).
std::string FlagKey(std::vector<std::string> flags);

// The flag list of a FETCH line ("FLAGS (a b)"), if it has one.
std::optional<std::vector<std::string>> FetchFlags(absl::string_view line);

// What the gateway reads out of the responses it collects for its own jobs
// (device_driver_responses.cc). `body`: the response without its CRLF.
//
// "* SEARCH 4 9" or "* SORT 9 4": the numbers, appended to `numbers` in the
// store's order; a MODSEQ search's "(MODSEQ n)" (RFC 7162 §3.1.5) sets
// `modseq` to "n" (left as it is without one).
void ParseSearchNumbers(absl::string_view body, std::vector<uint32_t>* numbers,
                        std::string* modseq);
// "* ESEARCH (TAG ..) UID ALL 4:6,9": the UIDs, appended to `uids` while it
// holds fewer than `cap` (a store's answer stays bounded). Nothing without an
// ALL or with a malformed set.
void AppendEsearchAll(absl::string_view body, std::vector<uint32_t>* uids,
                      size_t cap);
// "* ESEARCH (TAG ..) UID COUNT 3": the count (0 when unreadable); nullopt
// without a COUNT.
std::optional<uint32_t> EsearchCount(absl::string_view body);
// A "* STATUS" line with its MESSAGES item set to `messages` (as it was when
// it has none).
std::string WithStatusMessages(absl::string_view line, uint32_t messages);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_STORE_TEXT_H_
