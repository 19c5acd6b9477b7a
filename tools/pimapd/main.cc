// pimapd: the gateway daemon. Wires the engine (core/), the IMAP binding
// (bindings/) and the store client (store/) together, then waits for a signal.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/http/http_server.h"
#include "bindings/smtp/smtp_submission.h"
#include "bindings/tcp/imap_server.h"
#include "bindings/tls/tls_context.h"
#include "core/base/log.h"
#include "core/base/preauth_gate.h"
#include "core/base/timer_wheel.h"
#include "core/base/version.h"
#include "core/convert/transcoder.h"
#include "core/engine/inherited_sockets.h"
#include "core/engine/listener.h"
#include "core/engine/resolver.h"
#include "core/engine/shard_set.h"
#include "core/http/content_coding.h"
#include "core/http/event_dictionary.h"
#include "core/session/login_throttle.h"
#include "store/events/event_intake.h"
#include "store/link_pool.h"
#include "store/state/sqlite_state_store.h"
#include "store/store_connector.h"
#include "store/user_watcher.h"
#include "tools/pimapd/admin_http.h"
#include "tools/pimapd/cluster_setup.h"
#include "tools/pimapd/options.h"
#include "tools/pimapd/outband_setup.h"
#include "tools/pimapd/reloader.h"
#include "tools/pimapd/runtime_config.h"
#include "tools/pimapd/systemd_notify.h"
#include "tools/pimapd/upgrade.h"

