// XPROVISION's answer (provision.h).
#include "core/session/provision.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/imap/writer.h"
#include "core/session/filter.h"
#include "core/session/prefs.h"

namespace pimap::session {

absl::StatusOr<std::string> ProvisionLines(const std::vector<imap::Arg>& args,
                                           absl::string_view device,
                                           const ProvisionOffer& offer,
                                           bool secure) {
  // R01: "XPROVISION" SP device-id [SP notif-id]; its only example has no
  // argument, and the device id is the login's (protocol.md §2.3, §3.1).
  if (args.size() > 2) {
    return absl::InvalidArgumentError(
        "XPROVISION takes at most a device id and a notification id");
  }
  for (const imap::Arg& a : args) {
    if (!a.is_astring()) {
      return absl::InvalidArgumentError(
          "XPROVISION: the device id and notification id are strings");
    }
  }
  if (!args.empty() && args[0].value != device) {
    return absl::FailedPreconditionError(
        "can't provision this device: not the device logged in");
  }
  const bool has_key = !offer.vapid_public_key.empty();
  if (has_key && !secure) {
    return absl::PermissionDeniedError(
        "XPROVISION carries key material: only over TLS");
  }
  std::vector<std::string> channels = offer.channels;
  channels.push_back("NONE");
  std::string out =
      absl::StrCat("* XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL (",
                   absl::StrJoin(channels, " "), ")\r\n");
  for (const auto& [name, values] : AcceptedPrefValues()) {
    if (name == "PIMAP_OUTBAND_CHANNEL") continue;  // what is served, above
    absl::StrAppend(&out, "* XPROVISION XPIMAPPREF ", name, " ", values,
                    "\r\n");
  }
  absl::StrAppend(&out, "* XPROVISION XFILTER ", AcceptedFilterKeys(), "\r\n");
  if (has_key) {
    absl::StrAppend(&out, "* XPROVISION PIMAP_VAPID_KEY (",
                    offer.vapid_public_key, ")\r\n");
  }
  return out;
}

absl::StatusOr<std::string> ProvisionResponse(const imap::Command& command,
                                              absl::string_view device,
                                              const ProvisionOffer& offer,
                                              bool secure) {
  absl::StatusOr<std::string> lines =
      ProvisionLines(command.args, device, offer, secure);
  if (absl::IsInvalidArgument(lines.status())) return lines.status();
  std::string out;
  if (absl::IsPermissionDenied(lines.status())) {
    imap::AppendTaggedStatus(&out, command.tag, "NO", "PRIVACYREQUIRED",
                             lines.status().message());
  } else if (!lines.ok()) {
    imap::AppendTaggedStatus(&out, command.tag, "NO", "",
                             lines.status().message());
  } else {
    out = *std::move(lines);
    imap::AppendTaggedStatus(&out, command.tag, "OK", "",
                             "XPROVISION completed");
  }
  return out;
}

}  // namespace pimap::session
