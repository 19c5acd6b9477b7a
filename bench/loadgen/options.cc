#include "bench/loadgen/options.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pimap::bench {

std::string HostPort::ToString() const { return absl::StrCat(host, ":", port); }

namespace {

const char kUsage[] =
    "usage: pimap-bench --scenario idle|push|relay|resume --devices N [options]\n"
    "\n"
    "Simulates a fleet of IMAP devices (P-IMAP logins user#devN) on io_uring.\n"
    "  --target HOST:PORT        the gateway (pimapd) to test\n"
    "  --direct HOST:PORT        the store (Dovecot) for the direct baseline\n"
    "  --compare direct[,nginx]  also run the same scenario straight against --direct\n"
    "                            and/or through nginx's mail proxy at --nginx\n"
    "  --nginx HOST:PORT         nginx mail proxy (IMAP) in front of the same store\n"
    "  --nginx-pid PID           nginx master; its workers are summed (RSS, CPU)\n"
    "  --devices N               devices (connections)            [50]\n"
    "  --users U                 users; devices spread round-robin [N/4]\n"
    "  --binding tcp|tls|http|https  transport; tls = implicit TLS (BoringSSL client):\n"
    "                            --target, --nginx are then TLS ports, and the direct\n"
    "                            baseline uses --direct-tls (--direct stays the plain\n"
    "                            store port for seeding and resume events);\n"
    "                            http, https = P-IMAP's HTTP binding (HTTP/1.1, https\n"
    "                            with ALPN http/1.1): --target is pimapd's --http-listen\n"
    "                            / --https-listen port; each device POSTs LOGIN+SELECT,\n"
    "                            then IDLE as a long poll (DONE on a second connection).\n"
    "                            The direct baseline stays IMAP (https: over --direct-tls\n"
    "                            when given, else plain)\n"
    "  --http-path PATH          --binding http|https: pimapd's --http-path [/pimap]\n"
    "  --direct-tls HOST:PORT    the store's implicit-TLS (imaps) port\n"
    "  --tls-ca FILE             verify server certificates against FILE [no verification]\n"
    "  --tls-verify-host NAME    name or IP checked in the certificate [the target's host]\n"
    "  --source-addrs A-B        source IPv4 range, e.g. 127.0.0.2-127.0.0.250\n"
    "  --duration SECONDS        idle hold / relay run time         [10]\n"
    "  --rate R                  push: messages/s; relay: commands/s (0 = closed loop)\n"
    "  --messages M              push: messages delivered via LMTP; resume: store events [100]\n"
    "  --resume-wait SECONDS     resume: wait after the events before reconnecting [3]\n"
    "  --resume-new-pct P        resume: % of events that are new mail (rest: 5/8 flag\n"
    "                            changes, 3/8 expunges)             [60]\n"
    "  --lmtp HOST:PORT          the store's LMTP (push; relay seeding)\n"
    "  --metrics HOST:PORT       pimapd admin endpoint (GET /metrics)\n"
    "  --pimapd-pid PID          pimapd process (RSS, CPU); auto if exactly one pimapd runs\n"
    "  --store-pids P[,P..]      store root processes (Dovecot master); descendants summed\n"
    "  --store-restart CMD       shell command run before each phase to restart the store\n"
    "                            (fresh memory baseline); its last output line = new pids\n"
    "  --connect-rate R          new connections/s during ramp-up   [unbounded]\n"
    "  --inflight K              devices in set-up at once          [200]\n"
    "  --seed-messages K         relay, resume: messages per user before the run [10]\n"
    "  --lmtp-conns K            parallel LMTP sessions             [4]\n"
    "  --user-prefix P --password PW   users are P0..P(U-1)         [bench/benchpw]\n"
    "  --settle SECONDS          wait before sampling memory        [2]\n"
    "  --drain SECONDS           push: wait for late EXISTS          [10]\n"
    "  --setup-timeout SECONDS   ramp-up deadline                   [30+N/100]\n"
    "  --shards N                bench rings/threads                [auto]\n"
    "  --seed S                  RNG seed                           [1]\n"
    "  --json FILE               write the results as JSON\n"
    "  --quiet                   no progress line\n"
    "  --stock                   the gateway's devices are stock IMAP clients (plain\n"
    "                            LOGIN user, SELECT INBOX, IDLE, like the baselines):\n"
    "                            what parking (--park-after) saves the store\n"
    "  --compress                every device sends COMPRESS DEFLATE after LOGIN\n"
    "                            (RFC 4978; tcp and tls bindings, every phase)\n";

bool ParseHostPort(const std::string& v, HostPort* out) {
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  int port = 0;
  if (!absl::SimpleAtoi(v.substr(colon + 1), &port) || port <= 0 || port > 65535)
    return false;
  out->host = v.substr(0, colon);
  if (out->host.size() > 2 && out->host.front() == '[' && out->host.back() == ']')
    out->host = out->host.substr(1, out->host.size() - 2);
  out->port = static_cast<uint16_t>(port);
  return true;
}

bool ParseSourceRange(const std::string& v, std::vector<in_addr>* out) {
  for (absl::string_view part : absl::StrSplit(v, ',')) {
    std::vector<std::string> ends = absl::StrSplit(part, '-');
    if (ends.empty() || ends.size() > 2) return false;
    in_addr a{}, b{};
    if (inet_pton(AF_INET, ends[0].c_str(), &a) != 1) return false;
    if (ends.size() == 2) {
      if (inet_pton(AF_INET, ends[1].c_str(), &b) != 1) {
        // allow "127.0.0.2-250"
        int last = 0;
        if (!absl::SimpleAtoi(ends[1], &last) || last < 0 || last > 255) return false;
        b.s_addr = htonl((ntohl(a.s_addr) & 0xffffff00u) | static_cast<uint32_t>(last));
      }
    } else {
      b = a;
    }
    uint32_t lo = ntohl(a.s_addr), hi = ntohl(b.s_addr);
    if (hi < lo || hi - lo > 65536) return false;
    for (uint32_t x = lo; x <= hi; ++x) out->push_back(in_addr{htonl(x)});
  }
  return !out->empty();
}

}  // namespace

