// libFuzzer target: the store-events JSON (store/events/store_notification)
// the Dovecot push script posts to the intake. The first byte picks the
// default bounds or small ones (so the fuzzer reaches every refusal).
// Invariants: a refusal names a reason; an accepted notification carries only
// what may reach a device: user and mailbox names that pass IsMailboxName,
// flags that pass IsFlag, lists and names within the bounds, UIDs and
// UIDVALIDITYs of message events non-zero.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/imap/syntax.h"
#include "store/events/store_notification.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pimap::imap::IsFlag;
using pimap::imap::IsMailboxName;
using pimap::store::StoreNotification;
using pimap::store::StoreNotificationLimits;

void CheckFlags(const std::vector<std::string>& flags,
                const StoreNotificationLimits& limits) {
  FUZZ_CHECK(flags.size() <= limits.max_flags);
  for (const std::string& f : flags) {
    FUZZ_CHECK(IsFlag(f));
    FUZZ_CHECK(f.size() <= limits.max_flag_bytes);
  }
}

void CheckAccepted(const StoreNotification& n,
                   const StoreNotificationLimits& limits) {
  FUZZ_CHECK(IsMailboxName(n.user, limits.max_user_bytes));
  FUZZ_CHECK(n.service.size() <= limits.max_service_bytes);
  FUZZ_CHECK(n.events.size() <= limits.max_events);
  for (const pimap::session::StoreEvent& e : n.events) {
    FUZZ_CHECK(IsMailboxName(e.folder, limits.max_mailbox_bytes));
    if (!e.new_folder.empty()) {
      FUZZ_CHECK(IsMailboxName(e.new_folder, limits.max_mailbox_bytes));
    }
    CheckFlags(e.flags, limits);
    using pimap::session::EventKind;
    if (e.kind == EventKind::kNew || e.kind == EventKind::kFlags ||
        e.kind == EventKind::kExpunge) {
      FUZZ_CHECK(e.uid != 0 && e.uidvalidity != 0);
    }
    if (e.kind == EventKind::kFolderRenamed) FUZZ_CHECK(!e.new_folder.empty());
  }
  for (const pimap::store::FlagDelta& d : n.flag_deltas) {
    FUZZ_CHECK(IsMailboxName(d.folder, limits.max_mailbox_bytes));
    FUZZ_CHECK(d.uid != 0 && d.uidvalidity != 0);
    CheckFlags(d.added, limits);
    CheckFlags(d.removed, limits);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  StoreNotificationLimits limits;
  if ((data[0] & 1) != 0) {
    limits.max_events = 4;
    limits.max_status_mailboxes = 2;
    limits.max_flags = 3;
    limits.max_flag_bytes = 8;
    limits.max_user_bytes = 8;
    limits.max_mailbox_bytes = 12;
    limits.max_service_bytes = 4;
  }
  const absl::string_view json(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  pimap::IntakeReject reason = pimap::IntakeReject::kCount;
  auto n = pimap::store::ParseStoreNotification(json, limits, &reason);
  if (n.ok()) {
    CheckAccepted(*n, limits);
  } else {
    FUZZ_CHECK(reason < pimap::IntakeReject::kCount);
  }
  return 0;
}
