// ParkedMailbox: the selected mailbox of a stock IMAP client whose IDLE the
// gateway holds without a store connection ("parked"). It owns what the client
// knows (UIDVALIDITY, its MSN <-> UID map, the HIGHESTMODSEQ it is known to
// reflect, CONDSTORE/QRESYNC) and renders, from UID-level store events, exactly
// the untagged lines the store would have sent the client meanwhile, with the
// client's own MSNs. At unpark it turns the store's answer to a resync SELECT
// into what the client missed, after which the store link's numbering and the
// client's agree. Transport-free: the caller owns the link, the socket, the
// keepalive and the BYE.
//
// Dovecot 2.3 (observed) and RFC 3501/7162 decide the wire form in IDLE:
//   plain client      * n FETCH (FLAGS (...))
//   CONDSTORE client  * n FETCH (UID u MODSEQ (m) FLAGS (...))
//                     (RFC 7162 section 3.1 wants UID and MODSEQ; Dovecot 2.3
//                     omits the UID, which no client can depend on)
//   QRESYNC client    the same, and "* VANISHED u" instead of "* n EXPUNGE"
//   a new keyword     "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" first
// Per-message flags are not kept (too big): flag changes are rendered per event
// from the event's full flag list, and the resync asks the store what changed
// since the parked HIGHESTMODSEQ (QRESYNC) instead of diffing flags.
#ifndef PIMAP_CORE_SESSION_PARKED_MAILBOX_H_
#define PIMAP_CORE_SESSION_PARKED_MAILBOX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/response.h"
#include "core/session/event.h"
#include "core/session/uid_view.h"

namespace pimap::session {

// What the client knows about its selected mailbox at park time.
struct ParkedClientState {
  std::string folder;  // the mailbox name as the store spells it
  uint32_t uidvalidity = 0;
  UidView view;  // the client's MSN -> UID map
  // A HIGHESTMODSEQ the view and every flag the client was told reflect (the
  // SELECT's, or any earlier one: older is safe, newer is not). 0: unknown;
  // the unpark then lists the whole mailbox.
  uint64_t highest_modseq = 0;
  bool condstore = false;  // the client enabled CONDSTORE (or QRESYNC)
  bool qresync = false;    // the client enabled QRESYNC (implies CONDSTORE)
  bool read_only = false;  // EXAMINE: the unpark opens it read-only too
  // The last "* FLAGS" list and PERMANENTFLAGS the client saw; empty when
  // unknown (then new keywords are not announced).
  std::vector<std::string> mailbox_flags;
  std::vector<std::string> permanent_flags;
  char delimiter = 0;  // hierarchy delimiter; 0: unknown ('/' and '.' apply)
  // What the client asked to hear of its selected mailbox during IDLE: all
  // of it, unless its NOTIFY (RFC 5465) said otherwise. What it is not told
  // while parked, the unpark's resync tells it.
  bool report_messages = true;  // EXISTS, EXPUNGE / VANISHED
  bool report_flags = true;     // FETCH FLAGS
};

// What the store link used for the unpark offers.
struct ResyncLink {
  bool qresync_enabled = false;  // ENABLE QRESYNC is done on the link
  bool esearch = false;          // the store has ESEARCH (RFC 4731)
};

// The commands of an unpark, without tags, sent in order on the link.
struct ResyncPlan {
  bool qresync = false;  // a QRESYNC SELECT; else the mailbox is listed
  std::vector<std::string> commands;
};

// Adds the UIDs of a "* SEARCH ..." or "* ESEARCH ... ALL <set>" response
// (a UID listing of the mailbox) to *uids. False when it cannot serve as a
// listing: a saved result, a '*', or more than `max_uids` UIDs in all.
bool AddListedUids(const imap::Response& r, int64_t max_uids, UidView* uids);

class ParkedMailbox {
 public:
  enum class State {
    kParked,       // Apply() renders store events for the client
    kResyncing,    // the resync commands run: feed OnResyncResponse()
    kNeedUidList,  // the answers did not add up: send uid_list_command(),
                   // feed its responses and call FinishResync() again
    kSynced,       // the client's view is the link's; relay from here on
    kDisconnect,   // the client must get "* BYE <bye_reason()>"
  };

  // Flag changes remembered per parked period, to not repeat them at the
  // resync; past this, the resync repeats the store's changes (harmless:
  // FLAGS are idempotent) rather than keep more.
  static constexpr size_t kMaxToldFlags = 1024;
  // The client's FLAGS list grows by announced keywords up to this many
  // flags; past it, new keywords are no longer announced.
  static constexpr size_t kMaxKeywords = 256;
  // UID-list rounds before the resync gives up (the mailbox keeps changing).
  static constexpr int kMaxUidListRounds = 3;

  // InvalidArgument for an empty folder or a zero UIDVALIDITY.
  static absl::StatusOr<ParkedMailbox> Create(ParkedClientState state);

  ParkedMailbox(ParkedMailbox&&);
  ParkedMailbox& operator=(ParkedMailbox&&);
  ~ParkedMailbox();

