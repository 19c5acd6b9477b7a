// What ParkedMailbox's two halves (parked_mailbox.cc: events while parked;
// parked_mailbox_resync.cc: the unpark) share: the resync's collected answers,
// the BYE reasons and flag-list helpers. Not for other users: the session
// engine has its own flag helpers in store_text.h.
#ifndef PIMAP_CORE_SESSION_PARKED_MAILBOX_INTERNAL_H_
#define PIMAP_CORE_SESSION_PARKED_MAILBOX_INTERNAL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "core/session/parked_mailbox.h"
#include "core/session/uid_view.h"

namespace pimap::session::parked_internal {

// "* BYE" reasons: the client's state cannot be carried on, as a store would
// end its session (Dovecot says "IMAP session state is inconsistent, please
// relogin." for all of them).
inline constexpr absl::string_view kByeUidvalidity =
    "Selected mailbox UIDVALIDITY changed, please relogin.";
inline constexpr absl::string_view kByeDeleted =
    "Selected mailbox was deleted, please relogin.";
inline constexpr absl::string_view kByeRenamed =
    "Selected mailbox was renamed, please relogin.";
inline constexpr absl::string_view kByeInconsistent =
    "IMAP session state is inconsistent, please relogin.";
inline constexpr absl::string_view kByeUnsettled =
    "Selected mailbox kept changing while resynchronising, please relogin.";

// The flags a parked client is shown: the store's list without \Recent and
// without anything that is not a flag (imap::IsFlag): anything else would
// break its parse or inject a line.
std::vector<std::string> ShownFlags(const std::vector<std::string>& flags);
// Identifies a flag set: case-insensitive, order and duplicates ignored.
uint64_t FlagsHash(const std::vector<std::string>& flags);
// Case-insensitive membership.
bool HasFlag(const std::vector<std::string>& list, absl::string_view flag);
// "* OK [PERMANENTFLAGS (...)] Flags permitted.\r\n"
void AppendPermanentFlags(const std::vector<std::string>& flags,
                          std::string* out);

}  // namespace pimap::session::parked_internal

namespace pimap::session {

// What the store answered, by UID. Lives only while unparking.
struct ParkedMailbox::Resync {
  struct Change {
    uint64_t modseq = 0;
    std::vector<std::string> flags;
  };

  // Everything learnt about the mailbox the link had selected before
  // ("* OK [CLOSED]" says what came so far was about that one).
  void ForgetMailbox() {
    Resync blank;
    blank.qresync = qresync;
    blank.esearch = esearch;
    blank.rounds = rounds;
    blank.list_command = std::move(list_command);
    blank.listing = listing;
    *this = std::move(blank);
  }
  // A new UID-list round: the list and its staleness start over; expunges
  // and flag changes already learnt stay true.
  void StartListRound(std::string command) {
    ++rounds;
    listing = absl::StartsWith(command, "UID FETCH");
    list_command = std::move(command);
    got_list = false;
    list_stale = false;
    listed = UidView();
  }

  bool qresync = false;  // a QRESYNC SELECT: FETCHes are changes since
  bool esearch = false;
  int rounds = 0;            // UID-list rounds asked so far
  std::string list_command;  // this round's UID-list command, if any
  bool listing = false;      // FETCH responses list every message
  bool failed = false;       // a tagged NO/BAD
  std::string fail_reason;
  uint32_t uidvalidity = 0;
  uint64_t highest_modseq = 0;
  bool has_count = false;
  int64_t link_count = 0;  // messages on the link: EXISTS minus expunges since
  bool got_flags = false;
  std::vector<std::string> mailbox_flags;
  bool got_permanent = false;
  std::vector<std::string> permanent_flags;
  std::string permanent_text;
  UidView vanished;  // client UIDs the store reports expunged
  bool got_list = false;
  UidView listed;              // every UID on the link (a UID-list round)
  bool list_stale = false;     // the link renumbered unseen: list again
  bool flags_by_msn = false;   // a FETCH without UID: list every flag
  bool inexpressible = false;  // a message below the client's newest appeared
  UidView fresh;               // UIDs above the client's, from FETCH
  absl::btree_map<uint32_t, Change> changes;  // flag changes by UID
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_PARKED_MAILBOX_INTERNAL_H_
