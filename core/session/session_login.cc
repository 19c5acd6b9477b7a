// A device's way in, shared by the bindings (session_login.h).
#include "core/session/session_login.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/cluster/shard_cluster.h"
#include "core/imap/sasl.h"
#include "core/imap/writer.h"
#include "core/session/auth_cache.h"
#include "core/session/capabilities.h"
#include "core/session/client_id.h"
#include "core/session/login_throttle.h"
#include "core/session/pimap_session_driver.h"
#include "core/session/relay_driver.h"

namespace pimap::session {

namespace {

PreAuthStep Respond(absl::string_view tag, absl::string_view status,
                    absl::string_view code, absl::string_view text) {
  PreAuthStep step;
  imap::AppendTaggedStatus(&step.response, tag, status, code, text);
  return step;
}

// A login name that does not parse ("alice#", "#phone", a NUL): a failed
// login like a wrong password (counted, and logged as event=login.fail for
// fail2ban), with what was sent cut short for the log line.
PreAuthStep BadLoginName(absl::string_view tag, absl::string_view sent,
                         const absl::Status& why) {
  PreAuthStep step = Respond(tag, "NO", "AUTHENTICATIONFAILED", why.message());
  step.auth_failure = true;
  step.auth_failure_user = std::string(sent.substr(0, 64));
  step.auth_failure_reason = "bad_login_name";
  return step;
}

// A login about to start: refused where credentials may not be sent.
PreAuthStep Login(PendingLogin login, const PreAuthPolicy& policy) {
  if (!policy.login_allowed) {
    return Respond(login.tag, "NO", "PRIVACYREQUIRED",
                   "Plaintext authentication disallowed: use STARTTLS");
  }
  if (policy.user_name_format != nullptr) {
    absl::StatusOr<std::string> user =
        policy.user_name_format->Apply(login.name.user);
    if (!user.ok()) {
      PreAuthStep step = Respond(login.tag, "NO", "AUTHENTICATIONFAILED",
                                 user.status().message());
      step.auth_failure = true;
      step.auth_failure_user = login.name.user;
      step.auth_failure_reason = "bad_user_name";
      return step;
    }
    login.name.user = *std::move(user);
  }
  PreAuthStep step;
  step.action = PreAuthStep::Action::kLogin;
  step.login = std::move(login);
  return step;
}

}  // namespace

PreAuthStep ExecutePreAuth(const imap::Command& command,
                           const PreAuthPolicy& policy) {
  const std::string& tag = command.tag;
  const std::string& name = command.name;
  if (name == "CAPABILITY") {
    PreAuthStep step;
    absl::StrAppend(&step.response, "* CAPABILITY ",
                    PreAuthCapabilities(policy.starttls_available,
                                        policy.login_allowed, policy.xzip),
                    "\r\n");
    imap::AppendTaggedStatus(&step.response, tag, "OK", "",
                             "CAPABILITY completed");
    return step;
  }
  if (name == "NOOP") return Respond(tag, "OK", "", "NOOP completed");
  if (name == "ID") {
    absl::StatusOr<std::string> fields = ParseClientId(command.args);
    if (!fields.ok()) return Respond(tag, "BAD", "", fields.status().message());
    PreAuthStep step;
    step.response = IdAnswer(tag);
    step.client_id = *std::move(fields);
    return step;
  }
  if (name == "LOGOUT") {
    PreAuthStep step;
    step.action = PreAuthStep::Action::kLogout;
    step.response = "* BYE Logging out\r\n";
    imap::AppendTaggedStatus(&step.response, tag, "OK", "", "LOGOUT completed");
    return step;
  }
  if (name == "STARTTLS") {
    PreAuthStep step;
    step.action = PreAuthStep::Action::kStartTls;
    return step;
  }
  if (name == "LOGIN") {
    if (command.args.size() != 2 || !command.args[0].is_astring() ||
        !command.args[1].is_astring()) {
      return Respond(tag, "BAD", "",
                     "LOGIN expects a user name and a password");
    }
    absl::StatusOr<imap::LoginName> login_name =
        imap::ParseLoginName(command.args[0].value);
    if (!login_name.ok()) {
      return BadLoginName(tag, command.args[0].value, login_name.status());
    }
    return Login({tag, std::move(*login_name), command.args[1].value}, policy);
  }
  if (name == "AUTHENTICATE") {
    if (command.args.empty() || command.args.size() > 2 ||
        command.args[0].type != imap::Arg::Type::kAtom) {
      return Respond(tag, "BAD", "", "AUTHENTICATE expects a mechanism name");
    }
    if (!absl::EqualsIgnoreCase(command.args[0].value, "PLAIN")) {
      return Respond(tag, "NO", "CANNOT",
                     "Unsupported authentication mechanism");
    }
    if (command.args.size() == 2) {  // SASL-IR (RFC 4959)
      return DecodeSaslResponse(tag, command.args[1].value, policy);
    }
    PreAuthStep step;
    step.action = PreAuthStep::Action::kSaslChallenge;
    step.response = "+ \r\n";
    return step;
  }
  return Respond(
      tag, "BAD", "",
      absl::StrCat("Command ", name, " unknown or not valid before login"));
}

PreAuthStep DecodeSaslResponse(absl::string_view tag, absl::string_view line,
                               const PreAuthPolicy& policy) {
  if (line == "*") return Respond(tag, "BAD", "", "Authentication cancelled");
  absl::StatusOr<imap::SaslPlain> plain = imap::DecodeSaslPlain(line);
  if (!plain.ok()) return Respond(tag, "BAD", "", plain.status().message());
  // Devices authenticate as themselves; acting for another user is the store's
  // master-user business, not a device's.
  if (!plain->authzid.empty() && plain->authzid != plain->authcid) {
    PreAuthStep step = Respond(tag, "NO", "AUTHORIZATIONFAILED",
                               "Authorization identity must match the user");
    step.auth_failure = true;
    step.auth_failure_user = plain->authcid;
    step.auth_failure_reason = "authzid_mismatch";
    return step;
  }
  absl::StatusOr<imap::LoginName> name = imap::ParseLoginName(plain->authcid);
  if (!name.ok()) return BadLoginName(tag, plain->authcid, name.status());
  return Login({std::string(tag), std::move(*name), std::move(plain->password)},
               policy);
}

void LogPreAuthFailure(const PreAuthStep& step, const ClientAddress& client) {
  PIMAP_LOG(INFO)
          .Conn(client)
          .User(step.auth_failure_user)
          .Event("login.fail")
          .Field("reason", step.auth_failure_reason)
      << "login failed";
}

// ---- The login on the owner shard
// ---------------------------------------------

namespace {

// What a login carries past the throttle and the store.
struct Attempt {
  std::string tag;
  std::string user;
  std::string device;
  // Kept only where the session needs it later (CheckPassword).
  std::string password;
  ClientAddress client;
  bool terse = false;  // XTERSE was on before login (terse.h)
};

// Tells the client; counts and logs a login it still wants.
bool Authenticated(const LoginServices& services, LoginClient* client,
                   const Attempt& a, absl::string_view how) {
  if (services.throttle != nullptr) {
    services.throttle->Succeeded(a.user, a.client.peer);
  }
  if (services.cluster != nullptr && !services.cluster->claimed(a.user)) {
    PIMAP_LOG(INFO).Conn(a.client).User(a.user).Event("cluster.login.lost")
        << "the user's claim was lost during the login";
    std::string out;
    imap::AppendTaggedStatus(&out, a.tag, "NO", "UNAVAILABLE",
                             "This gateway node lost its cluster lease; "
                             "reconnect");
    client->OnLoginFailed(std::move(out));
    return false;
  }
  if (!client->OnAuthenticated(a.user, a.device, how)) return false;
  CounterAdd(services.driver.counters->logins);
  // The line fail2ban-style tools match (docs/logging.md).
  PIMAP_LOG(INFO)
          .Conn(a.client)
          .User(a.user)
          .Device(a.device)
          .Event("login.ok")
          .Field("auth", how.empty() ? "store" : "cache")
      << "login";
  return true;
}

// The P-IMAP engine takes the logged-in device (`link`: its login link, or
// null after an auth-cache hit) and answers the login.
void StartPimap(const LoginServices& services, DeviceOutput* output,
                LoginClient* client, const Attempt& a, StoreLink* link) {
  auto* pimap = new PimapSessionDriver(services.driver, output, services.limits,
                                       a.user, a.device);
  client->OnSessionDriver(pimap);
  pimap->SetTerse(a.terse);  // before the login's answer
  pimap->Start(link, a.tag, a.password, a.client);
}

void OnStoreLogin(const LoginServices& services, DeviceOutput* output,
                  LoginClient* client, const Attempt& a,
                  absl::StatusOr<StoreLink*> link) {
  ShardCounters& counters = *services.driver.counters;
  if (link.ok()) {
    if (!Authenticated(services, client, a, "")) {
      (*link)->Close();
      return;
    }
    if (!a.device.empty()) {
      if (services.auth_cache != nullptr) {
        services.auth_cache->Remember(a.user, a.password, MonotonicNowMs());
      }
      StartPimap(services, output, client, a, *link);
      return;
    }
    // A regular session: the relay answers the login (LoginDone).
    const SessionConfig& sc = services.driver.registry->config();
    StoreCredentials credentials =
        sc.master_user.empty()
            ? StoreCredentials{a.user, a.password, ""}
            : StoreCredentials{sc.master_user, sc.master_password, a.user};
    credentials.origin = a.client;  // for the links it borrows when parked
    auto* relay =
        new RelayDriver(services.driver, output, services.limits, a.user,
                        std::move(credentials), services.park);
    client->OnSessionDriver(relay);
    relay->SetTerse(a.terse);
    relay->Start(*link, a.tag);
    return;
  }
  std::string out;
  if (absl::IsUnauthenticated(link.status())) {
    if (services.auth_cache != nullptr) {
      services.auth_cache->Forget(a.user);  // it may have changed at the store
    }
    if (services.throttle != nullptr) {
      services.throttle->Failed(a.user, a.client.peer, MonotonicNowMs());
    }
    counters.auth_failures.fetch_add(1, std::memory_order_relaxed);
    PIMAP_LOG(INFO)
            .Conn(a.client)
            .User(a.user)
            .Device(a.device)
            .Event("login.fail")
            .Field("reason", "bad_password")
        << "login failed";
    imap::AppendTaggedStatus(&out, a.tag, "NO", "AUTHENTICATIONFAILED",
                             "Authentication failed.");
  } else {
    PIMAP_LOG(WARNING).Conn(a.client).User(a.user).Device(a.device).Event(
        "login.error")
        << "store login unavailable: " << link.status().message();
    imap::AppendTaggedStatus(
        &out, a.tag, "NO", "UNAVAILABLE",
        "The message store is not available; try again later");
  }
  client->OnLoginFailed(std::move(out));
}

// Past the throttle: the auth cache, else the store.
void CheckPassword(const LoginServices& services, DeviceOutput* output,
                   PendingLogin login, std::weak_ptr<bool> alive,
                   LoginClient* client) {
  // The password stays in memory past the login only for a session that logs
  // in again later: a P-IMAP session whose store watch must log in as the
  // user, or a stock client that may park (both when no master user is
  // configured; LinkCredentials).
  const bool keep_password =
      !login.name.device.empty() ||
      (services.park.park_after_ms > 0 &&
       (services.driver.registry == nullptr ||
        services.driver.registry->config().master_user.empty()));
  Attempt a{login.tag,         login.name.user,
            login.name.device, keep_password ? login.password : "",
            login.client,      login.terse};
  AuthCache* cache = services.auth_cache;
  if (!a.device.empty() && cache != nullptr && cache->enabled()) {
    // A returning device whose password matches the last one the store
    // accepted needs no store login: its session borrows a pooled link when a
    // command needs one. A different password goes to the store (it may have
    // changed there), and so does any password once the store has rejected
    // the user's kept one (it changed at the store: the cached one is stale).
    const bool rejected =
        services.driver.registry != nullptr &&
        services.driver.registry->StorePasswordRejected(a.user);
    if (!rejected && cache->Check(a.user, a.password, MonotonicNowMs()) ==
                         AuthCache::Verdict::kMatch) {
      CounterAdd(services.driver.counters->auth_cache_hits);
      if (Authenticated(services, client, a, " (auth cache)")) {
        StartPimap(services, output, client, a, nullptr);
      }
      return;
    }
    CounterAdd(services.driver.counters->auth_cache_misses);
  }
  StoreCredentials credentials{login.name.user, std::move(login.password), ""};
  credentials.origin = login.client;
  credentials.client_id = std::move(login.client_id);
  services.connector->Login(
      credentials, [services, output, client, alive = std::move(alive),
                    a = std::move(a)](absl::StatusOr<StoreLink*> link) {
        if (alive.expired()) {
          if (link.ok()) (*link)->Close();
          return;
        }
        OnStoreLogin(services, output, client, a, std::move(link));
      });
  std::fill(credentials.password.begin(), credentials.password.end(), '\0');
}

}  // namespace

void StartSessionLogin(const LoginServices& services, DeviceOutput* output,
                       PendingLogin login, std::weak_ptr<bool> alive,
                       LoginClient* client) {
  LoginThrottle* throttle = services.throttle;
  if (throttle == nullptr || !throttle->enabled()) {
    CheckPassword(services, output, std::move(login), std::move(alive), client);
    return;
  }
  const LoginThrottle::Verdict verdict =
      throttle->Check(login.name.user, login.client.peer, MonotonicNowMs());
  switch (verdict.kind) {
    case LoginThrottle::Verdict::Kind::kGo:
      CheckPassword(services, output, std::move(login), std::move(alive),
                    client);
      return;
    case LoginThrottle::Verdict::Kind::kRefuse: {
      // Not even asked of the store: the password may be right, and the
      // answer must not tell (hence no AUTHENTICATIONFAILED).
      CounterAdd(services.driver.counters->logins_refused);
      PIMAP_LOG(INFO)
              .Conn(login.client)
              .User(login.name.user)
              .Device(login.name.device)
              .Event("login.fail")
              .Field("reason", "throttled")
          << "login refused: too many failed logins";
      std::string out;
      imap::AppendTaggedStatus(&out, login.tag, "NO", "UNAVAILABLE",
                               "Too many failed logins; try again later");
      client->OnLoginFailed(std::move(out));
      return;
    }
    case LoginThrottle::Verdict::Kind::kWait:
      break;
  }
  // Held on a timer, not on a store connection; the client's connection
  // reads nothing meanwhile (the binding blocks it until the login ends).
  CounterAdd(services.driver.counters->logins_delayed);
  services.driver.timers->Schedule(
      verdict.wait_ms, [services, output, client, alive = std::move(alive),
                        login = std::move(login)]() mutable {
        if (alive.expired()) {
          std::fill(login.password.begin(), login.password.end(), '\0');
          return;
        }
        CheckPassword(services, output, std::move(login), alive, client);
      });
}

}  // namespace pimap::session
