// RelayClientState: what a stock IMAP client relayed to its own store link
// knows about its session, read off the relayed stream (its command lines and
// the first lines of the store's responses): the selected mailbox and how it
// was opened, UIDVALIDITY, FLAGS and PERMANENTFLAGS, HIGHESTMODSEQ and the
// extensions it enabled. The relay parks the client (relay_driver_park.cc)
// only when this says the session can be rebuilt on another link exactly;
// any command whose effect on the session it cannot reproduce (NOTIFY, a
// saved search result, an unknown extension) makes the session "sticky".
//
// The MSN <-> UID map is not tracked here: the relay lists it at park time.
#ifndef PIMAP_CORE_SESSION_RELAY_CLIENT_STATE_H_
#define PIMAP_CORE_SESSION_RELAY_CLIENT_STATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/session/notify_spec.h"
#include "core/session/parked_mailbox.h"

namespace pimap::session {

class RelayClientState {
 public:
  // Longest response line kept for inspection; longer ones are cut (a FLAGS
  // list that long is then "unknown", which only stops keyword announcement).
  static constexpr size_t kMaxLine = 8 * 1024;
  // Pipelined commands whose completion matters (SELECT, ENABLE...) tracked
  // at once; past it the session counts as sticky until the next SELECT.
  static constexpr size_t kMaxPending = 16;

  // A relayed command starts: its first line (tag and name included, no
  // CRLF). `has_literal`: the line ends in a literal the relay streams.
  void OnCommand(const imap::CommandHead& head, absl::string_view line,
                 bool has_literal);
  // The first line (no CRLF, possibly cut at kMaxLine) of a whole response
  // the store sent on the client's behalf.
  void OnResponseLine(absl::string_view line);

  // Whether a parked copy of this session can be rebuilt exactly: a mailbox
  // is selected, its UIDVALIDITY is known and nothing sticky happened.
  bool parkable() const;
  // Whether the client's NOTIFY (if any) names only mailboxes `pred` accepts.
  bool NotifyNamesOnly(absl::FunctionRef<bool(absl::string_view)> pred) const {
    return !notify_.has_value() || notify_->EveryName(pred);
  }
  const std::string& folder() const { return folder_; }
  bool condstore() const { return condstore_ || qresync_; }
  bool qresync() const { return qresync_; }
  bool read_only() const { return read_only_; }
  // The extensions the client ENABLEd (upper-cased, sorted, unique): a link
  // the session moves to must have exactly these enabled.
  const std::vector<std::string>& enabled() const { return enabled_; }
  // The link-pool profile for links of this session ("relay:" + enabled).
  std::string LinkProfile() const;
  // What ParkedMailbox needs, without the MSN map.
  ParkedClientState Snapshot() const;
  // The NOTIFY the store has accepted for the client and the relay can serve
  // while parked (anything else made the session sticky); null: none, or
  // NOTIFY NONE.
  const NotifySpec* notify() const {
    return notify_.has_value() ? &*notify_ : nullptr;
  }
  // The store's hierarchy delimiter from a LIST the client was sent; 0 until
  // one was.
  char delimiter() const { return delimiter_; }

 private:
  enum class Kind : uint8_t {
    kSelect,
    kExamine,
    kUnselect,
    kEnable,
    kNotify,         // a NOTIFY read into `notify`
    kNotifyUnknown,  // a NOTIFY not read: sticky if the store takes it
    kOther
  };
  struct Pending {
    std::string tag;
    Kind kind = Kind::kOther;
    std::string folder;                // kSelect/kExamine
    std::optional<NotifySpec> notify;  // kNotify
  };
  // What a SELECT in flight learns before its tagged OK.
  struct Opening {
    uint32_t uidvalidity = 0;
    uint64_t highest_modseq = 0;
    bool read_only = false;
    std::vector<std::string> flags;
    std::vector<std::string> permanent_flags;
  };

  void OnTagged(absl::string_view tag, absl::string_view status,
                absl::string_view code);
  void OnUntaggedStatus(absl::string_view code);
  void Enable(absl::string_view atom);
  bool selecting() const;

  std::vector<Pending> pending_;
  Opening opening_;  // valid while a SELECT/EXAMINE is pending
  std::string folder_;
  uint32_t uidvalidity_ = 0;
  uint64_t highest_modseq_ = 0;
  bool read_only_ = false;
  std::vector<std::string> flags_;
  std::vector<std::string> permanent_flags_;
  std::vector<std::string> enabled_;
  bool condstore_ = false;
  bool qresync_ = false;
  // A command changed the session in a way a new link cannot repeat: until
  // the next successful SELECT (saved search) or for good (NOTIFY, unknown).
  bool sticky_selected_ = false;
  bool sticky_session_ = false;
  std::optional<NotifySpec> notify_;
  char delimiter_ = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_RELAY_CLIENT_STATE_H_