namespace {

constexpr int64_t kStopGraceMs = 5000;
// How long an upgrade waits for the new process's readiness before it gives
// up (and this process keeps serving).
constexpr int64_t kUpgradeReadyTimeoutMs = 30000;
// After the last goodbye of an upgrade's drain: time for it to leave.
constexpr int64_t kDrainMarginMs = 500;

int Fail(const std::string& message, int code) {
  std::cerr << "pimapd: " << message << "\n";
  return code;
}

// Per-shard objects, created and destroyed on the shard's thread.
struct ShardServices {
  // What the shard's servers and sessions read their settings from: the
  // shard's own copies, replaced in place by a reload on the shard's thread.
  std::unique_ptr<pimap::tcp::ImapServerConfig> imap_config;
  std::unique_ptr<pimap::http_binding::HttpServerConfig> http_config;
  std::unique_ptr<pimap::session::SessionConfig> session_config;
  // Before the connector: its links and the watches point at it.
  std::unique_ptr<pimap::session::StoreNamespaces> namespaces;
  std::unique_ptr<pimap::store::ImapStoreConnector> connector;
  std::unique_ptr<pimap::store::UserWatcherFactory> watches;
  std::unique_ptr<pimap::session::StateStore> state;
  std::unique_ptr<pimap::session::SessionRegistry> sessions;
  std::unique_ptr<pimap::store::LinkPool> links;
  std::unique_ptr<pimap::session::AuthCache> auth_cache;
  std::unique_ptr<pimap::session::LoginThrottle> login_throttle;
  std::unique_ptr<pimap::PreAuthGate> preauth;
  std::unique_ptr<pimap::tcp::ImapServer> server;
  std::unique_ptr<pimap::http_binding::HttpServer> http;
  // Shared by every compressed response of the shard (HTTP content coding,
  // XZIP): one compressor per shard, none per connection.
  std::unique_ptr<pimap::http::ShardCompressor> compressor;
  // Out-of-band wake-ups (tools/pimapd/outband_setup.h).
  pimap::OutbandShard outband;
  // XDELIVER's submitter (--smtp), and a resolver for it when the
  // out-of-band channels made none.
  std::unique_ptr<pimap::engine::Resolver> smtp_resolver;
  std::unique_ptr<pimap::smtp::SmtpSubmitter> smtp;
  // XCONVERT's conversions; its worker thread runs external converters and
  // posts their results to the shard's inbox.
  std::unique_ptr<pimap::convert::Transcoder> transcoder;
  // The shard's part of the cluster (--cluster-etcd; cluster_setup.h).
  pimap::ClusterShard cluster;
};

// What each shard's Transcoder runs with (the rules were checked when the
// options were read).
pimap::convert::TranscodeConfig TranscodeConfigOf(const pimap::Options& o) {
  pimap::convert::TranscodeConfig c;
  for (const std::string& text : o.converters) {
    absl::StatusOr<pimap::convert::ConverterRule> rule =
        pimap::convert::ParseConverterRule(text);
    if (rule.ok()) c.rules.push_back(*std::move(rule));
  }
  c.limits.timeout_ms = absl::ToInt64Milliseconds(o.converter_timeout);
  c.limits.max_output_bytes = o.converter_max_output;
  c.limits.max_memory_bytes = o.converter_memory;
  c.max_input_bytes = o.convert_max_input;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  // Read (and removed from the environment) before any thread runs: unsetenv
  // races every getenv of another thread.
  pimap::SystemdNotifier systemd = pimap::SystemdNotifier::FromEnvironment();
  // Listening sockets from the process we upgrade (or systemd), and the pipe
  // to tell it we are ready: the same rule (upgrade.h).
  absl::StatusOr<int> inherited =
      pimap::engine::AdoptInheritedSocketsFromEnvironment();
  if (!inherited.ok())
    return Fail(std::string(inherited.status().message()), 2);
  pimap::UpgradeReadySignal upgrade_ready =
      pimap::UpgradeReadySignal::FromEnvironment();
  // What SIGUSR2 starts: the path we were started from (upgrade.h says why
  // not /proc/self/exe).
  const std::string executable = pimap::ExecutablePath();
  absl::StatusOr<pimap::CommandLine> parsed =
      pimap::ParseCommandLine(argc, argv);
  if (!parsed.ok()) {
    return Fail(
        absl::StrCat(parsed.status().message(), "\n(see pimapd --help)"), 2);
  }
  if (parsed->show_help) {
    std::cout << pimap::HelpText();
    return 0;
  }
  if (parsed->show_sample_config) {
    std::cout << pimap::SampleConfig();
    return 0;
  }
  if (parsed->show_version) {
    std::cout << "pimapd " << pimap::kVersion << "\n";
    return 0;
  }
  const pimap::Options& options = parsed->options;
  pimap::SetLogLevel(options.log_level);
  pimap::SetLogFormat(options.log_format);

  // Signals are taken by sigwait() in main only; shards never see them
  // (blocked here, before any thread starts, so every thread inherits it).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The device listeners' certificates (default and SNI); SIGHUP rebuilds
  // them (reloader.h).
  absl::StatusOr<pimap::ServerTls> server_tls = pimap::BuildServerTls(options);
  if (!server_tls.ok()) {
    return Fail(std::string(server_tls.status().message()), 2);
  }
  // What the shards run with (runtime_config.h); each gets a copy, which a
  // reload replaces on the shard's own thread.
  absl::StatusOr<pimap::RuntimeConfig> runtime =
      pimap::BuildRuntimeConfig(options, *server_tls);
  if (!runtime.ok()) return Fail(std::string(runtime.status().message()), 2);
  const pimap::tcp::ImapServerConfig& config = runtime->imap;
  const pimap::session::SessionConfig& session_config = runtime->session;
  const bool http_enabled = options.http_listen || options.https_listen;
  // The dictionary of pushed-event frames: read-only, shared by every shard.
  std::shared_ptr<const pimap::http::EventDictionary> event_dictionary;
  if (options.event_dictionary == "default") {
    event_dictionary = pimap::http::EventDictionary::Default();
  } else if (options.event_dictionary != "none") {
    std::ifstream in(options.event_dictionary, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in)
      return Fail("cannot read --event-dictionary " + options.event_dictionary,
                  2);
    auto loaded = pimap::http::EventDictionary::Load(bytes.str());
    if (!loaded.ok()) {
      return Fail("--event-dictionary " + options.event_dictionary + ": " +
                      std::string(loaded.status().message()),
                  2);
    }
    event_dictionary = *std::move(loaded);
  }
  if (!config.imap_listen && !config.imaps_listen && !http_enabled) {
    return Fail(
        "nothing to listen on: give --imap-listen, --imaps-listen, "
        "--http-listen or --https-listen",
        2);
  }

  pimap::store::EventIntakeConfig intake_config;
  if (session_config.pushes && !options.store_events_listen) {
    return Fail("--store-events push|both needs --store-events-listen", 2);
  }
  if (options.store_events_listen) {
    intake_config.user_name_format = config.user_name_format;
    intake_config.host = options.store_events_listen->host;
    intake_config.port = options.store_events_listen->port;
    // Subjects and senders are held only where a Web Push wake-up shows them.
    intake_config.limits.keep_headlines =
        options.outband_full_payload && !options.vapid_key.empty();
    if (!options.store_events_secret_file.empty()) {
      auto secret =
          pimap::store::ReadSecretFile(options.store_events_secret_file);
      if (!secret.ok()) return Fail(std::string(secret.status().message()), 2);
      intake_config.secret = *secret;
    } else if (options.store_events_insecure) {
      // Once here, not per shard.
      intake_config.insecure = true;
      PIMAP_LOG(WARNING)
          << "--store-events-insecure: the store-event intake on "
          << options.store_events_listen->ToString()
          << " accepts events from anyone who can connect";
    } else {
      // Anyone who can reach the port could push events to every device.
      return Fail(
          "--store-events-listen needs --store-events-secret-file (the secret "
          "the store sends as X-Pimap-Secret), or --store-events-insecure to "
          "run the intake without one",
          2);
    }
  }

  absl::StatusOr<pimap::OutbandShared> outband = pimap::PrepareOutband(options);
  if (!outband.ok()) return Fail(std::string(outband.status().message()), 2);

  // XDELIVER's MTA (--smtp): one configuration for every shard.
  std::unique_ptr<pimap::smtp::SmtpConfig> smtp;
  if (options.smtp.has_value()) {
    smtp = std::make_unique<pimap::smtp::SmtpConfig>();
    smtp->host = options.smtp->host;
    smtp->port = options.smtp->port;
    smtp->timeout_ms = absl::ToInt64Milliseconds(options.smtp_timeout);
    char host_name[256] = {};
    smtp->options.helo_name =
        !options.smtp_helo.empty() ? options.smtp_helo
        : gethostname(host_name, sizeof(host_name) - 1) == 0 && host_name[0]
            ? std::string(host_name)
            : std::string("localhost");
    smtp->options.starttls = options.smtp_starttls;
    if (options.smtp_starttls) {
      auto tls = pimap::tls::TlsContext::CreateClient(options.smtp_ca_file,
                                                      /*also_system=*/true);
      if (!tls.ok()) return Fail(std::string(tls.status().message()), 2);
      smtp->tls = *std::move(tls);
    }
    if (!options.smtp_auth_user.empty()) {
      auto password =
          pimap::store::ReadSecretFile(options.smtp_auth_password_file);
      if (!password.ok()) {
        return Fail(std::string(password.status().message()), 2);
      }
      smtp->options.auth_user = options.smtp_auth_user;
      smtp->options.auth_password = *std::move(password);
    }
    PIMAP_LOG(INFO) << "XDELIVER enabled: submitting to "
                    << options.smtp->ToString()
                    << (options.smtp_starttls ? " with STARTTLS" : "");
  }
  if (outband->webpush_enabled) {
    PIMAP_LOG(INFO) << "web push enabled; VAPID public key "
                    << outband->vapid_public_key;
  }

  // Refuse to share a port with another process: the shards' listeners join
  // one SO_REUSEPORT group, which a second gateway could join silently.
  // Two listeners of this process on one address would share it the same way.
  absl::flat_hash_set<std::string> listening;
  for (const std::optional<pimap::HostPort>* listen :
       {&options.imap_listen, &options.imaps_listen, &options.http_listen,
        &options.https_listen, &options.admin_listen,
        &options.store_events_listen}) {
    if (!listen->has_value()) continue;
    if (!listening.insert((*listen)->ToString()).second) {
      return Fail(
          absl::StrCat((*listen)->ToString(), " is given to two listeners"), 2);
    }
    // Handed over by the process we upgrade (or systemd): it listens there,
    // on purpose.
    if (pimap::engine::HasInheritedSocket((*listen)->host, (*listen)->port)) {
      continue;
    }
    if (absl::Status st = pimap::engine::CheckNothingListens((*listen)->host,
                                                             (*listen)->port);
        !st.ok()) {
      return Fail(std::string(st.message()), 1);
    }
  }

  // The admin endpoint: TCP (--admin-listen) and/or the Unix socket.
  pimap::AdminEndpointConfig admin;
  if (options.admin_listen) {
    admin.host = options.admin_listen->host;
    admin.port = options.admin_listen->port;
  }
  admin.unix_path = options.admin_socket;
  admin.unix_mode = options.admin_socket_mode;
  if (!options.admin_token_file.empty()) {
    auto token = pimap::store::ReadSecretFile(options.admin_token_file);
    if (!token.ok()) return Fail(std::string(token.status().message()), 2);
    if (token->empty()) {
      return Fail(absl::StrCat("--admin-token-file ", options.admin_token_file,
                               " is empty"),
                  2);
    }
    admin.token = *std::move(token);
  }

  int shards = options.shards;
  if (shards <= 0) {
    shards = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    if (shards <= 0) shards = 1;
  }
  pimap::engine::RingOptions ring_options;
  ring_options.file_table_size =
      static_cast<unsigned>(options.max_connections_per_shard);

  // Descriptors for logged-in sessions and store links are always left: a
  // flood of connections that never log in takes at most this many.
  const size_t preauth_total = static_cast<size_t>(
      options.max_preauth_per_shard > 0
          ? options.max_preauth_per_shard
          : std::max(1, options.max_connections_per_shard / 4));
  const size_t preauth_per_ip = static_cast<size_t>(options.max_preauth_per_ip);
  pimap::engine::ShardSet set(shards, ring_options);
  // Declared after `set` so it is destroyed first, while the shards it points
  // into still exist (their threads have ended by then).
  // The cluster (--cluster-etcd): null for a single node.
  absl::StatusOr<std::unique_ptr<pimap::ClusterNode>> made_cluster =
      pimap::MakeClusterNode(options);
  if (!made_cluster.ok()) {
    return Fail(std::string(made_cluster.status().message()), 2);
  }
  std::unique_ptr<pimap::ClusterNode> cluster_node = *std::move(made_cluster);
  if (cluster_node != nullptr && options.store_events_listen) {
    // A store may post to any node: a user another node serves is passed on.
    intake_config.divert = pimap::IntakeDivert;
  }
  std::vector<ShardServices> services(shards);
  // pimapctl drain: each shard closes its device listeners and says goodbye
  // (on its own thread, to its own servers).
  admin.drain = [&services](pimap::engine::Shard& shard) -> uint64_t {
    ShardServices& s = services[shard.id()];
    constexpr absl::string_view kWhy = "[UNAVAILABLE] Server draining";
    uint64_t told = 0;
    if (s.server) told += s.server->Drain(kWhy);
    if (s.http) told += s.http->Drain(kWhy);
    // In a cluster the node leaves: its users are claimed by the others as
    // their devices reconnect.
    pimap::LeaveCluster(shard, s.cluster);
    return told;
  };
  // Shards log through the background writer (log.h) until `async_log` goes,
  // at any return from here on, after the shards have stopped.
  struct AsyncLog {
    AsyncLog() { pimap::StartAsyncLogWriter(); }
    ~AsyncLog() { pimap::StopAsyncLogWriter(); }
  } async_log;
  const pimap::convert::TranscodeConfig transcode = TranscodeConfigOf(options);
  absl::Status started = set.Start(
      [&services, &transcode, &runtime = *runtime, &outband = *outband,
       http_enabled, &event_dictionary, preauth_total, preauth_per_ip,
       state_dir = options.state_dir, &admin, smtp = smtp.get(),
       cluster_node = cluster_node.get(),
       intake =
           options.store_events_listen
               ? std::optional<pimap::store::EventIntakeConfig>(intake_config)
               : std::nullopt](pimap::engine::Shard& shard) -> absl::Status {
        ShardServices& s = services[shard.id()];
        s.imap_config =
            std::make_unique<pimap::tcp::ImapServerConfig>(runtime.imap);
        s.http_config = std::make_unique<pimap::http_binding::HttpServerConfig>(
            runtime.http);
        s.session_config =
            std::make_unique<pimap::session::SessionConfig>(runtime.session);
        // The store's namespaces, learned by the shard's first store link.
        s.namespaces = std::make_unique<pimap::session::StoreNamespaces>();
        pimap::store::UpstreamConfig shard_upstream = runtime.upstream;
        shard_upstream.namespaces = s.namespaces.get();
        s.connector = std::make_unique<pimap::store::ImapStoreConnector>(
            &shard, shard_upstream);
        s.watches = std::make_unique<pimap::store::UserWatcherFactory>(
            &shard, shard_upstream);
        if (!state_dir.empty()) {
          auto state =
              pimap::store::SqliteStateStore::Open(state_dir, shard.id());
          if (!state.ok()) return state.status();
          s.state = std::move(*state);
        }
        s.sessions = std::make_unique<pimap::session::SessionRegistry>(
            &shard.timers(), &shard.counters(), s.session_config.get(),
            s.watches.get(), s.state.get());
        pimap::session::SessionRegistry* sessions = s.sessions.get();
        sessions->set_store_namespaces(s.namespaces.get());
        if (absl::Status st =
                pimap::StartOutband(shard, outband, sessions, &s.outband);
            !st.ok()) {
          return st;
        }
        s.links = std::make_unique<pimap::store::LinkPool>(
            s.connector.get(), &shard.timers(), &shard.counters(),
            runtime.pool);
        s.auth_cache = std::make_unique<pimap::session::AuthCache>(
            runtime.auth_cache_ttl_ms);
        s.login_throttle =
            std::make_unique<pimap::session::LoginThrottle>(runtime.throttle);
        // The shard's services, found by type on its own thread (a hand-over
        // arriving, the store-events intake delivering to the owner).
        pimap::engine::ServiceRegistry& registry = shard.services();
        registry.Register(s.sessions.get());
        registry.Register(s.links.get());
        registry.Register(s.auth_cache.get());
        registry.Register(s.login_throttle.get());
        s.preauth =
            std::make_unique<pimap::PreAuthGate>(preauth_total, preauth_per_ip);
        registry.Register(s.preauth.get());
        pimap::store::LinkPool* links = s.links.get();
        shard.AddStopHook([sessions, links] {
          sessions->Stop();
          links->Shutdown();
        });
        if (smtp != nullptr) {
          pimap::engine::Resolver* resolver =
              shard.services().Find<pimap::engine::Resolver>();
          if (resolver == nullptr) {
            s.smtp_resolver = std::make_unique<pimap::engine::Resolver>(&shard);
            resolver = s.smtp_resolver.get();
            shard.services().Register(resolver);
          }
          s.smtp = std::make_unique<pimap::smtp::SmtpSubmitter>(&shard,
                                                                resolver, smtp);
          sessions->set_submitter(s.smtp.get());
          // The registry's pointer goes before the submitter does.
          shard.AddStopHook([sessions] { sessions->set_submitter(nullptr); });
        }
        s.compressor = std::make_unique<pimap::http::ShardCompressor>();
        s.compressor->set_event_dictionary(event_dictionary);
        shard.services().Register(s.compressor.get());
        s.transcoder = std::make_unique<pimap::convert::Transcoder>(
            transcode, [&shard](absl::AnyInvocable<void()> task) {
              return shard.Post([task = std::move(task)](
                                    pimap::engine::Shard&) mutable { task(); });
            });
        shard.services().Register(s.transcoder.get());
        s.server = std::make_unique<pimap::tcp::ImapServer>(
            &shard, s.imap_config.get(), s.connector.get(), s.sessions.get(),
            s.links.get(), s.auth_cache.get());
        if (cluster_node != nullptr) {  // before the servers look it up
          pimap::StartClusterShard(shard, *cluster_node, sessions,
                                   s.server.get(), intake ? &*intake : nullptr,
                                   &s.cluster);
        }
        if (intake) {
          // The store's pushes go to the session layer of the user's shard.
          auto started = pimap::store::EventIntake::Start(
              &shard, *intake,
              [set =
                   &shard.set()](int owner) -> pimap::session::StoreEventSink* {
                // Called on the owner shard's thread: its own registry.
                return set->shard(owner)
                    .services()
                    .Find<pimap::session::SessionRegistry>();
              });
          if (!started.ok()) return started.status();
          pimap::store::EventIntake* i = *started;
          shard.AddStopHook([i] { i->Stop(); });
        }
        if (http_enabled) {
          s.http = std::make_unique<pimap::http_binding::HttpServer>(
              &shard, s.http_config.get(), s.connector.get(), s.sessions.get(),
              s.links.get(), s.auth_cache.get());
          if (absl::Status st = s.http->Start(); !st.ok()) return st;
        }
        if ((admin.host || !admin.unix_path.empty()) && shard.id() == 0) {
          // On shard 0's ring, like any other listener (admin_http.cc says
          // why only shard 0).
          if (absl::Status st = pimap::StartAdminEndpoints(shard, admin);
              !st.ok()) {
            return st;
          }
        }
        return s.server->Start();
      });
  if (!started.ok()) {
    return Fail(absl::StrCat("cannot start: ", started.message()), 1);
  }
  if (*inherited > 0) {
    // Every shard has taken what it could: fewer shards than the previous
    // process leave sockets over.
    const int unclaimed = pimap::engine::CloseUnclaimedInheritedSockets();
    PIMAP_LOG(INFO) << "inherited " << *inherited << " listening sockets"
                    << (unclaimed > 0
                            ? absl::StrCat(" (", unclaimed, " unused, closed)")
                            : std::string());
  }

  PIMAP_LOG(INFO) << "pimapd " << pimap::kVersion << " ready: " << shards
                  << " shards, store " << options.store.ToString();
  // systemd (Type=notify): ready now that every listener accepts.
  systemd.Notify(absl::StrCat("READY=1\nMAINPID=", getpid(),
                              "\nSTATUS=", shards, " shards, store ",
                              options.store.ToString()));
  // The process we upgrade may stop accepting now.
  upgrade_ready.Send();

  // SIGHUP reloads; the shards install what it built on their own threads.
  pimap::Reloader reloader(
      argc, argv, options, &set,
      [&services](pimap::engine::Shard& shard, const pimap::RuntimeConfig& c) {
        ShardServices& s = services[shard.id()];
        // In place: the servers, their connections and the registry point at
        // these objects.
        *s.imap_config = c.imap;
        *s.http_config = c.http;
        *s.session_config = c.session;
        s.sessions->OnConfigReloaded();
        pimap::store::UpstreamConfig upstream = c.upstream;
        upstream.namespaces = s.namespaces.get();
        s.connector->set_config(upstream);
        s.watches->set_config(std::move(upstream));
        s.links->Reconfigure(c.pool);
        s.login_throttle->Reconfigure(c.throttle);
        if (s.server && c.imap.tls) s.server->SetTls(c.imap.tls);
        if (s.http) {
          if (c.http.tls) s.http->SetTls(c.http.tls);
          s.http->OnConfigChanged();
        }
      });
  int signal_number = 0;
  // The watchdog's keep-alive between signals (systemd_notify.h), on a fixed
  // schedule that signals do not push back. The first round goes out now, so
  // that its keep-alive comes one interval after READY, well before
  // systemd's deadline (READY + WatchdogSec).
  const int64_t beat_ms = systemd.beat_interval_ms();
  int64_t next_beat_ms = pimap::MonotonicNowMs() + beat_ms;
  if (beat_ms > 0) systemd.Beat(set);
  auto beat_if_due = [&] {
    const int64_t now_ms = pimap::MonotonicNowMs();
    if (beat_ms <= 0 || now_ms < next_beat_ms) return;
    systemd.Beat(set);
    next_beat_ms = std::max(next_beat_ms + beat_ms, now_ms + 1);
  };
  // A graceful upgrade (SIGUSR2, upgrade.h): the new process, once it runs,
  // and when this one's drain is over.
  pid_t upgraded_to = 0;
  int64_t drain_end_ms = 0;
  auto upgrade = [&]() -> pid_t {
    if (cluster_node != nullptr) {
      // Two processes with one node id would take turns registering it, and
      // the new one could not claim what the old one holds: in a cluster, a
      // node is restarted (its users move to the others meanwhile).
      PIMAP_LOG(WARNING) << "SIGUSR2: no graceful upgrade in a cluster "
                            "(--cluster-etcd); restart the node instead";
      return 0;
    }
    if (options.state_dir.empty()) {
      PIMAP_LOG(WARNING) << "SIGUSR2: no --state-dir: sessions cannot move "
                            "to the new process; its devices start afresh "
                            "(RESYNC)";
    }
    std::vector<std::string> env;
    if (systemd.enabled()) {
      env.push_back(absl::StrCat("NOTIFY_SOCKET=", systemd.socket_path()));
      if (beat_ms > 0) {
        env.push_back(absl::StrCat("WATCHDOG_USEC=", beat_ms * 4000));
      }
    }
    absl::StatusOr<pimap::UpgradeChild> child = pimap::StartNewBinary(
        executable, argv, pimap::engine::ListeningSockets(), env);
    if (!child.ok()) {
      PIMAP_LOG(ERROR) << "SIGUSR2: cannot start " << executable << ": "
                       << child.status().message()
                       << "; this process serves on";
      return 0;
    }
    PIMAP_LOG(INFO) << "SIGUSR2: started " << executable << " (pid "
                    << child->pid << "); waiting for it to accept";
    if (absl::Status st =
            pimap::WaitUntilReady(*child, kUpgradeReadyTimeoutMs, beat_if_due);
        !st.ok()) {
      PIMAP_LOG(ERROR) << "SIGUSR2: upgrade abandoned: " << st.message()
                       << "; this process serves on";
      return 0;
    }
    // The sockets are the new process's now (the same ones: nothing queued
    // on them is lost when ours close).
    pimap::engine::MarkListenersHandedOver();
    const int64_t drain_ms =
        absl::ToInt64Milliseconds(reloader.running().drain_time);
    PIMAP_LOG(INFO) << "SIGUSR2: pid " << child->pid
                    << " accepts; no more accepting here, and the device "
                       "connections are told BYE over "
                    << drain_ms << " ms";
    for (int i = 0; i < set.count(); ++i) {
      auto drain = [&services, drain_ms](pimap::engine::Shard& shard) {
        ShardServices& s = services[shard.id()];
        constexpr absl::string_view kWhy = "[UNAVAILABLE] Server restarting";
        if (s.server) s.server->DrainOver(kWhy, drain_ms);
        if (s.http) s.http->Drain(kWhy);
      };
      bool posted = false;
      for (int attempt = 0; attempt < 1000 && !posted; ++attempt) {
        posted = set.shard(i).Post(pimap::engine::Shard::Task(drain));
        if (!posted) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (!posted) {
        PIMAP_LOG(WARNING) << "SIGUSR2: shard " << i
                           << " did not take the drain (inbox full); its "
                              "connections close at the stop";
      }
    }
    drain_end_ms = pimap::MonotonicNowMs() + drain_ms + kDrainMarginMs;
    return child->pid;
  };
  while (true) {
    beat_if_due();
    int64_t now_ms = pimap::MonotonicNowMs();
    if (upgraded_to > 0 && now_ms >= drain_end_ms) {
      signal_number = SIGUSR2;
      break;
    }
    int64_t wake_ms = -1;  // none: wait for a signal only
    if (beat_ms > 0) wake_ms = next_beat_ms;
    if (upgraded_to > 0) {
      wake_ms = wake_ms < 0 ? drain_end_ms : std::min(wake_ms, drain_end_ms);
    }
    if (wake_ms >= 0) {
      const int64_t ms = std::max<int64_t>(0, wake_ms - now_ms);
      const timespec wait{static_cast<time_t>(ms / 1000),
                          static_cast<long>(ms % 1000) * 1000000};
      signal_number = sigtimedwait(&signals, nullptr, &wait);
      // errno now, before anything else can change it.
      const int error = signal_number < 0 ? errno : 0;
      if (signal_number < 0) {
        if (error == EAGAIN || error == EINTR) continue;
        PIMAP_LOG(ERROR) << "sigtimedwait: " << std::strerror(error);
        break;
      }
    } else if (sigwait(&signals, &signal_number) != 0) {
      break;
    }
    if (signal_number == SIGUSR2) {
      if (upgraded_to > 0) {
        PIMAP_LOG(WARNING) << "SIGUSR2 ignored: an upgrade (to pid "
                           << upgraded_to << ") is under way";
        continue;
      }
      upgraded_to = upgrade();
      continue;
    }
    if (signal_number != SIGHUP) break;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);  // what systemd compares it with
    systemd.Notify(
        absl::StrCat("RELOADING=1\nMONOTONIC_USEC=",
                     int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000));
    // Counted for POST /admin/reload, which waits for a reload begun after it.
    pimap::AdminReloads& reloads = pimap::ProcessReloads();
    const uint64_t number =
        reloads.begun.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (!reloader.Reload().ok()) {
      reloads.last_failed.store(number, std::memory_order_release);
    }
    reloads.done.store(number, std::memory_order_release);
    systemd.Notify("READY=1");
  }
  if (upgraded_to > 0) {
    // The service goes on in the new process: systemd is told it is the main
    // one now (it said so itself at READY; this covers a lost datagram), and
    // not that the service stops.
    PIMAP_LOG(INFO) << "upgraded to pid " << upgraded_to << ": stopping";
    systemd.Notify(absl::StrCat("MAINPID=", upgraded_to));
    set.StopAndJoin(kStopGraceMs);
    pimap::ReapIfExited(upgraded_to);
  } else {
    PIMAP_LOG(INFO) << "signal " << signal_number << ": stopping";
    systemd.Notify("STOPPING=1");
    set.StopAndJoin(kStopGraceMs);
  }
  PIMAP_LOG(INFO) << "stopped";
  // The per-shard services die with `services` here, after every shard thread
  // has ended, so nothing can touch them concurrently.
  return 0;
}
