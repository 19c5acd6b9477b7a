// pimapd option parsing (see options.h). Every option is one row of
// kOptionSpecs: name, metavar, help, how to apply a value and how to print
// the default. The command line, the config file and HelpText() all use that
// one table, so they cannot drift apart.
#include "tools/pimapd/options.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/cidr.h"
#include "core/imap/user_name_format.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

using absl::InvalidArgumentError;

std::string FormatOptionalHostPort(const std::optional<HostPort>& hp) {
  return hp.has_value() ? hp->ToString() : "none";
}

// Bounds. Sizes have generous upper limits that only catch typos
// ("64G" for a line length).
constexpr uint64_t kKiB = 1024;
constexpr uint64_t kGiB = kKiB * kKiB * kKiB;

const OptionSpec kOptionSpecs[] = {
    {"store", "HOST:PORT", "IMAP store that pimapd relays to (required).",
     [](absl::string_view v, Options& o) {
       return Set(ParseHostPort(v), o.store);
     },
     [](const Options& o) {
       return o.store.host.empty() ? std::string("none") : o.store.ToString();
     }},
    {"imap-listen", "HOST:PORT|none",
     "Plain IMAP listener for devices; offers STARTTLS when --tls-cert and "
     "--tls-key are set. \"none\" disables it.",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.imap_listen);
     },
     [](const Options& o) { return FormatOptionalHostPort(o.imap_listen); }},
    {"imaps-listen", "HOST:PORT|none",
     "Implicit-TLS IMAP listener (requires --tls-cert and --tls-key).",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.imaps_listen);
     },
     [](const Options& o) { return FormatOptionalHostPort(o.imaps_listen); }},
    {"http-listen", "HOST:PORT|none",
     "Plain HTTP listener of the P-IMAP HTTP binding, for use behind a TLS "
     "terminator only (credentials travel in it).",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.http_listen);
     },
     [](const Options& o) { return FormatOptionalHostPort(o.http_listen); }},
    {"https-listen", "HOST:PORT|none",
     "HTTPS listener of the P-IMAP HTTP binding (ALPN http/1.1; requires "
     "--tls-cert and --tls-key).",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.https_listen);
     },
     [](const Options& o) { return FormatOptionalHostPort(o.https_listen); }},
    {"http-path", "PATH",
     "Request path of the HTTP binding; POSTs to it carry IMAP commands.",
     [](absl::string_view v, Options& o) {
       if (v.empty() || v[0] != '/' ||
           v.find_first_of(" ?#;,\t") != absl::string_view::npos) {
         return absl::InvalidArgumentError(
             absl::StrCat("invalid value \"", absl::CHexEscape(v),
                          "\": expected an absolute path such as /pimap"));
       }
       o.http_path = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.http_path; }},
    {"http-idle-max", "DURATION",
     "Longest HTTP long poll: a batch ending in IDLE gets its tagged answer "
     "after this at the latest.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.http_idle_max);
     },
     [](const Options& o) { return absl::FormatDuration(o.http_idle_max); }},
    {"http-request-timeout", "DURATION",
     "Longest time to receive one HTTP request, head and body (a deadline "
     "from its first byte: slow senders cannot hold a connection); 408 after.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.http_request_timeout);
     },
     [](const Options& o) {
       return absl::FormatDuration(o.http_request_timeout);
     }},
    {"event-dictionary", "FILE|default|none",
     "zstd dictionary for pushed-event frames (XZSTDEVENTS): a file trained "
     "by pimap-dict-train, the built-in one (default), or none to not offer "
     "the extension.",
     [](absl::string_view v, Options& o) {
       if (v.empty()) {
         return absl::InvalidArgumentError(
             "expected a file, \"default\" or \"none\"");
       }
       o.event_dictionary = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.event_dictionary; }},
    {"http-max-body", "SIZE",
     "Largest HTTP request body (a batch of commands with their literals); "
     "larger requests get 413.",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, kKiB, 4 * kGiB), o.http_max_body);
     },
     [](const Options& o) { return absl::StrCat(o.http_max_body); }},
    {"admin-listen", "HOST:PORT|none",
     "Admin HTTP listener serving GET /metrics (Prometheus), and pimapctl's "
     "commands to clients with the --admin-token-file token. Keep it on a "
     "private address.",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.admin_listen);
     },
     [](const Options& o) { return FormatOptionalHostPort(o.admin_listen); }},
    {"shards", "N",
     "Number of shard (event-loop) threads, 1..256; 0 = one per online CPU.",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 0, 256), o.shards);
     },
     [](const Options& o) { return absl::StrCat(o.shards); }},
    {"allow-plaintext-auth", nullptr,
     "Allow LOGIN / AUTHENTICATE PLAIN on connections without TLS. Only for "
     "testing or trusted networks: passwords cross the wire in clear.",
     [](absl::string_view v, Options& o) {
       return Set(ParseBool(v), o.allow_plaintext_auth);
     },
     [](const Options& o) {
       return std::string(o.allow_plaintext_auth ? "true" : "false");
     }},
    {"log-level", "LEVEL",
     "Minimum level logged to stderr: debug, info, warning or error.",
     [](absl::string_view v, Options& o) {
       absl::StatusOr<LogLevel> l = ParseLogLevel(v);
       if (!l.ok()) {
         return InvalidArgumentError("expected debug, info, warning or error");
       }
       o.log_level = *l;
       return absl::OkStatus();
     },
     [](const Options& o) { return std::string(LogLevelName(o.log_level)); }},
    {"log-format", "FORMAT",
     "Shape of the log lines: logfmt (key=value), json (one object per "
     "line) or text (the plain lines of old, for reading by eye). See "
     "docs/logging.md.",
     [](absl::string_view v, Options& o) {
       absl::StatusOr<LogFormat> f = ParseLogFormat(v);
       if (!f.ok())
         return InvalidArgumentError("expected logfmt, json or text");
       o.log_format = *f;
       return absl::OkStatus();
     },
     [](const Options& o) { return std::string(LogFormatName(o.log_format)); }},
    {"max-line-bytes", "SIZE",
     "Longest IMAP command line accepted from a device (1K..1G).",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, kKiB, kGiB), o.max_line_bytes);
     },
     [](const Options& o) { return FormatByteSize(o.max_line_bytes); }},
    {"max-literal-bytes", "SIZE",
     "Largest IMAP literal (e.g. APPEND message) accepted (1..1024G).",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, 1, 1024 * kGiB), o.max_literal_bytes);
     },
     [](const Options& o) { return FormatByteSize(o.max_literal_bytes); }},
    {"max-nesting-depth", "N",
     "Deepest parenthesis nesting accepted in a command (1..1024).",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 1024), o.max_depth);
     },
     [](const Options& o) { return absl::StrCat(o.max_depth); }},
    {"max-output-bytes", "SIZE",
     "Output queued for one device before its connection is closed as too "
     "slow (4K..1024G).",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, 4 * kKiB, 1024 * kGiB),
                  o.max_output_bytes);
     },
     [](const Options& o) { return FormatByteSize(o.max_output_bytes); }},
    {"login-timeout", "DURATION",
     "Time an unauthenticated connection may stay open, from its accept "
     "(what it sends meanwhile does not extend it).",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.login_timeout);
     },
     [](const Options& o) { return absl::FormatDuration(o.login_timeout); }},
    {"idle-timeout", "DURATION",
     "Autologout of idle authenticated connections; RFC 3501 section 5.4 "
     "requires at least 30m.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.idle_timeout);
     },
     [](const Options& o) { return absl::FormatDuration(o.idle_timeout); }},
    {"store-timeout", "DURATION",
     "Limit for connecting to the store, its greeting and the upstream "
     "login.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.store_timeout);
     },
     [](const Options& o) { return absl::FormatDuration(o.store_timeout); }},
    {"store-links-per-shard", "N",
     "Store connections a shard may keep open or opening for its devices "
     "(1..1048576); idle ones are lent to the next command and the least "
     "recently used idle one is logged out when another user needs a slot.",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 1 << 20), o.store_links_per_shard);
     },
     [](const Options& o) { return absl::StrCat(o.store_links_per_shard); }},
    {"store-link-idle", "DURATION",
     "An idle pooled store connection is logged out after this.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.store_link_idle);
     },
     [](const Options& o) { return absl::FormatDuration(o.store_link_idle); }},
    {"deflate-window-bits", "N",
     "COMPRESS=DEFLATE: the outbound window is 2^N bytes (9..15); smaller "
     "costs less memory per connection sending output, compresses less.",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 9, 15), o.deflate_window_bits);
     },
     [](const Options& o) { return absl::StrCat(o.deflate_window_bits); }},
    {"deflate-mem-level", "N",
     "COMPRESS=DEFLATE: zlib's memLevel for the outbound compressor (1..9).",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 9), o.deflate_mem_level);
     },
     [](const Options& o) { return absl::StrCat(o.deflate_mem_level); }},
    {"deflate-keep", "DURATION",
     "COMPRESS=DEFLATE: how long a connection keeps its outbound compressor "
     "after output went idle (the next event compresses against the last); "
     "0 frees it as soon as output has left.",
     [](absl::string_view v, Options& o) {
       return Set(ParseNonNegativeDuration(v), o.deflate_keep);
     },
     [](const Options& o) { return absl::FormatDuration(o.deflate_keep); }},
    {"deflate-flush", "sync|partial",
     "COMPRESS=DEFLATE: how each write is flushed. sync (default) works with "
     "every inflater; partial saves 2-3 bytes per write (a third of a pushed "
     "event) but stalls clients whose inflater returns data only at a sync "
     "flush (Go's compress/flate).",
     [](absl::string_view v, Options& o) {
       if (v != "sync" && v != "partial") {
         return absl::InvalidArgumentError(absl::StrCat(
             "invalid value \"", v, "\": expected sync or partial"));
       }
       o.deflate_flush = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.deflate_flush; }},
    {"park-after", "DURATION",
     "A stock IMAP client (no \"#device\") in IDLE this long with a mailbox "
     "selected is parked: its store connection goes back to the pool and the "
     "gateway answers its IDLE from store events; 0 never parks.",
     [](absl::string_view v, Options& o) {
       return Set(ParseNonNegativeDuration(v), o.park_after);
     },
     [](const Options& o) { return absl::FormatDuration(o.park_after); }},
    {"hibernate-after", "DURATION",
     "A P-IMAP device this long without input, idling in the gateway's own "
     "IDLE with nothing pending, hibernates: only its socket and a small "
     "record stay until its next byte or event; 0 never hibernates.",
     [](absl::string_view v, Options& o) {
       return Set(ParseNonNegativeDuration(v), o.hibernate_after);
     },
     [](const Options& o) { return absl::FormatDuration(o.hibernate_after); }},
    {"drain-time", "DURATION",
     "A graceful upgrade (SIGUSR2) spreads the old process's BYEs over this.",
     [](absl::string_view v, Options& o) {
       return Set(ParseNonNegativeDuration(v), o.drain_time);
     },
     [](const Options& o) { return absl::FormatDuration(o.drain_time); }},
    {"auth-cache-ttl", "DURATION",
     "How long a login the store accepted is trusted without asking the "
     "store again; 0 disables the cache.",
     [](absl::string_view v, Options& o) {
       return Set(ParseNonNegativeDuration(v), o.auth_cache_ttl);
     },
     [](const Options& o) { return absl::FormatDuration(o.auth_cache_ttl); }},
    {"login-fail-delay", "DURATION",
     "After a failed login of a user, or from a client IP, the next attempt "
     "waits this long (doubled per further failure, at most 30s) before it "
     "reaches the store; 0 turns login throttling off.",
     [](absl::string_view v, Options& o) {
       return Set(ParseNonNegativeDuration(v), o.login_fail_delay);
     },
     [](const Options& o) { return absl::FormatDuration(o.login_fail_delay); }},
    {"login-fail-max", "N",
     "Failed logins of a user (or from an IP) after which its attempts get "
     "NO [UNAVAILABLE] without asking the store, until --login-fail-window "
     "has passed (0..1000; 0: never).",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 0, 1000), o.login_fail_max);
     },
     [](const Options& o) { return absl::StrCat(o.login_fail_max); }},
    {"login-fail-window", "DURATION",
     "Failed logins are forgotten this long after the last one; a successful "
     "login forgets them at once.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.login_fail_window);
     },
     [](const Options& o) {
       return absl::FormatDuration(o.login_fail_window);
     }},
    {"max-connections-per-shard", "N",
     "Device connections per shard (io_uring direct-descriptor table size, "
     "1..1048576); must not exceed RLIMIT_NOFILE.",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 1 << 20), o.max_connections_per_shard);
     },
     [](const Options& o) {
       return absl::StrCat(o.max_connections_per_shard);
     }},
    {"max-preauth-per-shard", "N",
     "Connections (IMAP, HTTP) not logged in yet per shard (0: a quarter of "
     "--max-connections-per-shard); past it new ones get BYE [UNAVAILABLE] "
     "(HTTP: 503).",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 0, 1 << 20), o.max_preauth_per_shard);
     },
     [](const Options& o) { return absl::StrCat(o.max_preauth_per_shard); }},
    {"max-preauth-per-ip", "N",
     "The same per client IP and shard (1..1048576).",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 1 << 20), o.max_preauth_per_ip);
     },
     [](const Options& o) { return absl::StrCat(o.max_preauth_per_ip); }},
    {"journal-limit", "N",
     "Events kept per P-IMAP device session while they are not acknowledged "
     "(1..10000000); past it the folder is rebuilt from the store or gets "
     "RESYNC.",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 1, 10000000), o.journal_limit);
     },
     [](const Options& o) { return absl::StrCat(o.journal_limit); }},
    {"user-name-format", "FORMAT",
     "The store's rule for user names, applied before anything uses a name "
     "(owner shard, sessions, auth cache, store login, store pushes), so that "
     "the gateway keys a user as the store does: set it to the store's "
     "auth_username_format. Dovecot's variables %u (whole name), %n (before "
     "the first @), %d (after it), also as %{user} %{username} %{domain}, "
     "with L or U for lower or upper case (%Lu, %Ln@%Ld); %% is a percent "
     "sign. It must name the user (%u or %n).",
     [](absl::string_view v, Options& o) {
       absl::StatusOr<imap::UserNameFormat> format =
           imap::UserNameFormat::Parse(v);
       if (!format.ok()) return format.status();
       o.user_name_format = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.user_name_format; }},
    {"user-name-case", "fold|keep",
     "Shorthand for --user-name-format: fold is %Lu (Alice and alice are one "
     "user, as for Dovecot's default), keep is %u (a store whose user names "
     "differ by case).",
     [](absl::string_view v, Options& o) {
       if (v != "fold" && v != "keep") {
         return absl::InvalidArgumentError(
             absl::StrCat("invalid value \"", v, "\": expected fold or keep"));
       }
       o.user_name_format = v == "fold" ? "%Lu" : "%u";
       return absl::OkStatus();
     },
     [](const Options& o) {
       return std::string(o.user_name_format == "%u"    ? "keep"
                          : o.user_name_format == "%Lu" ? "fold"
                                                        : "none");
     }},
    {"proxy-protocol-from", "CIDR[,CIDR...]",
     "Load balancers (e.g. HAProxy with send-proxy-v2) whose PROXY protocol "
     "header (v1 or v2) is believed on the IMAP and HTTP listeners: a "
     "connection from one of them must begin with one, and the client's "
     "address it carries is used everywhere (logs, login throttling, the ID "
     "sent to the store). From other addresses none is read. Default: none.",
     [](absl::string_view v, Options& o) {
       absl::StatusOr<std::vector<CidrRange>> ranges = ParseCidrList(v);
       if (!ranges.ok()) return ranges.status();
       o.proxy_protocol_from = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.proxy_protocol_from; }},
    {"max-devices-per-user", "N",
     "P-IMAP device sessions one user may hold (0..100000; 0: no limit); the "
     "login of one more device gets NO [LIMIT].",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 0, 100000), o.max_devices_per_user);
     },
     [](const Options& o) { return absl::StrCat(o.max_devices_per_user); }},
    {"max-filters-per-device", "N",
     "Folders with their own XFILTER per device (0..100000; 0: no limit); "
     "one more gets NO [LIMIT].",
     [](absl::string_view v, Options& o) {
       return Set(ParseIntInRange(v, 0, 100000), o.max_filters_per_device);
     },
     [](const Options& o) { return absl::StrCat(o.max_filters_per_device); }},
    {"max-filter-bytes", "SIZE",
     "Largest search program of one XFILTER (16..1M); larger gets "
     "NO [LIMIT].",
     [](absl::string_view v, Options& o) {
       return Set(ParseSizeInRange(v, 16, 1024 * kKiB), o.max_filter_bytes);
     },
     [](const Options& o) { return FormatByteSize(o.max_filter_bytes); }},
    {"session-lifetime", "DURATION",
     "How long a P-IMAP session outlives its last activity.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.session_lifetime);
     },
     [](const Options& o) { return absl::FormatDuration(o.session_lifetime); }},
    {"default-notification-filter", "ALL|NONE",
     "Notification filter of a device that has not set one with XFILTER. R01 "
     "says NONE, which means a device in IDLE gets nothing pushed until it "
     "sets a filter; ALL pushes every event.",
     [](absl::string_view v, Options& o) {
       std::string upper = absl::AsciiStrToUpper(v);
       if (upper != "ALL" && upper != "NONE") {
         return absl::InvalidArgumentError(
             absl::StrCat("invalid value \"", v, "\": expected ALL or NONE"));
       }
       o.default_notification_filter = upper;
       return absl::OkStatus();
     },
     [](const Options& o) { return o.default_notification_filter; }},
    {"store-master-user", "NAME",
     "Store master user for every store connection but a device's login "
     "(watches, pooled links, parked clients; SASL PLAIN with authzid = "
     "user): pimapd then keeps no user passwords. Without it they log in "
     "with the password of the user's latest accepted login.",
     [](absl::string_view v, Options& o) {
       o.store_master_user = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.store_master_user.empty() ? std::string("none")
                                          : o.store_master_user;
     }},
    {"store-events-listen", "ADDR:PORT",
     "HTTP intake for events pushed by the store (Dovecot push_notification "
     "Lua driver, docs/store-events.md); \"none\" disables.",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.store_events_listen);
     },
     [](const Options& o) {
       return o.store_events_listen ? o.store_events_listen->ToString()
                                    : std::string("none");
     }},
    {"store-events-secret-file", "FILE",
     "Shared secret the store must send as X-Pimap-Secret (FILE's content "
     "without trailing whitespace). Required with --store-events-listen: "
     "without it pimapd does not start, unless --store-events-insecure.",
     [](absl::string_view v, Options& o) {
       o.store_events_secret_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.store_events_secret_file.empty() ? std::string("none")
                                                 : o.store_events_secret_file;
     }},
    {"store-events-insecure", nullptr,
     "Run the store-event intake without a secret: anyone who can reach its "
     "port can push events to devices. Only for tests on a private loopback.",
     [](absl::string_view v, Options& o) {
       return Set(ParseBool(v), o.store_events_insecure);
     },
     [](const Options& o) {
       return std::string(o.store_events_insecure ? "true" : "false");
     }},
    {"store-events", "notify|push|both",
     "Where store events come from: notify = a watch connection per user with "
     "live sessions; push = the store's pushes only (no store connection for "
     "users whose devices are all away; resumes always check the store); "
     "both = both, de-duplicated.",
     [](absl::string_view v, Options& o) {
       std::string lower = absl::AsciiStrToLower(v);
       if (lower != "notify" && lower != "push" && lower != "both") {
         return absl::InvalidArgumentError(absl::StrCat(
             "invalid value \"", v, "\": expected notify, push or both"));
       }
       o.store_events = lower;
       return absl::OkStatus();
     },
     [](const Options& o) { return o.store_events; }},
    {"state-dir", "DIR",
     "Where P-IMAP sessions (device registrations, filters, prefs, per-folder "
     "checkpoints) are kept across restarts: one SQLite file per shard. "
     "Without it sessions live in memory only.",
     [](absl::string_view v, Options& o) {
       o.state_dir = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.state_dir.empty() ? std::string("none") : o.state_dir;
     }},
    {"idle-keepalive", "DURATION",
     "Interval of the \"* OK Still here\" sent to P-IMAP devices in IDLE "
     "(carrier "
     "NATs forget idle mappings long before 29 minutes); phased per device.",
     [](absl::string_view v, Options& o) {
       return Set(ParsePositiveDuration(v), o.idle_keepalive);
     },
     [](const Options& o) { return absl::FormatDuration(o.idle_keepalive); }},
    {"store-master-password-file", "FILE",
     "File holding the master user's password (first line).",
     [](absl::string_view v, Options& o) {
       o.store_master_password_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.store_master_password_file.empty()
                  ? std::string("none")
                  : o.store_master_password_file;
     }},
    {"store-master-separator", "STRING",
     "Separator of a master-user LOGIN (\"user<sep>master\", Dovecot's "
     "auth_master_user_separator), used when the store has no AUTH=PLAIN.",
     [](absl::string_view v, Options& o) {
       if (v.empty() || v.find_first_of(" \"\\\r\n") != v.npos) {
         return InvalidArgumentError(
             "expected a non-empty string of atom chars");
       }
       o.store_master_separator = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.store_master_separator; }},
    {"store-tls", "none|starttls|implicit",
     "TLS on every store connection: starttls = STARTTLS on --store (never "
     "goes on in clear), implicit = TLS from the first byte. The store's "
     "certificate is always verified.",
     [](absl::string_view v, Options& o) {
       const std::string lower = absl::AsciiStrToLower(v);
       if (lower != "none" && lower != "starttls" && lower != "implicit") {
         return InvalidArgumentError(absl::StrCat(
             "invalid value \"", v, "\": expected none, starttls or implicit"));
       }
       o.store_tls = lower;
       return absl::OkStatus();
     },
     [](const Options& o) { return o.store_tls; }},
    {"store-tls-ca-file", "FILE",
     "PEM file of the CAs trusted for the store's certificate (default: the "
     "system's, /etc/ssl/certs/ca-certificates.crt).",
     [](absl::string_view v, Options& o) {
       o.store_tls_ca_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.store_tls_ca_file.empty() ? std::string("system")
                                          : o.store_tls_ca_file;
     }},
    {"store-tls-name", "NAME",
     "Host name or IP address the store's certificate must be valid for "
     "(default: the host of --store); also sent in SNI.",
     [](absl::string_view v, Options& o) {
       o.store_tls_name = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.store_tls_name.empty() ? std::string("the --store host")
                                       : o.store_tls_name;
     }},
};

