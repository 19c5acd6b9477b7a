// XFILTER (protocol.md §3.3, the R01 form with the [Modern] readings): the
// parsing and validation of XFILTER commands, the per-folder filter spec, and
// a device's view/notification filters with their "ALL folders" defaults.
//
// Readings adopted here:
//  * filter-kind V, N, B; P is accepted as an alias of N (R03), and GET
//    responses always say N.
//  * NONE and NOT ALL (R03) both mean "matches nothing"; GET says NONE.
//  * Search keys are RFC 3501 §6.4.4 keys with their argument types, plus the
//    R01 extension FORWARDED / UNFORWARDED, stored as KEYWORD / UNKEYWORD
//    $Forwarded (protocol.md §7 #26). CHARSET is not part of XFILTER.
//  * DAYSBEFORETODAY n (n >= 0, also written without the space,
//    "DAYSBEFORETODAY7", §7 #13) may appear anywhere in the top-level list and
//    is AND-ed with the other keys; several are AND-ed, i.e. the smallest
//    wins. It is refused inside NOT, OR and parentheses, where it could not be
//    AND-ed.
//  * The mailbox "ALL" must be quoted to be a mailbox: the atom ALL (any case)
//    is the all-folders target. A leading "~/" is stripped (§7 #7) and INBOX
//    is case-insensitive.
//  * Filters on mutable properties (SEEN, FLAGGED, ...) are syntactically
//    valid and accepted; R01's "immutable only" advice is the client's
//    business.
#ifndef PIMAP_CORE_SESSION_FILTER_H_
#define PIMAP_CORE_SESSION_FILTER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/imap/command.h"

namespace pimap::session {

enum class FilterKind { kView, kNotification, kBoth };  // V, N (alias P), B

// One folder's filter. Exactly one of: none; all (and nothing else); or
// search_keys and/or days_before_today.
struct FilterSpec {
  bool none = false;  // NONE / NOT ALL: matches nothing
  bool all = true;    // ALL (the default view)
  // Validated search keys re-rendered canonically: keys upper-cased, strings
  // always quoted (or a literal when not quotable), dates as d-Mon-yyyy,
  // sequence sets as parsed. Redundant top-level ALL keys are dropped.
  // Excludes DAYSBEFORETODAY.
  std::string search_keys;
  std::optional<int> days_before_today;  // AND-ed with search_keys

  static FilterSpec All() { return FilterSpec{}; }
  static FilterSpec None() {
    FilterSpec s;
    s.none = true;
    s.all = false;
    return s;
  }

  // How GET shows it: "ALL", "NONE", or the keys followed by
  // "DAYSBEFORETODAY n".
  std::string ToImapText() const;
  // An IMAP SEARCH program the store can evaluate (for UID SEARCH):
  // ALL -> "ALL"; NONE -> "NOT ALL" (valid SEARCH syntax that matches
  // nothing, so a caller that does not short-circuit still gets an empty
  // result); DAYSBEFORETODAY n -> "SINCE <d-Mon-yyyy>", the civil date n days
  // before today's date in `tz` at `now` (SINCE compares INTERNALDATE's date,
  // i.e. INTERNALDATE >= that local midnight), appended after the keys.
  std::string ToSearchProgram(absl::Time now, absl::TimeZone tz) const;
  // For checks inside the gateway (e.g. a StoreEvent's internal_date): the
  // first instant the days filter admits, nullopt without a days filter.
  std::optional<absl::Time> DaysCutoff(absl::Time now, absl::TimeZone tz) const;

  bool operator==(const FilterSpec&) const = default;
};

struct XFilterCommand {
  std::string target;  // mailbox (normalised); empty when all_folders
  bool all_folders = false;
  FilterKind kind = FilterKind::kView;
  bool get = false;
  FilterSpec spec;  // unused for GET
};

// Parses the args of an XFILTER command (after the name). Errors are
// InvalidArgument with a message fit for "tag BAD <message>".
absl::StatusOr<XFilterCommand> ParseXFilter(const std::vector<imap::Arg>& args);

// The search keys and operators a filter may use, as XPROVISION lists them:
// "(ALL ANSWERED ... NOT OR FORWARDED UNFORWARDED DAYSBEFORETODAY NONE)".
std::string AcceptedFilterKeys();

// Validates and canonically renders a list of search keys (as used by XFILTER,
// without DAYSBEFORETODAY). Exposed for reuse by other search-taking commands.
absl::StatusOr<std::string> CanonicalSearchKeys(
    const std::vector<imap::Arg>& keys);

// A device's filters: per-folder overrides over "ALL folders" defaults.
class DeviceFilters {
 public:
  // R01 defaults: view ALL; the notification default is a server option.
  explicit DeviceFilters(FilterSpec default_notification = FilterSpec::None());

  // Applies a non-GET command (a GET is ignored). Target ALL sets the
  // default of that kind (both for B) and clears that kind's per-folder
  // overrides, as a new filter replaces the previous one everywhere.
  void Set(const XFilterCommand& cmd);
  // Whether Set(cmd) stays within the device's limits: at most `max_folders`
  // folders with their own filter, and a search program of at most
  // `max_program_bytes`. ResourceExhausted (its message fit for
  // "tag NO [LIMIT] <message>") otherwise; 0 means no limit.
  absl::Status CheckLimits(const XFilterCommand& cmd, size_t max_folders,
                           size_t max_program_bytes) const;

  const FilterSpec& View(absl::string_view folder) const;
  const FilterSpec& Notification(absl::string_view folder) const;

  // The untagged GET responses, without "\r\n", e.g. "* XFILTER INBOX V ALL".
  // A single-folder target gives that folder's line(s). Target ALL gives one
  // line per folder in the sorted union of `known_folders` (the session's
  // mailbox list) and the folders with an override; with no folder at all,
  // it shows the defaults under the target "ALL". B gives the V line, then
  // the N line, per folder. A mailbox named ALL is shown quoted. A spec with
  // a non-quotable string shows it as a literal (which contains CRLF).
  std::vector<std::string> GetLines(
      const XFilterCommand& get,
      const std::vector<std::string>& known_folders = {}) const;

  // Durable form: IMAP command lines, one per filter:
  //   "f PIMAP-FILTERS 1\r\n" then "f XFILTER ALL V <spec>\r\n",
  //   "f XFILTER ALL N <spec>\r\n" and one "f XFILTER <mailbox> V|N <spec>\r\n"
  // per override (mailboxes sorted), i.e. replayable through ParseXFilter.
  // Lines tagged "v" after them belong to other device settings stored in the
  // same text (virtual folders, vfolder.h): Parse hands them to `others`
  // (dropped when null) instead of refusing them.
  std::string Serialize() const;
  static absl::StatusOr<DeviceFilters> Parse(
      absl::string_view text, FilterSpec default_notification,
      std::vector<imap::Command>* others = nullptr);

  bool operator==(const DeviceFilters&) const = default;

 private:
  FilterSpec default_view_;
  FilterSpec default_notification_;
  absl::btree_map<std::string, FilterSpec> view_;
  absl::btree_map<std::string, FilterSpec> notification_;
};

namespace internal {

// Splits text made of complete IMAP command lines (CRLF-terminated,
// literals allowed) into parsed commands. Used by the durable forms of
// filters and prefs.
absl::StatusOr<std::vector<imap::Command>> ParseCommandScript(
    absl::string_view text);

// Appends a mailbox name as an astring, quoting "ALL" (any case) so that it
// cannot be read back as the all-folders target.
void AppendMailbox(std::string* out, absl::string_view mailbox);

}  // namespace internal

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_FILTER_H_
