// Blocking socket helpers for the bench's side channels (LMTP delivery, the
// direct store client of the resume scenario): they run on plain threads, off the
// io_uring fleet, so simple blocking I/O with timeouts is the right tool.
#ifndef PIMAP_BENCH_LOADGEN_BLOCKING_IO_H_
#define PIMAP_BENCH_LOADGEN_BLOCKING_IO_H_

#include <string>

#include "bench/loadgen/options.h"

namespace pimap::bench {

// A connected TCP socket with send/receive timeouts of `timeout_s`, or -1 with
// *err set ("<what>: cannot resolve/connect to host:port").
int ConnectBlocking(const HostPort& hp, int timeout_s, const std::string& what,
                    std::string* err);

// Sends all of `data`; false if the peer is gone or a timeout hit.
bool SendAll(int fd, const std::string& data);

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_BLOCKING_IO_H_
