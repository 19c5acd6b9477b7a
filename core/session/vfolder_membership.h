// Whether a flag change moves a message into or out of a virtual folder's
// view (XPSEARCH, docs/xpsearch.md "Events and resume"), told from the
// message's new flags alone, without asking the store. The search is read
// as a conjunction of its top-level keys: a flag key (SEEN, UNFLAGGED,
// KEYWORD $Forwarded, ...) that the new flags fail takes the message out,
// whatever the other keys say; a search made of flag keys only, all of which
// hold, takes it in. With NOT, OR or parentheses (or \Recent, which is
// per-session) nothing can be told here and membership stays as it was.
#ifndef PIMAP_CORE_SESSION_VFOLDER_MEMBERSHIP_H_
#define PIMAP_CORE_SESSION_VFOLDER_MEMBERSHIP_H_

#include <string>
#include <vector>

#include "core/session/filter.h"

namespace pimap::session {

enum class FlagVerdict {
  kUnknown,  // the flags do not decide (or the search has no flag key)
  kFails,    // a message with these flags does not match
  kMatches,  // a message with these flags matches (flag keys only)
};

FlagVerdict MatchFlags(const FilterSpec& spec,
                       const std::vector<std::string>& flags);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_VFOLDER_MEMBERSHIP_H_
