// Logging a device in, for every binding (tcp/, http/): the commands a client
// may send before login (CAPABILITY, NOOP, LOGOUT, ID, LOGIN, AUTHENTICATE
// PLAIN) decided without any transport, and, once the login is on the shard
// that owns the user, the login throttle (login_throttle.h), the check of its
// password (the auth cache for a returning P-IMAP device, else the store) and
// the session driver that carries the session from there: the P-IMAP engine for
// "user#device", a regular session's relay otherwise. The binding keeps only
// what is its own: STARTTLS, moving to the owner shard, writing bytes.
#ifndef PIMAP_CORE_SESSION_SESSION_LOGIN_H_
#define PIMAP_CORE_SESSION_SESSION_LOGIN_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/client_address.h"
#include "core/imap/command.h"
#include "core/imap/limits.h"
#include "core/imap/login_name.h"
#include "core/imap/user_name_format.h"
#include "core/session/device_driver.h"
#include "core/session/session_driver.h"
#include "core/session/store_link.h"

namespace pimap::cluster {
class ShardCluster;
}

namespace pimap::session {

class AuthCache;
class LoginThrottle;

// A login that is waiting for the store (and may travel to the owner shard).
struct PendingLogin {
  std::string tag;
  imap::LoginName name;
  std::string password;  // secret: never logged
  // Where the device connects from: its log lines, the throttle's per-IP
  // count, and the store's ID (x-originating-ip) on the links it opens.
  ClientAddress client = {};
  // The ID parameters the client sent before login (client_id.h), passed on
  // to the store after the login on the device's own link; empty: none.
  std::string client_id = {};
  // XTERSE was on before login (terse.h): the session starts terse, and the
  // login's answer is already.
  bool terse = false;
  // How often the connection was forwarded between cluster nodes already
  // (core/cluster/forward_record.h): a forwarded login is not forwarded by
  // the hashing again, only to the node that holds the user's claim.
  uint8_t hops = 0;
  // Forwarded from a node where the device used TLS.
  bool forwarded_secure = false;
};

// What a command before login asks the binding to do.
struct PreAuthStep {
  enum class Action {
    kRespond,        // write `response`
    kLogin,          // log `login` in (on the owner shard)
    kStartTls,       // STARTTLS (the binding answers)
    kSaslChallenge,  // AUTHENTICATE PLAIN without an initial response: "+ "
    kLogout,         // write `response`, then close
  };
  Action action = Action::kRespond;
  std::string response;
  PendingLogin login;
  bool auth_failure = false;  // count it (pimap_auth_failures_total)
  // For its log line (event=login.fail): the user named, if any, and why.
  std::string auth_failure_user;
  absl::string_view auth_failure_reason;
  // An ID command: the client's parameters, for the binding to keep until
  // the login (PendingLogin::client_id).
  std::optional<std::string> client_id;
};

struct PreAuthPolicy {
  bool starttls_available = false;  // TLS could still start on this transport
  bool login_allowed = false;       // credentials may be sent (TLS or allowed)
  // The binding's router runs XZIP before login (CAPABILITY says so).
  bool xzip = false;
  // The store's rule for user names (--user-name-format, e.g. Dovecot's
  // default auth_username_format=%Lu), applied before anything uses the
  // name: the owner shard, the session and auth-cache keys, the store login,
  // so that "Alice" and "alice" are one user as the store sees them. Null:
  // the name as given. The device id keeps its case.
  const imap::UserNameFormat* user_name_format = nullptr;
};

// A command before login. AUTHENTICATE PLAIN with an initial response (SASL-IR)
// decodes it at once.
PreAuthStep ExecutePreAuth(const imap::Command& command,
                           const PreAuthPolicy& policy);
// The client's response line to AUTHENTICATE PLAIN's "+ ", for `tag`.
PreAuthStep DecodeSaslResponse(absl::string_view tag, absl::string_view line,
                               const PreAuthPolicy& policy);
// Counts nothing; logs the event=login.fail line of a step with auth_failure
// (the bindings call it: they know the client).
void LogPreAuthFailure(const PreAuthStep& step, const ClientAddress& client);

// The owner shard's services a login uses.
struct LoginServices {
  DriverServices driver;
  StoreConnector* connector = nullptr;
  AuthCache* auth_cache = nullptr;  // null: every login asks the store
  imap::ParserLimits limits;
  RelayParkConfig park;
  LoginThrottle* throttle = nullptr;  // null: failed logins slow nothing down
  // A cluster node (core/cluster/shard_cluster.h; null: a single node): a
  // login the store accepted is admitted only if this shard still holds the
  // user's claim. The lease may have been lost while the store answered, and
  // a node without the claim must never attach a session (split brain).
  const cluster::ShardCluster* cluster = nullptr;
};

// The binding's side of a login that runs.
class LoginClient {
 public:
  // The user is authenticated (by the store or the auth cache; `how` is "" or
  // " (auth cache)"). False: the client went away meanwhile, the login stops
  // here.
  virtual bool OnAuthenticated(const std::string& user,
                               const std::string& device,
                               absl::string_view how) = 0;
  // The driver that carries the session from now on; it answers the login
  // through the DeviceOutput (LoginDone) right after this returns.
  virtual void OnSessionDriver(SessionDriver* driver) = 0;
  // The login failed: `response` is its tagged answer.
  virtual void OnLoginFailed(std::string response) = 0;

 protected:
  ~LoginClient() = default;
};

// On the owner shard. `alive` expires when `client` and `output` are gone (a
// store answer may come after that). Every callback runs on the shard thread,
// maybe before this returns.
void StartSessionLogin(const LoginServices& services, DeviceOutput* output,
                       PendingLogin login, std::weak_ptr<bool> alive,
                       LoginClient* client);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_SESSION_LOGIN_H_
