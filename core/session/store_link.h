// The seam between a device's connection (bindings/) and the message store (store/):
// what a logged-in connection needs from the store side, declared in core so that
// neither side includes the other. The relay of the foundation issue uses it
// directly; the P-IMAP session model will sit between the two behind the same seam.
#ifndef PIMAP_CORE_SESSION_STORE_LINK_H_
#define PIMAP_CORE_SESSION_STORE_LINK_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/client_address.h"

namespace pimap::session {

// Credentials for the store login. `password` is a secret: never log it.
struct StoreCredentials {
  std::string user;  // the user key, without "#device" (or the master user)
  std::string password;
  // Non-empty: log in as `user` (a store master user) on behalf of `authzid`
  // (SASL PLAIN authorization identity).
  std::string authzid;
  // Not part of the login: pooled links are shared only among borrowers of
  // the same profile, i.e. that set the same session state a link cannot
  // undo (a stock client's ENABLEd extensions). Empty for P-IMAP sessions.
  std::string profile = {};
  // Not part of the login nor of a pooled link's identity either: the device
  // whose command opens the link. Its address goes to the store in ID
  // (x-originating-ip, x-connected-ip) before the login, so the store logs
  // and limits the device, not the gateway (a store that trusts the gateway:
  // Dovecot's login_trusted_networks). A pooled link keeps the address of the
  // device that opened it. Unknown: no ID.
  ClientAddress origin = {};
  // The device's own ID parameters (client_id.h), sent with the x-originating
  // fields after the login. Only for a device's own link (its login, a
  // regular session's relay): pooled links are shared by devices.
  std::string client_id = {};
};

class StoreLinkClient {
 public:
  virtual ~StoreLinkClient() = default;
  // Verbatim bytes of the store's responses, in order, CRLFs included; a long literal
  // arrives in several calls.
  virtual void OnStoreBytes(absl::string_view bytes) = 0;
  // One whole response has been delivered. `completed_tag` is its tag when it was a
  // tagged command completion, else empty (untagged data, continuation request).
  virtual void OnStoreResponseEnd(absl::string_view completed_tag) = 0;
  // Everything sent to the store so far has left (resume reading the device).
  virtual void OnStoreDrained() = 0;
  // The store connection is gone; no call follows.
  virtual void OnStoreClosed(absl::Status reason) = 0;
};

// One authenticated connection to the store.
class StoreLink {
 public:
  virtual ~StoreLink() = default;
  virtual void SetClient(StoreLinkClient* client) = 0;
  // Raw command bytes, already framed (the caller sends whole lines and literals).
  virtual void Send(absl::string_view bytes) = 0;
  virtual size_t PendingOutput() const = 0;
  // Backpressure: stop/resume reading responses while the device is slow.
  virtual void SetReading(bool on) = 0;
  // The store's capabilities after login (upper-cased).
  virtual const std::vector<std::string>& capabilities() const = 0;
  // Says LOGOUT to the store if it can, closes, frees itself. No callback follows.
  virtual void Close() = 0;
};

// Opens authenticated store connections; one per shard, used only on its thread.
class StoreConnector {
 public:
  using LoginCallback = absl::AnyInvocable<void(absl::StatusOr<StoreLink*>)>;
  virtual ~StoreConnector() = default;
  // `done` gets the link, or UnauthenticatedError (the store refused the
  // credentials), or UnavailableError (unreachable, timeout, store said BYE).
  virtual void Login(const StoreCredentials& credentials, LoginCallback done) = 0;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_STORE_LINK_H_
