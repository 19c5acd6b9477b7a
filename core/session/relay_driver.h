// The session engine of a regular (relayed) session: a device that logged in
// without "#device" gets its own store connection, and every command but the
// few the gateway answers (CAPABILITY, COMPRESS, the pre-login and P-IMAP
// ones) goes to the store verbatim, literals streamed both ways and IDLE end to
// end. This class owns what only such a relay needs: the store link, the IDLE
// and LOGOUT in flight and pausing the store while the device reads slowly.
// Ordering and input holding are CommandRouter's; it knows no socket, no TLS
// and no framing, like DeviceDriver.
#ifndef PIMAP_CORE_SESSION_RELAY_DRIVER_H_
#define PIMAP_CORE_SESSION_RELAY_DRIVER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/imap/command.h"
#include "core/imap/limits.h"
#include "core/session/command_router.h"
#include "core/session/device_driver.h"
#include "core/session/store_link.h"

namespace pimap::session {

class RelayDriver final : public CommandRouter, private StoreLinkClient {
 public:
  // `user` is for logs only.
  RelayDriver(ShardCounters* counters, DeviceOutput* output,
              const imap::ParserLimits& limits, std::string user);

  // Takes `link` (logged in as the user) and answers the login tagged
  // `login_tag` with the capabilities after login, then LoginDone(true).
  void Start(StoreLink* link, absl::string_view login_tag);

  // SessionDriver
  void OnOutputDrained() override;

 private:
  ~RelayDriver() override;

  // CommandRouter
  Opening OpenLine(absl::string_view line,
                   const imap::LiteralHeader* literal) override;
  bool IsLocal(absl::string_view name) const override {
    return AlwaysLocal(name);
  }
  void Execute(const imap::Command& command) override;
  void BeginRelayed(const imap::CommandHead& head) override;
  size_t SendUp(absl::string_view bytes) override;
  void DetachStore() override;
  const std::vector<std::string>& store_capabilities() const;

  // StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override;
  void OnStoreDrained() override;
  void OnStoreClosed(absl::Status reason) override;

  StoreLink* link_ = nullptr;  // null once closed or lost
  std::string user_;
  std::string idle_tag_;    // a relayed IDLE whose end the device has not sent
  std::string logout_tag_;  // a relayed LOGOUT: its end closes the device
  bool store_paused_ = false;  // not reading the store: the device lags
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_RELAY_DRIVER_H_
