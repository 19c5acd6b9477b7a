// pimapd's runtime settings made from its options (runtime_config.h).
#include "tools/pimapd/runtime_config.h"

#include <zlib.h>

#include <fstream>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/tls/tls_context.h"
#include "core/base/cidr.h"
#include "core/engine/listener.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {

namespace {

void BuildImapConfig(const Options& options, const ServerTls& tls,
                     tcp::ImapServerConfig& config) {
  config.limits.max_line_bytes = options.max_line_bytes;
  config.limits.max_literal_bytes = options.max_literal_bytes;
  config.limits.max_depth = options.max_depth;
  config.allow_plaintext_auth = options.allow_plaintext_auth;
  // Checked when the options were read.
  config.user_name_format =
      *imap::UserNameFormat::Parse(options.user_name_format);
  config.max_output_bytes = options.max_output_bytes;
  config.login_timeout_ms = absl::ToInt64Milliseconds(options.login_timeout);
  config.idle_timeout_ms = absl::ToInt64Milliseconds(options.idle_timeout);
  config.store_timeout_ms = absl::ToInt64Milliseconds(options.store_timeout);
  config.park.park_after_ms = absl::ToInt64Milliseconds(options.park_after);
  config.hibernate_after_ms =
      absl::ToInt64Milliseconds(options.hibernate_after);
  config.deflate.window_bits = options.deflate_window_bits;
  config.deflate.mem_level = options.deflate_mem_level;
  config.deflate.idle_free_ms = absl::ToInt64Milliseconds(options.deflate_keep);
  config.deflate.flush =
      options.deflate_flush == "partial" ? Z_PARTIAL_FLUSH : Z_SYNC_FLUSH;
  if (options.imap_listen) {
    config.imap_listen = tcp::ListenAddress{options.imap_listen->host,
                                            options.imap_listen->port};
  }
  if (options.imaps_listen) {
    config.imaps_listen = tcp::ListenAddress{options.imaps_listen->host,
                                             options.imaps_listen->port};
  }
  if (options.cluster_listen && !options.cluster_etcd.empty()) {
    config.cluster_listen = tcp::ListenAddress{options.cluster_listen->host,
                                               options.cluster_listen->port};
  }
  config.tls = tls.imap;
  // Checked when the options were read.
  config.proxy_protocol.trusted = *ParseCidrList(options.proxy_protocol_from);
}

void BuildHttpConfig(const Options& options, const ServerTls& tls,
                     const tcp::ImapServerConfig& imap,
                     http_binding::HttpServerConfig& http_config) {
  http_config.proxy_protocol = imap.proxy_protocol;
  if (options.http_listen) {
    http_config.http_listen = http_binding::HttpListenAddress{
        options.http_listen->host, options.http_listen->port};
  }
  if (options.https_listen) {
    http_config.https_listen = http_binding::HttpListenAddress{
        options.https_listen->host, options.https_listen->port};
    http_config.tls = tls.https;
  }
  http_config.session.limits = imap.limits;
  http_config.session.path = options.http_path;
  // Plain HTTP is for a TLS terminator in front: login is allowed there as
  // --allow-plaintext-auth allows it on the plain IMAP port.
  http_config.session.login_allowed = true;
  http_config.session.user_name_format = imap.user_name_format;
  http_config.session.idle_max_ms =
      absl::ToInt64Milliseconds(options.http_idle_max);
  http_config.session.session_idle_ms = imap.idle_timeout_ms;
  http_config.max_body_bytes = options.http_max_body;
  http_config.request_timeout_ms =
      absl::ToInt64Milliseconds(options.http_request_timeout);
  http_config.store_timeout_ms = imap.store_timeout_ms;
  http_config.max_output_bytes = imap.max_output_bytes;
}

absl::Status BuildUpstreamConfig(const Options& options,
                                 const tcp::ImapServerConfig& imap,
                                 store::UpstreamConfig& upstream) {
  upstream.host = options.store.host;
  upstream.port = options.store.port;
  upstream.timeout_ms = absl::ToInt64Milliseconds(options.store_timeout);
  upstream.limits = imap.limits;
  auto address = engine::ResolveAddress(options.store.host, options.store.port);
  if (!address.ok()) return address.status();
  upstream.address = address->first;
  upstream.address_len = address->second;
  upstream.master_separator = options.store_master_separator;
  if (options.store_tls != "none") {
    upstream.tls = options.store_tls == "implicit" ? store::StoreTls::kImplicit
                                                   : store::StoreTls::kStartTls;
    auto store_tls = tls::TlsContext::CreateClient(options.store_tls_ca_file);
    if (!store_tls.ok()) return store_tls.status();
    upstream.tls_context = *std::move(store_tls);
    upstream.tls_name = options.store_tls_name.empty() ? options.store.host
                                                       : options.store_tls_name;
  }
  return absl::OkStatus();
}

absl::Status BuildSessionConfig(const Options& options,
                                session::SessionConfig& session_config) {
  session_config.journal_limit = options.journal_limit;
  session_config.max_devices_per_user =
      static_cast<size_t>(options.max_devices_per_user);
  session_config.max_filters_per_device =
      static_cast<size_t>(options.max_filters_per_device);
  session_config.max_filter_bytes = options.max_filter_bytes;
  session_config.max_xdeliver_bytes = options.xdeliver_max_bytes;
  session_config.smtp_sender_domain = options.smtp_sender_domain;
  session_config.idle_keepalive_ms =
      absl::ToInt64Milliseconds(options.idle_keepalive);
  session_config.session_lifetime_ms =
      absl::ToInt64Milliseconds(options.session_lifetime);
  session_config.parked_watch_linger_ms =
      absl::ToInt64Milliseconds(options.store_link_idle);
  if (options.default_notification_filter == "ALL") {
    session_config.default_notification = session::FilterSpec::All();
  }
  if (!options.store_master_user.empty()) {
    std::ifstream in(options.store_master_password_file);
    std::string password;
    if (!in || !std::getline(in, password)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read --store-master-password-file ",
                       options.store_master_password_file));
    }
    session_config.master_user = options.store_master_user;
    session_config.master_password = password;
  }
  session_config.watch = options.store_events != "push";
  session_config.pushes = options.store_events != "notify";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerTls> BuildServerTls(const Options& options) {
  ServerTls made;
  if (options.tls_cert.empty()) return made;
  std::vector<tls::CertificateFiles> files = {
      {options.tls_cert, options.tls_key}};
  for (const Options::CertKeyFiles& sni : options.tls_sni_certs) {
    files.push_back({sni.cert, sni.key});
  }
  // ALPN "imap" (RFC 7301's registry) on STARTTLS and the implicit-TLS port.
  auto imap = tls::TlsContext::CreateServer(files, {"imap"});
  if (!imap.ok()) return imap.status();
  made.imap = *std::move(imap);
  if (options.https_listen) {
    auto https = tls::TlsContext::CreateServer(files, {"h2", "http/1.1"});
    if (!https.ok()) return https.status();
    made.https = *std::move(https);
  }
  return made;
}

