// XPROVISION in a P-IMAP session (device_driver.h): the offer is the shard's
// out-of-band dispatcher's (the channels configured, the VAPID public key),
// the answer provision.h's; whether key material may go is the binding's to
// say (DeviceOutput::Secure).
#include "absl/status/status.h"
#include "core/session/device_driver.h"
#include "core/session/provision.h"

namespace pimap::session {

void DeviceDriver::Provision(const imap::Command& command) {
  ProvisionOffer offer;
  if (const OutbandDispatcher* outband = registry().outband();
      outband != nullptr) {
    offer.channels = outband->Channels();
    offer.vapid_public_key = outband->vapid_public_key();
  }
  const bool secure = output_ != nullptr && output_->Secure();
  absl::StatusOr<std::string> out =
      ProvisionResponse(command, device_, offer, secure);
  if (!out.ok()) {
    WriteBad(command.tag, out.status().message());
    return;
  }
  Write(*std::move(out));
}

}  // namespace pimap::session
