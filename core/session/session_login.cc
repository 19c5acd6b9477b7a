// A device's way in, shared by the bindings (session_login.h).
#include "core/session/session_login.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/sasl.h"
#include "core/imap/writer.h"
#include "core/session/auth_cache.h"
#include "core/session/capabilities.h"
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

// A login about to start: refused where credentials may not be sent.
PreAuthStep Login(PendingLogin login, const PreAuthPolicy& policy) {
  if (!policy.login_allowed) {
    return Respond(login.tag, "NO", "PRIVACYREQUIRED",
                   "Plaintext authentication disallowed: use STARTTLS");
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
      return Respond(tag, "BAD", "", "LOGIN expects a user name and a password");
    }
    absl::StatusOr<imap::LoginName> login_name =
        imap::ParseLoginName(command.args[0].value);
    if (!login_name.ok()) {
      return Respond(tag, "NO", "AUTHENTICATIONFAILED",
                     login_name.status().message());
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
  return Respond(tag, "BAD", "",
                 absl::StrCat("Command ", name,
                              " unknown or not valid before login"));
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
    return step;
  }
  absl::StatusOr<imap::LoginName> name = imap::ParseLoginName(plain->authcid);
  if (!name.ok()) {
    return Respond(tag, "NO", "AUTHENTICATIONFAILED", name.status().message());
  }
  return Login({std::string(tag), std::move(*name), std::move(plain->password)},
               policy);
}

// ---- The login on the owner shard ---------------------------------------------

namespace {

// Tells the client; counts and logs a login it still wants.
bool Authenticated(const LoginServices& services, LoginClient* client,
                   const std::string& user, const std::string& device,
                   absl::string_view how) {
  if (!client->OnAuthenticated(user, device, how)) return false;
  CounterAdd(services.driver.counters->logins);
  PIMAP_LOG(INFO) << "login user=" << imap::QuoteForLog(user)
                  << (device.empty() ? ""
                                     : " device=" + imap::QuoteForLog(device))
                  << how;
  return true;
}

// The P-IMAP engine takes the logged-in device (`link`: its login link, or
// null after an auth-cache hit) and answers the login.
void StartPimap(const LoginServices& services, DeviceOutput* output,
                LoginClient* client, const std::string& tag,
                const std::string& user, const std::string& device,
                const std::string& password, StoreLink* link) {
  auto* pimap = new PimapSessionDriver(services.driver, output, services.limits,
                                       user, device);
  client->OnSessionDriver(pimap);
  pimap->Start(link, tag, password);
}

void OnStoreLogin(const LoginServices& services, DeviceOutput* output,
                  LoginClient* client, const std::string& tag,
                  const std::string& user, const std::string& device,
                  const std::string& password,
                  absl::StatusOr<StoreLink*> link) {
  ShardCounters& counters = *services.driver.counters;
  if (link.ok()) {
    if (!Authenticated(services, client, user, device, "")) {
      (*link)->Close();
      return;
    }
    if (!device.empty()) {
      if (services.auth_cache != nullptr) {
        services.auth_cache->Remember(user, password, MonotonicNowMs());
      }
      StartPimap(services, output, client, tag, user, device, password, *link);
      return;
    }
    // A regular session: the relay answers the login (LoginDone).
    const SessionConfig& sc = services.driver.registry->config();
    StoreCredentials credentials =
        sc.master_user.empty()
            ? StoreCredentials{user, password, ""}
            : StoreCredentials{sc.master_user, sc.master_password, user};
    auto* relay = new RelayDriver(services.driver, output, services.limits,
                                  user, std::move(credentials), services.park);
    client->OnSessionDriver(relay);
    relay->Start(*link, tag);
    return;
  }
  std::string out;
  if (absl::IsUnauthenticated(link.status())) {
    if (services.auth_cache != nullptr) {
      services.auth_cache->Forget(user);  // it may have changed at the store
    }
    counters.auth_failures.fetch_add(1, std::memory_order_relaxed);
    PIMAP_LOG(INFO) << "login failed user=" << imap::QuoteForLog(user);
    imap::AppendTaggedStatus(&out, tag, "NO", "AUTHENTICATIONFAILED",
                             "Authentication failed.");
  } else {
    PIMAP_LOG(WARNING) << "store login unavailable: "
                       << link.status().message();
    imap::AppendTaggedStatus(
        &out, tag, "NO", "UNAVAILABLE",
        "The message store is not available; try again later");
  }
  client->OnLoginFailed(std::move(out));
}

}  // namespace

void StartSessionLogin(const LoginServices& services, DeviceOutput* output,
                       PendingLogin login, std::weak_ptr<bool> alive,
                       LoginClient* client) {
  std::string tag = login.tag;
  std::string user = login.name.user;
  std::string device = login.name.device;
  // The password stays in memory past the login only for a session that logs
  // in again later: a P-IMAP session whose store watch must log in as the
  // user, or a stock client that may park (both when no master user is
  // configured; LinkCredentials).
  std::string password =
      device.empty() && services.park.park_after_ms <= 0 ? "" : login.password;
  AuthCache* cache = services.auth_cache;
  if (!device.empty() && cache != nullptr && cache->enabled()) {
    // A returning device whose password matches the last one the store
    // accepted needs no store login: its session borrows a pooled link when a
    // command needs one. A different password goes to the store (it may have
    // changed there).
    if (cache->Check(user, password, MonotonicNowMs()) ==
        AuthCache::Verdict::kMatch) {
      CounterAdd(services.driver.counters->auth_cache_hits);
      if (Authenticated(services, client, user, device, " (auth cache)")) {
        StartPimap(services, output, client, tag, user, device, password,
                   nullptr);
      }
      return;
    }
    CounterAdd(services.driver.counters->auth_cache_misses);
  }
  services.connector->Login(
      {login.name.user, std::move(login.password), ""},
      [services, output, client, alive = std::move(alive), tag, user, device,
       password = std::move(password)](absl::StatusOr<StoreLink*> link) {
        if (alive.expired()) {
          if (link.ok()) (*link)->Close();
          return;
        }
        OnStoreLogin(services, output, client, tag, user, device, password,
                     std::move(link));
      });
}

}  // namespace pimap::session
