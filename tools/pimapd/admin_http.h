// The operator's endpoint: GET /metrics in the Prometheus text format. It runs on
// its own small thread with blocking sockets, off the data path, and only reads the
// shards' counters (relaxed atomics written by each shard alone).
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/base/shard_counters.h"

namespace pimap {

class AdminHttpServer {
 public:
  // Every component's metrics are in its shard's ShardCounters.
  explicit AdminHttpServer(std::vector<const ShardCounters*> shards)
      : shards_(std::move(shards)) {}
  ~AdminHttpServer();
  absl::Status Start(const std::string& host, uint16_t port);
  void Stop();

 private:
  void Serve();
  void HandleClient(int fd);

  std::vector<const ShardCounters*> shards_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
