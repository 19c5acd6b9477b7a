// Tests for pimapd's cluster options (tools/pimapd/options_cluster.cc):
// defaults, the command line, the checks across them.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/options_test_util.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

using ::pimap::testing::ExpectError;
using ::pimap::testing::Parse;

TEST(ClusterOptionsTest, SingleNodeByDefault) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->options.cluster_etcd.empty());
  EXPECT_FALSE(d->options.cluster_listen.has_value());
  EXPECT_EQ(d->options.cluster_name, "pimap");
  EXPECT_EQ(d->options.cluster_lease_ttl, absl::Seconds(5));
}

TEST(ClusterOptionsTest, CommandLine) {
  auto r = Parse({"--cluster-etcd", "http://127.0.0.1:2379,http://[::1]:2379/",
                  "--cluster-node-id", "gw-2", "--cluster-listen",
                  "0.0.0.0:7143", "--cluster-advertise", "10.0.0.2:7143",
                  "--cluster-secret-file", "/etc/pimap/cluster.secret",
                  "--cluster-lease-ttl", "8s", "--cluster-name", "eu"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(
      r->options.cluster_etcd,
      ::testing::ElementsAre("http://127.0.0.1:2379", "http://[::1]:2379/"));
  EXPECT_EQ(r->options.cluster_node_id, "gw-2");
  EXPECT_EQ(r->options.cluster_listen->port, 7143);
  EXPECT_EQ(r->options.cluster_advertise, "10.0.0.2:7143");
  EXPECT_EQ(r->options.cluster_secret_file, "/etc/pimap/cluster.secret");
  EXPECT_EQ(r->options.cluster_lease_ttl, absl::Seconds(8));
  EXPECT_EQ(r->options.cluster_name, "eu");
}

TEST(ClusterOptionsTest, RefusesBadValues) {
  ExpectError({"--cluster-etcd", "https://etcd:2379"}, {"http://"});
  ExpectError({"--cluster-etcd", "http://etcd"}, {"cluster-etcd"});
  ExpectError({"--cluster-lease-ttl", "1s"}, {"2s to 60s"});
  ExpectError({"--cluster-lease-ttl", "2500ms"}, {"whole seconds"});
  ExpectError({"--cluster-advertise", "gw.example.org:7143"}, {"IP:PORT"});
  ExpectError({"--cluster-node-id", "a/b"}, {"without"});
  ExpectError({"--cluster-name", ""}, {"non-empty"});
}

TEST(ClusterOptionsTest, ChecksAcrossOptions) {
  ExpectError({"--cluster-listen", "127.0.0.1:7143"}, {"need --cluster-etcd"});
  ExpectError({"--cluster-etcd", "http://127.0.0.1:2379",
               "--cluster-secret-file", "/s"},
              {"needs --cluster-listen"});
  ExpectError({"--cluster-etcd", "http://127.0.0.1:2379", "--cluster-listen",
               "127.0.0.1:7143"},
              {"needs --cluster-secret-file"});
  ExpectError({"--cluster-etcd", "http://127.0.0.1:2379", "--cluster-listen",
               "0.0.0.0:7143", "--cluster-secret-file", "/s"},
              {"--cluster-advertise"});
  auto ok =
      Parse({"--cluster-etcd", "http://127.0.0.1:2379", "--cluster-listen",
             "127.0.0.1:7143", "--cluster-secret-file", "/s"});
  EXPECT_TRUE(ok.ok()) << ok.status();
}

}  // namespace
}  // namespace pimap
