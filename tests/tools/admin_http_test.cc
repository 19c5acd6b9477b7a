// The admin endpoint (tools/pimapd/admin_http.h) on a real engine: shard 0
// serves GET /metrics summing every shard's counters, read from its thread.
#include "tools/pimapd/admin_http.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback.h"

namespace pimap {
namespace {

using ::pimap::testing::Exchange;
using ::pimap::testing::FreePort;

TEST(AdminHttpTest, MetricsOfEveryShardFromShardZero) {
  const uint16_t port = FreePort();
  engine::ShardSet set(2, engine::RingOptions{});
  ASSERT_TRUE(set.Start([&](engine::Shard& shard) -> absl::Status {
                   if (shard.id() != 0) return absl::OkStatus();
                   return StartAdminEndpoint(shard, "127.0.0.1", port);
                 })
                  .ok());
  // Written by shard 1's counters alone; shard 0 reads them.
  set.shard(1).counters().intake_requests.fetch_add(5,
                                                    std::memory_order_relaxed);
  const std::string reply = Exchange(
      port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(
      reply, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  // The same text as rendered here (the heap figures move between the two).
  const std::string kHeap = "# HELP pimap_heap_in_use_bytes";
  const std::string local = RenderAdminMetrics(set);
  ASSERT_NE(body.find(kHeap), std::string::npos) << body;
  EXPECT_EQ(body.substr(0, body.find(kHeap)),
            local.substr(0, local.find(kHeap)));
  EXPECT_TRUE(absl::StrContains(body, "\npimap_shards 2\n")) << body;
  EXPECT_TRUE(absl::StrContains(
      body, "\npimap_store_intake_requests_total{shard=\"1\"} 5\n"))
      << body;
  EXPECT_TRUE(absl::StrContains(body, "pimap_heap_in_use_bytes ")) << body;
  EXPECT_TRUE(absl::StrContains(body, "pimap_log_lines_dropped_total "))
      << body;

  EXPECT_TRUE(absl::StartsWith(
      Exchange(port,
               "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n"),
      "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      "HTTP/1.1 404 "));
  set.StopAndJoin(1000);
}

}  // namespace
}  // namespace pimap
