// pimap-bench command line: what fleet to simulate, against what, and what to measure.
#ifndef PIMAP_BENCH_LOADGEN_OPTIONS_H_
#define PIMAP_BENCH_LOADGEN_OPTIONS_H_

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pimap::bench {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool set() const { return port != 0; }
  std::string ToString() const;
};

struct Options {
  std::string scenario = "idle";  // idle | push | resume | relay
  int devices = 50;
  int users = 0;                  // 0: devices / 4 (at least 1)
  std::string binding = "tcp";    // tcp | tls | http | https (HTTP binding)
  std::string http_path = "/pimap";  // http, https: pimapd's --http-path
  HostPort target;                // pimapd (or any IMAP endpoint)
  HostPort direct;                // the store, for --compare direct
  HostPort lmtp;                  // the store's LMTP, for push / relay seeding
  HostPort metrics;               // pimapd admin endpoint (GET /metrics)
  HostPort direct_tls;            // the store's implicit-TLS port (--binding tls, direct)
  HostPort nginx;                 // nginx mail proxy, for --compare nginx
  int nginx_pid = 0;              // nginx master (its workers are summed)
  std::string tls_ca;             // --binding tls: verify the server against this PEM
  std::string tls_verify_host;    // name/IP checked in the certificate (default: target host)
  std::vector<std::string> compare;  // "direct", "nginx"
  std::vector<in_addr> source_addrs;
  std::string source_addrs_text;
  double duration_s = 10;         // idle hold / relay run time / push send window cap
  double rate = 0;                // push: messages/s; relay: commands/s (0: closed loop)
  double connect_rate = 0;        // new connections/s during ramp-up (0: only inflight bound)
  int inflight = 200;             // devices in connect..IDLE set-up at a time (all shards)
  int messages = 100;             // push: messages to deliver
  int seed_messages = 10;         // relay: messages each user gets before the run
  int lmtp_conns = 4;
  uint64_t seed = 1;
  std::string json;
  int shards = 0;                 // bench's own rings (0: auto)
  int pimapd_pid = 0;
  std::vector<int> store_pids;    // roots; their descendants are summed
  std::string store_restart;      // shell command run before each phase; prints new store pids
  std::string user_prefix = "bench";
  std::string password = "benchpw";
  double settle_s = 2;
  double drain_s = 10;            // push: how long to wait for late EXISTS
  double resume_wait_s = 3;       // resume: wait after the store events before reconnecting
  int resume_new_pct = 60;        // resume: share of new messages among the events (rest:
                                  // 5/8 flag changes, 3/8 expunges)
  double setup_timeout_s = 0;     // ramp deadline (0: 30 s + N/100 s)
  bool quiet = false;
  bool stock = false;             // the pimap phase logs in as plain "user" (no #devN)
  bool compress = false;          // COMPRESS DEFLATE after LOGIN (every IMAP phase)
  std::vector<std::string> argv;  // for the JSON record

  bool http() const { return binding == "http" || binding == "https"; }
  bool tls() const { return binding == "tls" || binding == "https"; }
  int effective_users() const {
    return users > 0 ? users : (devices / 4 > 0 ? devices / 4 : 1);
  }
};

// Parses argv; on error prints to stderr and returns false with *exit_code set.
bool ParseOptions(int argc, char** argv, Options* out, int* exit_code);

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_OPTIONS_H_