const OptionSpec* FindSpec(absl::string_view name) {
  for (absl::Span<const OptionSpec> table : OptionTables()) {
    for (const OptionSpec& spec : table) {
      if (name == spec.name) return &spec;
    }
  }
  return nullptr;
}

// One "name = value" assignment and where it came from, for error messages:
// "--shards" for flags, "FILE:LINE: shards" for the config file.
struct Setting {
  const OptionSpec* spec;
  std::string value;
  std::string where;
};

absl::Status ApplySetting(const Setting& s, Options& o) {
  absl::Status st = s.spec->apply(s.value, o);
  if (st.ok()) return st;
  return InvalidArgumentError(absl::StrCat(s.where, ": invalid value \"",
                                           absl::CHexEscape(s.value),
                                           "\": ", st.message()));
}

absl::StatusOr<std::vector<Setting>> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return InvalidArgumentError(absl::StrCat("--config: cannot read \"", path,
                                             "\": ", std::strerror(errno)));
  }
  std::vector<Setting> settings;
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string where = absl::StrCat(path, ":", line_no);
    absl::string_view line = raw;
    absl::ConsumeSuffix(&line, "\r");  // Tolerate CRLF files.
    // A '#' starts a comment at the start of a line or after whitespace, so
    // that values such as "/etc/pimap/a#b.pem" survive.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' &&
          (i == 0 ||
           absl::ascii_isspace(static_cast<unsigned char>(line[i - 1])))) {
        line = line.substr(0, i);
        break;
      }
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return InvalidArgumentError(
          absl::StrCat(where, ": expected \"key = value\", got \"",
                       absl::CHexEscape(line), "\""));
    }
    const absl::string_view key =
        absl::StripAsciiWhitespace(line.substr(0, eq));
    const absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(eq + 1));
    const OptionSpec* spec = FindSpec(key);
    if (spec == nullptr) {
      return InvalidArgumentError(absl::StrCat(
          where, ": unknown key \"", absl::CHexEscape(key), "\"",
          key == "config" ? " (config files cannot include others)" : ""));
    }
    settings.push_back(
        Setting{spec, std::string(value), absl::StrCat(where, ": ", key)});
  }
  if (in.bad()) {
    return InvalidArgumentError(
        absl::StrCat("--config: error reading \"", path, "\""));
  }
  return settings;
}

