// Delivers messages into the store through LMTP on blocking sockets (one thread per
// LMTP session), recording when the store accepted each one (the 250 reply to the
// end of DATA): the start of the push-latency clock.
#ifndef PIMAP_BENCH_LOADGEN_LMTP_H_
#define PIMAP_BENCH_LOADGEN_LMTP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/loadgen/options.h"

namespace pimap::bench {

struct LmtpResult {
  // accepted_us[u]: acceptance times (NowUs) of the messages delivered to user u,
  // in delivery order (one session handles each user, so the order is the store's).
  std::vector<std::vector<int64_t>> accepted_us;
  // data_end_us[u][k]: when the end of DATA of accepted_us[u][k] was sent. With the
  // store's push_notification hook the store POSTs to the gateway between the two.
  std::vector<std::vector<int64_t>> data_end_us;
  int64_t delivered = 0;
  int64_t failed = 0;
  int64_t first_us = 0, last_us = 0;
  std::vector<std::string> errors;  // first few
};

// Delivers one message per entry of `recipients` (user indexes), at `rate` messages/s
// overall (0: as fast as the sessions go), giving up after `max_s` seconds.
// `on_accept(user)` runs (on an LMTP thread) after each acceptance.
LmtpResult DeliverMessages(const HostPort& lmtp, int sessions, int users,
                           const std::string& user_prefix,
                           const std::vector<int>& recipients, double rate,
                           double max_s, const std::function<void(int)>& on_accept);

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_LMTP_H_
