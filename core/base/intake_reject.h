// The reasons the store-event intake (store/events) refuses a notification,
// apart from ShardCounters so that the parser's header stays light.
#ifndef PIMAP_CORE_BASE_INTAKE_REJECT_H_
#define PIMAP_CORE_BASE_INTAKE_REJECT_H_

#include <cstddef>
#include <cstdint>
#include <iterator>

namespace pimap {

// Why the store-event intake refused a notification with 400 (413 for the
// body): the `reason` label of pimap_intake_rejected_total.
enum class IntakeReject : uint8_t {
  kBodyTooLarge,  // body past the intake's limit (413)
  kBadJson,       // not JSON, not UTF-8, or not an object
  kBadField,      // a field missing or of the wrong type
  kBadUser,       // empty user, or control characters in it
  kUserTooLong,
  kBadMailbox,  // a mailbox name with control characters or bad UTF-8
  kMailboxTooLong,
  kBadFlag,  // a flag or keyword that is not an RFC 3501 flag
  kFlagTooLong,
  kTooManyFlags,      // flags + keywords of one event
  kTooManyEvents,     // events of one POST
  kTooManyMailboxes,  // entries of "status"
  kBadUid,            // uid / uidvalidity outside 1..2^32-1
  kCount
};
inline constexpr const char* kIntakeRejectNames[] = {
    "body_too_large",   "bad_json",        "bad_field",
    "bad_user",         "user_too_long",   "bad_mailbox",
    "mailbox_too_long", "bad_flag",        "flag_too_long",
    "too_many_flags",   "too_many_events", "too_many_mailboxes",
    "bad_uid"};
static_assert(std::size(kIntakeRejectNames) ==
              static_cast<size_t>(IntakeReject::kCount));

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_INTAKE_REJECT_H_
