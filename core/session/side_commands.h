// One command of the gateway's own on a link borrowed from the pool, in a
// given mailbox, for a session whose own link must stay as its client left
// it: a regular session's XDELIVER of an original in a mailbox other than
// the client's selected one (relay_driver_xdeliver.cc). The mailbox is
// selected first (read-write) unless the lent link has it already; every
// response is collected whole; the link goes back to the pool before the
// answer is handed over, so the callback may destroy this object.
#ifndef PIMAP_CORE_SESSION_SIDE_COMMANDS_H_
#define PIMAP_CORE_SESSION_SIDE_COMMANDS_H_

#include <cstddef>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"

namespace pimap::session {

class SideCommands final : private StoreLinkClient {
 public:
  // An untagged response, whole (CRLFs included).
  using Untagged = absl::AnyInvocable<void(absl::string_view raw)>;
  // The command's end.
  struct Result {
    bool ok = false;  // it (and the SELECT before it) succeeded
    // The link was lost before the command's end (the store is unavailable,
    // not the command refused).
    bool lost = false;
    // An untagged response was larger than max_response_bytes and dropped.
    bool dropped = false;
    // The rest of its tagged status (the SELECT's when that failed; empty
    // when the link was lost).
    absl::string_view rest;
  };
  using Done = absl::AnyInvocable<void(const Result& result)>;

  // `lent` was borrowed from `pool` and is given back by this object.
  // A response larger than `max_response_bytes` is dropped (not handed on).
  SideCommands(StoreLinkPool* pool, PooledLink* lent,
               size_t max_response_bytes);
  ~SideCommands() override;
  SideCommands(const SideCommands&) = delete;
  SideCommands& operator=(const SideCommands&) = delete;

  // Once: `command` (untagged, one line) in `folder`.
  void Run(const std::string& folder, absl::string_view command,
           Untagged untagged, Done done);

 private:
  // StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override;
  void OnStoreDrained() override {}
  void OnStoreClosed(absl::Status reason) override;

  // Gives the link back, then hands the answer over (last: it may free this).
  void Finish(bool ok, bool lost, std::string rest);

  StoreLinkPool* pool_;
  PooledLink* lent_;  // null once given back
  size_t max_bytes_;
  std::string folder_;
  std::string select_tag_;  // empty: no SELECT sent (or it is answered)
  bool select_ok_ = true;
  std::string select_rest_;
  std::string command_tag_;
  std::string collected_;
  bool overflow_ = false;
  bool dropped_ = false;  // a response was dropped (overflow_)
  Untagged untagged_;
  Done done_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_SIDE_COMMANDS_H_