absl::Status Validate(const Options& o) {
  if (o.store.host.empty()) {
    return InvalidArgumentError(
        "--store is required: HOST:PORT of the IMAP store to relay to");
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return InvalidArgumentError(
        o.tls_cert.empty()
            ? "--tls-key was given without --tls-cert; give both or neither"
            : "--tls-cert was given without --tls-key; give both or neither");
  }
  if (o.imaps_listen.has_value() && o.tls_cert.empty()) {
    return InvalidArgumentError(
        absl::StrCat("--imaps-listen ", o.imaps_listen->ToString(),
                     " requires --tls-cert and --tls-key"));
  }
  if (o.https_listen.has_value() && o.tls_cert.empty()) {
    return InvalidArgumentError(
        absl::StrCat("--https-listen ", o.https_listen->ToString(),
                     " requires --tls-cert and --tls-key"));
  }
  if (o.store_tls == "none" &&
      (!o.store_tls_ca_file.empty() || !o.store_tls_name.empty())) {
    return InvalidArgumentError(
        "--store-tls-ca-file and --store-tls-name need --store-tls");
  }
  if (absl::Status st = ValidateTls(o); !st.ok()) return st;
  if (absl::Status st = ValidateOutband(o); !st.ok()) return st;
  if (absl::Status st = ValidateSmtp(o); !st.ok()) return st;
  return ValidateCluster(o);
}

}  // namespace

