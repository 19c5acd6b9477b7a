// The operator's endpoint: GET /metrics in the Prometheus text format. It runs on
// its own small thread with blocking sockets, off the data path, and only reads the
// shards' counters (relaxed atomics written by each shard alone).
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/base/shard_counters.h"

namespace pimap {

class AdminHttpServer {
 public:
  // `extra` adds more metric lines (components with their own counters).
  explicit AdminHttpServer(std::vector<const ShardCounters*> shards,
                           std::function<std::string()> extra = nullptr)
      : shards_(std::move(shards)), extra_(std::move(extra)) {}
  ~AdminHttpServer();
  absl::Status Start(const std::string& host, uint16_t port);
  void Stop();

 private:
  void Serve();
  void HandleClient(int fd);

  std::vector<const ShardCounters*> shards_;
  std::function<std::string()> extra_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_HTTP_H_