absl::StatusOr<RuntimeConfig> BuildRuntimeConfig(const Options& options,
                                                 const ServerTls& tls) {
  RuntimeConfig c;
  BuildImapConfig(options, tls, c.imap);
  BuildHttpConfig(options, tls, c.imap, c.http);
  if (absl::Status s = BuildUpstreamConfig(options, c.imap, c.upstream);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = BuildSessionConfig(options, c.session); !s.ok()) {
    return s;
  }
  c.pool = {options.store_links_per_shard,
            absl::ToInt64Milliseconds(options.store_link_idle)};
  c.auth_cache_ttl_ms = absl::ToInt64Milliseconds(options.auth_cache_ttl);
  c.throttle.base_delay_ms =
      absl::ToInt64Milliseconds(options.login_fail_delay);
  c.throttle.max_failures = options.login_fail_max;
  c.throttle.window_ms = absl::ToInt64Milliseconds(options.login_fail_window);
  return c;
}

namespace {

// What a reload takes from the new options: each is read afresh by what
// starts after it (a connection, a command, a store link, a login) or at the
// setting's next use. What is bound at start-up (sockets, threads, files,
// event sources, the user-name format durable state is keyed by) is not.
// The one list of them: PlanReload derives the names from it.
void TakeChangeable(const Options& fresh, Options& to) {
  to.log_level = fresh.log_level;
  to.log_format = fresh.log_format;
  to.tls_cert = fresh.tls_cert;
  to.tls_key = fresh.tls_key;
  to.tls_sni_certs = fresh.tls_sni_certs;
  to.max_line_bytes = fresh.max_line_bytes;
  to.max_literal_bytes = fresh.max_literal_bytes;
  to.max_depth = fresh.max_depth;
  to.max_output_bytes = fresh.max_output_bytes;
  to.login_timeout = fresh.login_timeout;
  to.idle_timeout = fresh.idle_timeout;
  to.idle_keepalive = fresh.idle_keepalive;
  to.store_timeout = fresh.store_timeout;
  to.store_link_idle = fresh.store_link_idle;
  to.store_links_per_shard = fresh.store_links_per_shard;
  to.park_after = fresh.park_after;
  to.hibernate_after = fresh.hibernate_after;
  to.drain_time = fresh.drain_time;  // read at the next SIGUSR2
  to.deflate_window_bits = fresh.deflate_window_bits;
  to.deflate_mem_level = fresh.deflate_mem_level;
  to.deflate_keep = fresh.deflate_keep;
  to.deflate_flush = fresh.deflate_flush;
  to.login_fail_delay = fresh.login_fail_delay;
  to.login_fail_max = fresh.login_fail_max;
  to.login_fail_window = fresh.login_fail_window;
  to.journal_limit = fresh.journal_limit;
  to.max_devices_per_user = fresh.max_devices_per_user;
  to.max_filters_per_device = fresh.max_filters_per_device;
  to.max_filter_bytes = fresh.max_filter_bytes;
  to.session_lifetime = fresh.session_lifetime;
  to.default_notification_filter = fresh.default_notification_filter;
  to.http_idle_max = fresh.http_idle_max;
  to.http_request_timeout = fresh.http_request_timeout;
  to.http_max_body = fresh.http_max_body;
  // For the store links and watches opened from now on.
  to.store = fresh.store;
  to.store_tls_ca_file = fresh.store_tls_ca_file;
  to.store_tls_name = fresh.store_tls_name;
  to.store_master_password_file = fresh.store_master_password_file;
}

}  // namespace

ReloadPlan PlanReload(const Options& running, const Options& fresh) {
  ReloadPlan plan;
  plan.options = running;
  TakeChangeable(fresh, plan.options);
  for (absl::Span<const OptionSpec> table : OptionTables()) {
    for (const OptionSpec& spec : table) {
      const std::string wanted = spec.default_value(fresh);
      if (wanted == spec.default_value(running)) continue;
      if (spec.default_value(plan.options) == wanted) {
        plan.applied.push_back(spec.name);
      } else {
        plan.need_restart.push_back(spec.name);
      }
    }
  }
  return plan;
}

}  // namespace pimap