absl::Span<const OptionSpec> CoreOptionSpecs() { return kOptionSpecs; }

std::vector<absl::Span<const OptionSpec>> OptionTables() {
  return {CoreOptionSpecs(),   TlsOptionSpecs(),     OutbandOptionSpecs(),
          SmtpOptionSpecs(),   ClusterOptionSpecs(), AdminOptionSpecs(),
          ConvertOptionSpecs()};
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc,
                                             const char* const* argv) {
  CommandLine cl;
  // --help / --version win over everything, including errors elsewhere on
  // the line, so that "pimapd --bogus --help" still prints help.
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") cl.show_help = true;
    if (arg == "--version") cl.show_version = true;
    if (arg == "--sample-config") cl.show_sample_config = true;
  }
  if (cl.show_help || cl.show_version || cl.show_sample_config) return cl;

  std::vector<Setting> flags;
  std::optional<std::string> config_path;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--") || arg.empty()) {
      return InvalidArgumentError(
          absl::StrCat("unexpected argument \"", absl::CHexEscape(argv[i]),
                       "\": options start with --; see --help"));
    }
    absl::string_view name = arg;
    std::optional<std::string> value;
    if (const size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    const std::string flag = absl::StrCat("--", name);
    const OptionSpec* spec = FindSpec(name);
    const bool is_config = name == "config";
    if (spec == nullptr && !is_config) {
      return InvalidArgumentError(absl::StrCat(
          "unknown option ", absl::CHexEscape(flag), "; see --help"));
    }
    const bool is_bool = spec != nullptr && spec->metavar == nullptr;
    if (!value.has_value()) {
      if (is_bool) {
        value = "true";
      } else if (i + 1 < argc && !absl::StartsWith(argv[i + 1], "--")) {
        // A following "--x" is taken as the next option, not as a value,
        // so "--store --shards 4" reports the missing store address.
        value = argv[++i];
      } else {
        return InvalidArgumentError(
            absl::StrCat("missing value for ", flag, " (expected ",
                         is_config ? "FILE" : spec->metavar, ")"));
      }
    }
    if (is_config) {
      if (value->empty()) {
        return InvalidArgumentError("--config: empty file name");
      }
      config_path = *value;
    } else {
      flags.push_back(Setting{spec, *std::move(value), flag});
    }
  }

  Options& o = cl.options;
  if (config_path.has_value()) {
    o.config_file = *config_path;
    absl::StatusOr<std::vector<Setting>> file = ReadConfigFile(*config_path);
    if (!file.ok()) return file.status();
    for (const Setting& s : *file) {
      if (absl::Status st = ApplySetting(s, o); !st.ok()) return st;
    }
  }
  // Flags after the file: the command line always wins.
  for (const Setting& s : flags) {
    if (absl::Status st = ApplySetting(s, o); !st.ok()) return st;
  }
  if (absl::Status st = Validate(o); !st.ok()) return st;
  return cl;
}

}  // namespace pimap
