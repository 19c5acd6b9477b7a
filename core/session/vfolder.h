// XPSEARCH (protocol.md §3.8, the [Modern] reading): a device's virtual
// folders, each a saved search over a backing folder. A virtual folder shows
// the backing folder's messages that match its search, with the backing
// folder's UIDs and UIDVALIDITY; STORE, EXPUNGE and the rest act on those
// backing messages. This file owns the parsing of XPSEARCH, the per-device
// set of virtual folders with its bounds and durable form, and the two pieces
// of logic a virtual folder needs: AND-ing its search with the device's view
// filter, and LIST's wildcard matching of its name.
#ifndef PIMAP_CORE_SESSION_VFOLDER_H_
#define PIMAP_CORE_SESSION_VFOLDER_H_

#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/session/filter.h"

namespace pimap::session {

struct VirtualFolder {
  std::string backing;  // the folder searched (INBOX spelled "INBOX")
  FilterSpec spec;      // its search, validated as XFILTER's keys

  bool operator==(const VirtualFolder&) const = default;
};

struct XPsearchCommand {
  std::string name;
  FilterSpec spec;
};

// Parses XPSEARCH's args: `name [CHARSET c] key...`. The keys are XFILTER's
// (FORWARDED, DAYSBEFORETODAY, NONE included). InvalidArgument (for BAD) on
// syntax; FailedPrecondition (for NO [BADCHARSET]) on a charset other than
// UTF-8 or US-ASCII, the only ones the keys are rendered in.
absl::StatusOr<XPsearchCommand> ParseXPsearch(
    const std::vector<imap::Arg>& args);

// `a` AND `b`: what a virtual folder shows under the device's view filter of
// its backing folder.
FilterSpec AndSpecs(const FilterSpec& a, const FilterSpec& b);

// RFC 3501 §6.3.8 wildcards: '*' matches anything, '%' anything but
// `delimiter` (0: a flat name, '%' matches anything too).
bool ListPatternMatches(absl::string_view pattern, absl::string_view name,
                        char delimiter);

class VirtualFolders {
 public:
  // A new virtual folder. AlreadyExists if `name` is one (or is INBOX);
  // ResourceExhausted past `max_count` folders or a search program of more
  // than `max_bytes` (0: no limit). Messages fit "tag NO [code] <message>".
  absl::Status Add(const std::string& name, VirtualFolder folder,
                   size_t max_count, size_t max_bytes);
  const VirtualFolder* Find(absl::string_view name) const;
  bool Remove(absl::string_view name);
  // False if `from` is not one or `to` already is.
  bool Rename(absl::string_view from, const std::string& to);
  // Names matching a LIST pattern (reference + pattern), sorted.
  std::vector<std::string> Matching(absl::string_view pattern) const;
  bool empty() const { return folders_.empty(); }

  // Durable form, appended to the device's filters (DeviceFilters::Serialize):
  // one "v XPSEARCH <name> <backing> <spec>\r\n" per folder.
  std::string Serialize() const;
  // Restores from those commands (DeviceFilters::Parse hands them over).
  static absl::StatusOr<VirtualFolders> Parse(
      const std::vector<imap::Command>& commands);

  bool operator==(const VirtualFolders&) const = default;

 private:
  absl::btree_map<std::string, VirtualFolder> folders_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_VFOLDER_H_