bool ParseOptions(int argc, char** argv, Options* o, int* exit_code) {
  *exit_code = 2;
  for (int i = 0; i < argc; ++i) o->argv.push_back(argv[i]);
  auto bad = [&](const std::string& msg) {
    std::fprintf(stderr, "pimap-bench: %s\n%s", msg.c_str(), kUsage);
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      *exit_code = 0;
      return false;
    }
    if (arg == "--quiet") {
      o->quiet = true;
      continue;
    }
    if (arg == "--stock") {
      o->stock = true;
      continue;
    }
    if (arg == "--compress") {
      o->compress = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return bad("missing value for " + arg);
      value = argv[++i];
    }
    auto num = [&](double* d, double lo) {
      if (!absl::SimpleAtod(value, d) || *d < lo) return bad("bad value for " + arg + ": " + value);
      return true;
    };
    auto integer = [&](int* n, int lo) {
      if (!absl::SimpleAtoi(value, n) || *n < lo) return bad("bad value for " + arg + ": " + value);
      return true;
    };
    auto hostport = [&](HostPort* hp) {
      if (!ParseHostPort(value, hp)) return bad("bad HOST:PORT for " + arg + ": " + value);
      return true;
    };
    bool ok = true;
    if (arg == "--scenario") {
      o->scenario = value;
      if (value != "idle" && value != "push" && value != "relay" && value != "resume")
        return bad("unknown scenario " + value);
    } else if (arg == "--devices") ok = integer(&o->devices, 1);
    else if (arg == "--users") ok = integer(&o->users, 1);
    else if (arg == "--binding") {
      o->binding = value;
      if (value != "tcp" && value != "tls" && value != "http" && value != "https")
        return bad("--binding is tcp, tls, http or https");
    } else if (arg == "--http-path") {
      o->http_path = value;
      if (value.empty() || value[0] != '/') return bad("--http-path must start with /");
    } else if (arg == "--target") ok = hostport(&o->target);
    else if (arg == "--direct") ok = hostport(&o->direct);
    else if (arg == "--direct-tls") ok = hostport(&o->direct_tls);
    else if (arg == "--nginx") ok = hostport(&o->nginx);
    else if (arg == "--nginx-pid") ok = integer(&o->nginx_pid, 1);
    else if (arg == "--tls-ca") o->tls_ca = value;
    else if (arg == "--tls-verify-host") o->tls_verify_host = value;
    else if (arg == "--lmtp") ok = hostport(&o->lmtp);
    else if (arg == "--metrics" || arg == "--admin") ok = hostport(&o->metrics);
    else if (arg == "--compare") {
      for (absl::string_view c : absl::StrSplit(value, ',')) {
        if (c != "direct" && c != "nginx" && c != "none")
          return bad("unknown baseline " + std::string(c));
        if (c != "none") o->compare.emplace_back(c);
      }
    } else if (arg == "--source-addrs") {
      o->source_addrs_text = value;
      if (!ParseSourceRange(value, &o->source_addrs))
        return bad("bad --source-addrs (want A.B.C.D-A.B.C.E[,...]): " + value);
    } else if (arg == "--duration") ok = num(&o->duration_s, 0);
    else if (arg == "--rate") ok = num(&o->rate, 0);
    else if (arg == "--connect-rate") ok = num(&o->connect_rate, 0);
    else if (arg == "--inflight") ok = integer(&o->inflight, 1);
    else if (arg == "--messages") ok = integer(&o->messages, 0);
    else if (arg == "--seed-messages") ok = integer(&o->seed_messages, 0);
    else if (arg == "--lmtp-conns") ok = integer(&o->lmtp_conns, 1);
    else if (arg == "--seed") {
      if (!absl::SimpleAtoi(value, &o->seed)) return bad("bad --seed");
    } else if (arg == "--json") o->json = value;
    else if (arg == "--shards") ok = integer(&o->shards, 1);
    else if (arg == "--pimapd-pid") ok = integer(&o->pimapd_pid, 1);
    else if (arg == "--store-pids") {
      for (absl::string_view p : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        int pid = 0;
        if (!absl::SimpleAtoi(p, &pid) || pid <= 0) return bad("bad --store-pids");
        o->store_pids.push_back(pid);
      }
    } else if (arg == "--store-restart") o->store_restart = value;
    else if (arg == "--user-prefix") o->user_prefix = value;
    else if (arg == "--password") o->password = value;
    else if (arg == "--settle") ok = num(&o->settle_s, 0);
    else if (arg == "--drain") ok = num(&o->drain_s, 0);
    else if (arg == "--setup-timeout") ok = num(&o->setup_timeout_s, 1);
    else if (arg == "--resume-wait") ok = num(&o->resume_wait_s, 0);
    else if (arg == "--resume-new-pct") {
      ok = integer(&o->resume_new_pct, 0);
      if (ok && o->resume_new_pct > 100) return bad("--resume-new-pct is 0..100");
    }
    else return bad("unknown option " + arg);
    if (!ok) return false;
  }
  if (o->inflight > 512) o->inflight = 512;  // environment.md: keep <= 512 connects in flight
  if (!o->target.set() && o->compare.empty()) {
    if (!o->direct.set()) return bad("--target HOST:PORT is required");
  }
  for (const auto& c : o->compare) {
    if (c == "direct" && !o->direct.set()) return bad("--compare direct needs --direct HOST:PORT");
    if (c == "direct" && o->binding == "tls" && !o->direct_tls.set())
      return bad("--compare direct with --binding tls needs --direct-tls HOST:PORT (the store's "
                 "imaps port)");
    if (c == "nginx" && !o->nginx.set()) return bad("--compare nginx needs --nginx HOST:PORT");
    if (c == "nginx" && o->http())
      return bad("--compare nginx is an IMAP baseline: use it with --binding tcp or tls");
  }
  if (o->scenario == "push" && !o->lmtp.set()) return bad("--scenario push needs --lmtp HOST:PORT");
  if (o->scenario == "resume" && !o->direct.set())
    return bad("--scenario resume needs --direct HOST:PORT (the store: events and verification)");
  if (o->setup_timeout_s <= 0) o->setup_timeout_s = 30 + o->devices / 100.0;
  *exit_code = 0;
  return true;
}

}  // namespace pimap::bench
