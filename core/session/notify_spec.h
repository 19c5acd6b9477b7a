// NotifySpec: a relayed client's NOTIFY (RFC 5465) request, read off its
// command line, in the part of the grammar a parked client can be served
// without the store's own NOTIFY: message events of the selected mailbox
// (rendered by ParkedMailbox), and for other mailboxes the STATUS and LIST
// lines a store sends (ParkedNotify). What needs the store's session state
// (the subscription list, FETCH attributes of new mail, annotations and
// metadata) is refused, and the relay then keeps the client's link.
#ifndef PIMAP_CORE_SESSION_NOTIFY_SPEC_H_
#define PIMAP_CORE_SESSION_NOTIFY_SPEC_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::session {

// The events asked for one mailbox filter. RFC 5465 section 5 wants
// MessageNew and MessageExpunge together (the store refuses one alone), so
// they are one bit here.
struct NotifyEvents {
  bool messages = false;      // MessageNew + MessageExpunge
  bool flags = false;         // FlagChange
  bool mailbox_name = false;  // MailboxName

  bool any() const { return messages || flags || mailbox_name; }
  NotifyEvents& operator|=(const NotifyEvents& o) {
    messages |= o.messages;
    flags |= o.flags;
    mailbox_name |= o.mailbox_name;
    return *this;
  }
};

class NotifySpec {
 public:
  // Mailbox names a spec may list, in all; longer requests stay relayed.
  static constexpr size_t kMaxNames = 256;

  // The arguments of a NOTIFY command as sent ("SET (selected (...)) ..." or
  // "NONE"; what follows "tag NOTIFY "). InvalidArgument: not NOTIFY syntax
  // (the store will say BAD). Unimplemented: valid, but asks for something
  // a parked client cannot be told (see the file comment).
  static absl::StatusOr<NotifySpec> Parse(absl::string_view args);

  // NOTIFY NONE: no events at all.
  bool none() const { return none_; }
  // The events asked for the selected mailbox (selected or
  // selected-delayed: the same while the client idles); none when the spec
  // has no such filter (a store then reports nothing of it during IDLE).
  const NotifyEvents& selected() const { return selected_; }
  // The events for `folder` (as the store spells it), which is not the
  // selected mailbox: the union of every filter that covers it. `delimiter`
  // is the hierarchy delimiter (0: unknown, '/' and '.' both count).
  NotifyEvents EventsFor(absl::string_view folder, char delimiter) const;
  // Whether some filter asks for MailboxName.
  bool wants_mailbox_names() const;
  // Whether `pred` holds for every mailbox a `subtree` or `mailboxes` filter
  // names (true when none does).
  bool EveryName(absl::FunctionRef<bool(absl::string_view)> pred) const;
  // The command that sets this spec again on another link, without the
  // STATUS option unless `with_status` (then the store reports the status of
  // every covered mailbox at once). Empty for NOTIFY NONE.
  std::string SetCommand(bool with_status) const;

 private:
  enum class Scope { kPersonal, kSubtree, kMailboxes };
  struct Filter {
    Scope scope = Scope::kPersonal;
    std::vector<std::string> names;
    NotifyEvents events;
  };

  bool none_ = false;
  NotifyEvents selected_;
  std::vector<Filter> filters_;
  std::string groups_;  // the event groups as sent (after "SET [STATUS] ")
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_NOTIFY_SPEC_H_
