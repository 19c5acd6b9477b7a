// pimapd command-line and config-file options: the Options struct with its
// defaults, ParseCommandLine() (flags + optional --config file) and
// HelpText(). Pure parsing: nothing here opens sockets or checks rlimits;
// the daemon validates the environment (e.g. RLIMIT_NOFILE against
// --max-connections-per-shard) at startup.
//
// Precedence: defaults < config file < command-line flags, regardless of
// where --config appears on the command line. Errors are InvalidArgument
// with a message naming the option (and, for the file, "FILE:LINE") and the
// bad value; the daemon prints it and exits with code 2.
//
// Hazard: option values may be echoed in error messages, so there must never
// be an option that carries a secret (a password or private key material);
// --tls-key is a file path, not the key.
#ifndef PIMAP_TOOLS_PIMAPD_OPTIONS_H_
#define PIMAP_TOOLS_PIMAPD_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/base/log.h"

namespace pimap {

struct HostPort {
  std::string host;  // Name or address; IPv6 literals without brackets.
  uint16_t port = 0;
  // "host:port", or "[v6]:port" when host contains ':'.
  std::string ToString() const;
};

// Accepts "127.0.0.1:1143", "[::1]:993", "localhost:143". The host must be
// non-empty (use 0.0.0.0 or [::] for "all addresses"); the port 1..65535.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

struct Options {
  std::string config_file;  // --config FILE
  HostPort store;           // --store HOST:PORT (required)
  // --imap-listen, default 127.0.0.1:1143; value "none" disables.
  std::optional<HostPort> imap_listen = HostPort{"127.0.0.1", 1143};
  std::optional<HostPort> imaps_listen;  // --imaps-listen, default disabled
  // --http-listen (plain, behind a TLS terminator) and --https-listen: the
  // HTTP binding of P-IMAP, default disabled; --http-path its request path.
  std::optional<HostPort> http_listen;
  std::optional<HostPort> https_listen;
  std::string http_path = "/pimap";
  absl::Duration http_idle_max = absl::Minutes(10);  // --http-idle-max
  size_t http_max_body = 8 << 20;                    // --http-max-body
  absl::Duration http_request_timeout = absl::Seconds(30);
  // --event-dictionary: FILE, "default" (built in) or "none".
  std::string event_dictionary = "default";
  // --admin-listen, default disabled (serves GET /metrics).
  std::optional<HostPort> admin_listen;
  // --admin-socket PATH (empty: none), its file mode, and the bearer token
  // file the /admin/ commands want on --admin-listen (empty: refused there).
  std::string admin_socket;
  uint32_t admin_socket_mode = 0600;
  std::string admin_token_file;
  // --tls-cert PEM, --tls-key PEM: both or neither; required by
  // --imaps-listen; when set, STARTTLS is offered on the plain port.
  std::string tls_cert, tls_key;
  // --tls-sni-cert CERT,KEY (repeatable; "none" empties the list): more
  // certificates, each served to clients asking in SNI for a DNS name it
  // carries; --tls-cert stays the default. Needs --tls-cert.
  struct CertKeyFiles {
    std::string cert, key;
    bool operator==(const CertKeyFiles&) const = default;
  };
  std::vector<CertKeyFiles> tls_sni_certs;
  // XCONVERT (options_convert.cc): --converter FROM:TO=PROGRAM [ARGS]
  // (repeatable; "none" empties the list), each as given (checked with
  // convert::ParseConverterRule), and the converters' limits.
  std::vector<std::string> converters;
  absl::Duration converter_timeout = absl::Seconds(10);
  uint64_t converter_max_output = 16ull << 20;
  uint64_t converter_memory = 1ull << 30;  // 0: unlimited
  uint64_t convert_max_input = 8ull << 20;
  int shards = 0;  // --shards N, 0 = number of online CPUs; else 1..256
  bool allow_plaintext_auth = false;          // --allow-plaintext-auth
  LogLevel log_level = LogLevel::kInfo;       // --log-level
  LogFormat log_format = LogFormat::kLogfmt;  // --log-format
  size_t max_line_bytes = 64 * 1024;          // --max-line-bytes
  uint64_t max_literal_bytes = 64ull << 20;   // --max-literal-bytes
  int max_depth = 32;                         // --max-nesting-depth
  // --max-output-bytes: per-connection output bound before the connection
  // is closed.
  size_t max_output_bytes = 4 << 20;
  // --login-timeout (unauthenticated connections).
  absl::Duration login_timeout = absl::Seconds(60);
  // --idle-timeout (authenticated; RFC 3501 §5.4 requires >= 30 min, which
  // is NOT enforced here so that tests can use short values).
  absl::Duration idle_timeout = absl::Minutes(31);
  // --store-timeout (connect + greeting + login upstream).
  absl::Duration store_timeout = absl::Seconds(15);
  // --store-links-per-shard: cap on the store links a shard's link pool keeps
  // open or opening (store/link_pool.h).
  size_t store_links_per_shard = 1000;
  // --store-link-idle: an idle pooled store link is logged out after this.
  absl::Duration store_link_idle = absl::Seconds(30);
  absl::Duration park_after = absl::Seconds(5);
  // --hibernate-after: an idle P-IMAP device keeps only a small record
  // (bindings/tcp/hibernated_connection.h).
  absl::Duration hibernate_after = absl::Seconds(10);
  // A graceful upgrade (SIGUSR2) spreads the old process's goodbyes over this.
  absl::Duration drain_time = absl::Seconds(10);
  int deflate_window_bits = 11;
  int deflate_mem_level = 4;
  absl::Duration deflate_keep = absl::Seconds(10);
  std::string deflate_flush = "sync";
  // --auth-cache-ttl: how long a verified login is trusted without asking
  // the store again; zero disables the cache.
  absl::Duration auth_cache_ttl = absl::Minutes(10);
  // Login throttling (core/session/login_throttle.h): --login-fail-delay
  // (zero: off), --login-fail-max (0: never refuse), --login-fail-window.
  absl::Duration login_fail_delay = absl::Seconds(1);
  int login_fail_max = 10;
  absl::Duration login_fail_window = absl::Minutes(15);
  // --max-connections-per-shard: io_uring direct-descriptor table size;
  // must stay <= RLIMIT_NOFILE (checked by the daemon, not here).
  int max_connections_per_shard = 16000;
  // Connections not logged in yet per shard (0: a quarter of the above) and
  // per client IP and shard (core/base/preauth_gate.h).
  int max_preauth_per_shard = 0;  // --max-preauth-per-shard
  int max_preauth_per_ip = 64;    // --max-preauth-per-ip
  // P-IMAP sessions.
  size_t journal_limit = 10000;                       // --journal-limit
  absl::Duration session_lifetime = absl::Hours(24);  // --session-lifetime
  // --user-name-format (the store's rule, e.g. Dovecot's default %Lu);
  // --user-name-case fold|keep sets it to %Lu / %u.
  std::string user_name_format = "%Lu";
  // --proxy-protocol-from (checked when read; "" none).
  std::string proxy_protocol_from;
  // Per-user and per-device bounds (core/session/session_registry.h).
  int max_devices_per_user = 32;    // --max-devices-per-user (0: none)
  int max_filters_per_device = 64;  // --max-filters-per-device (0: none)
  size_t max_filter_bytes = 4096;   // --max-filter-bytes
  std::string default_notification_filter =
      "NONE";                     // --default-notification-filter ALL|NONE
  std::string store_master_user;  // --store-master-user
  std::string store_master_password_file;    // --store-master-password-file
  std::string store_master_separator = "*";  // --store-master-separator
  // The store link's TLS: --store-tls none|starttls|implicit, the trusted CAs
  // (empty: the system's) and the name to verify (empty: the --store host).
  std::string store_tls = "none";
  std::string store_tls_ca_file;  // --store-tls-ca-file
  std::string store_tls_name;     // --store-tls-name
  std::optional<HostPort>
      store_events_listen;  // --store-events-listen: intake for store pushes
  std::string store_events_secret_file;  // --store-events-secret-file
  bool store_events_insecure = false;    // --store-events-insecure: no secret
  std::string store_events = "notify";   // --store-events notify|push|both
  std::string state_dir;  // --state-dir: durable sessions (SQLite per shard)
  absl::Duration idle_keepalive = absl::Minutes(10);  // --idle-keepalive
  // The cluster (issue 16; core/cluster, bindings/etcd; rows in
  // options_cluster.cc). No etcd endpoints: a single node, no cluster.
  std::vector<std::string> cluster_etcd;  // --cluster-etcd URL[,URL...]
  std::string cluster_name = "pimap";
  std::string cluster_node_id;  // empty: the host name
  std::optional<HostPort> cluster_listen;
  std::string cluster_advertise;  // IP:PORT; empty: --cluster-listen's
  std::string cluster_secret_file;
  absl::Duration cluster_lease_ttl = absl::Seconds(5);
  // XDELIVER's SMTP submission (bindings/smtp; rows in options_smtp.cc).
  std::optional<HostPort> smtp;  // --smtp HOST:PORT; unset: no XDELIVER
  bool smtp_starttls = false;
  std::string smtp_ca_file;
  std::string smtp_auth_user;
  std::string smtp_auth_password_file;
  std::string smtp_helo;           // empty: the host name
  std::string smtp_sender_domain;  // login names without '@'
  absl::Duration smtp_timeout = absl::Seconds(60);
  uint64_t xdeliver_max_bytes = 10 << 20;
  // Out-of-band wake-ups (core/session/outband_notifier.h, bindings/webpush;
  // rows in options_outband.cc).
  absl::Duration outband_min_interval = absl::Seconds(60);
  absl::Duration outband_max_age = absl::Hours(1);
  absl::Duration outband_timeout = absl::Seconds(10);
  int outband_queue_limit = 4096;
  bool outband_allow_private = false;
  std::string outband_ca_file;
  std::string vapid_key;  // --vapid-key FILE: enables WEBPUSH
  std::string vapid_subject;
  bool outband_udp = false;           // --outband-udp: enables UDP
  bool outband_full_payload = false;  // --outband-payload full (else minimal)
  std::string emn_webhook;  // --emn-webhook URL: enables SMS and WAP_PUSH
  bool emn_text = false;    // --emn-format text (default wbxml)
  std::string emn_webhook_secret_file;
};

struct CommandLine {
  Options options;
  bool show_help = false;           // --help / -h: print HelpText(), exit 0
  bool show_version = false;        // --version: print the version, exit 0
  bool show_sample_config = false;  // --sample-config: SampleConfig(), exit 0
};

// Parses argv (argv[0] is the program name and is skipped). Accepts
// "--name value" and "--name=value"; boolean flags as a bare "--name" or
// "--name=true|false|yes|no|1|0". If --help or --version appears anywhere,
// returns immediately with only that bit set (nothing else is parsed or
// validated, and the config file is not read).
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// Usage line plus every option with its default and meaning.
std::string HelpText();
// A configuration file listing every option with its meaning and default, all
// commented out but --store (tools/systemd/pimapd.conf is this text).
std::string SampleConfig();

// Value parsers shared with tests and future admin tooling.
// Plain bytes or a K/M/G suffix (powers of 1024), optionally followed by
// "B" or "iB": "65536", "64K", "64KiB", "4M", "1G".
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);
// absl::ParseDuration forms ("90s", "10m", "1h30m") or a bare number of
// seconds ("60", "1.5").
absl::StatusOr<absl::Duration> ParseDurationOrSeconds(absl::string_view text);

// The option table's row parsers (option_values.cc); their errors name the
// expected form, not the option (the caller adds that).
absl::StatusOr<int64_t> ParseIntInRange(absl::string_view text, int64_t lo,
                                        int64_t hi);
std::string FormatByteSize(uint64_t v);
absl::StatusOr<uint64_t> ParseSizeInRange(absl::string_view text, uint64_t lo,
                                          uint64_t hi);
absl::StatusOr<bool> ParseBool(absl::string_view text);
absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view text);
absl::StatusOr<absl::Duration> ParseNonNegativeDuration(absl::string_view text);
absl::StatusOr<std::optional<HostPort>> ParseOptionalHostPort(
    absl::string_view text);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_OPTIONS_H_
