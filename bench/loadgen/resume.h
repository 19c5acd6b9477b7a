// The `resume` scenario's side channel to the store: a blocking IMAP client that seeds
// mailboxes, makes the events the parked devices miss (APPEND, flag changes, expunges,
// each recorded per user), and reads every user's INBOX (UIDs and flags) afterwards: the
// truth each resumed device's model is compared with.
#ifndef PIMAP_BENCH_LOADGEN_RESUME_H_
#define PIMAP_BENCH_LOADGEN_RESUME_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/loadgen/options.h"

namespace pimap::bench {

// One message as the device model and the store truth see it. flags: normalised
// (sorted, space-separated, without \Recent).
struct ModelMsg {
  uint32_t uid = 0;  // 0: not known to the device (new mail announced by EXISTS only)
  std::string flags;
  bool flags_known = false;
};

// "\Seen \Recent \Answered" -> "\Answered \Seen".
std::string NormalizeFlags(const std::string& flags_text);

// Parses "UID u" and "FLAGS (...)" out of the attribute list of an untagged FETCH
// (the text after "FETCH "). Returns false when the list has neither.
bool ParseFetchAttrs(const std::string& attrs, uint32_t* uid, bool* has_flags,
                     std::string* flags);

enum class EventKind : uint8_t { kNew, kFlags, kExpunge };

struct PlannedEvent {
  int user = 0;
  EventKind kind = EventKind::kNew;
};

struct DoneEvent {
  EventKind kind;
  uint32_t uid;
  std::string flags;  // kFlags: the message's flags afterwards
};

struct StoreEventsResult {
  std::vector<std::vector<DoneEvent>> done;      // per user, in order
  std::vector<std::vector<ModelMsg>> truth;      // per user, INBOX after the events
  int64_t new_messages = 0, flag_changes = 0, expunges = 0;
  std::vector<std::string> errors;               // first few
  int64_t failed = 0;
  double seconds = 0;
};

// Appends `per_user` messages to every user's INBOX (threads over users).
StoreEventsResult SeedMailboxes(const Options& o, int users, int per_user);

// Runs `plan` against the store (logging in as each user with o.password), then reads
// every user's INBOX. Users are spread over `threads` store connections.
StoreEventsResult RunStoreEvents(const Options& o, int users,
                                 const std::vector<PlannedEvent>& plan, uint64_t seed,
                                 int threads);

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_RESUME_H_