  State state() const { return state_; }
  const std::string& bye_reason() const { return bye_reason_; }
  const std::string& folder() const { return folder_; }
  uint32_t uidvalidity() const { return uidvalidity_; }
  // The client's MSN -> UID map as it stands after what was rendered.
  const UidView& view() const { return view_; }
  // The highest MODSEQ known: the parked one, raised by events and the
  // resync.
  uint64_t highest_modseq() const { return highest_modseq_; }
  bool condstore() const { return condstore_; }
  bool qresync() const { return qresync_; }
  // Approximate heap + object bytes (capacity planning, metrics).
  size_t MemoryBytes() const;

  // The untagged lines (CRLF-terminated) the store would have sent the client
  // for `event`, in order; empty for nothing. Only while kParked. Events of
  // other folders, duplicates, a UID not above the highest known as new and
  // flags of unknown UIDs give nothing. A UIDVALIDITY change or the folder
  // deleted or renamed moves to kDisconnect.
  std::string Apply(const StoreEvent& event);

  // The caller lost events for this folder (a watch gap, an uncovered
  // folder): a resync that lists the mailbox repeats every message's flags.
  void MarkEventsIncomplete() { flags_uncertain_ = true; }

  // Unpark: kParked -> kResyncing. With a HIGHESTMODSEQ and a QRESYNC link,
  // one "SELECT/EXAMINE <folder> (QRESYNC (<uidvalidity> <modseq> 1:<uid>))";
  // otherwise "SELECT/EXAMINE <folder>" then "UID FETCH 1:* (FLAGS)". Events
  // from here on are the link's to report, so Apply() renders no more.
  ResyncPlan BeginResync(const ResyncLink& link);
  // Every response the link gets while the resync commands run (tagged ones
  // too: a NO or BAD means the folder cannot be opened -> kDisconnect).
  void OnResyncResponse(const imap::Response& response);
  // After the tagged OK of the last command. Appends to `out` what the client
  // has not been told (FLAGS, expunges, flag changes, EXISTS, HIGHESTMODSEQ
  // for QRESYNC clients) and returns kSynced, or kNeedUidList (nothing
  // appended), or kDisconnect.
  State FinishResync(std::string* out);
  // The command for kNeedUidList (without a tag).
  std::string uid_list_command() const;
  // OnResyncResponse() for each of `responses`, then FinishResync().
  State Reconcile(const std::vector<imap::Response>& responses,
                  std::string* out);

 private:
  // A flag change told while parked: what the resync must not repeat.
  struct Told {
    uint64_t modseq = 0;      // 0: the event had none
    uint64_t flags_hash = 0;  // of the sorted flag list without \Recent
  };
  struct Resync;  // the resync's collected answers (only while unparking)

  explicit ParkedMailbox(ParkedClientState state);

  void Disconnect(absl::string_view reason);
  bool IsSelected(absl::string_view name) const;
  bool IsUnder(absl::string_view parent) const;  // a parent of the folder
  // "* n FETCH (...)" for a flag change of `uid` at `msn`, after "* FLAGS" /
  // PERMANENTFLAGS when it brings a keyword the client has not seen.
  void RenderFlags(uint32_t msn, uint32_t uid, uint64_t modseq,
                   const std::vector<std::string>& flags, std::string* out);
  void AnnounceKeywords(const std::vector<std::string>& flags,
                        std::string* out);
  void RememberTold(uint32_t uid, uint64_t modseq, uint64_t flags_hash);
  // Whether the client was told exactly this (or a later) state of `uid`.
  bool AlreadyTold(uint32_t uid, uint64_t modseq, uint64_t flags_hash) const;

  void OnResyncFetch(const imap::Response& r);
  void OnResyncStatus(const imap::Response& r);
  State Fail(absl::string_view reason);
  // Renders the settled answer and brings the view to the link's.
  void RenderResync(const std::vector<std::pair<uint32_t, uint32_t>>& expunged,
                    const std::vector<std::pair<uint32_t, uint32_t>>& fresh,
                    std::string* out);

  State state_ = State::kParked;
  std::string folder_;
  uint32_t uidvalidity_ = 0;
  UidView view_;
  bool condstore_ = false;
  bool qresync_ = false;
  bool read_only_ = false;
  char delimiter_ = 0;
  uint64_t park_modseq_ = 0;     // the resync baseline
  uint64_t highest_modseq_ = 0;  // the highest known
  uint64_t hms_told_ = 0;        // the last HIGHESTMODSEQ the client got
  uint32_t park_max_uid_ = 0;    // messages above it are new to the client
  uint32_t uid_floor_ = 0;       // highest UID ever known (new must exceed)
  bool flags_uncertain_ = false;
  bool told_overflow_ = false;
  bool report_messages_ = true;
  bool report_flags_ = true;
  std::vector<std::string> mailbox_flags_;
  std::vector<std::string> permanent_flags_;
  absl::flat_hash_map<uint32_t, Told> told_;
  std::unique_ptr<Resync> resync_;
  std::string bye_reason_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_PARKED_MAILBOX_H_
