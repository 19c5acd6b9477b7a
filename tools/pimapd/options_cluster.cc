// pimapd's cluster options (issue 16, docs/cluster.md): etcd, this node's id,
// its forwarding listener and the address the other nodes reach it at, the
// shared secret of forwarded connections, the lease. Rows of the one option
// table (option_spec.h).
#include <arpa/inet.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tools/pimapd/option_spec.h"

namespace pimap {
namespace {

std::string NoneIfEmpty(const std::string& s) {
  return s.empty() ? std::string("none") : s;
}

absl::Status ParseEtcdUrls(absl::string_view v, Options& o) {
  o.cluster_etcd.clear();
  if (v == "none") return absl::OkStatus();
  for (absl::string_view url : absl::StrSplit(v, ',', absl::SkipEmpty())) {
    absl::string_view rest = url;
    if (!absl::ConsumePrefix(&rest, "http://")) {
      return absl::InvalidArgumentError(
          "an etcd endpoint is http://HOST:PORT (its JSON gateway; https is "
          "not supported yet)");
    }
    absl::ConsumeSuffix(&rest, "/");
    absl::StatusOr<HostPort> hp = ParseHostPort(rest);
    if (!hp.ok()) return hp.status();
    o.cluster_etcd.push_back(std::string(url));
  }
  if (o.cluster_etcd.empty()) {
    return absl::InvalidArgumentError("no etcd endpoint");
  }
  return absl::OkStatus();
}

// IP literal and port (the other nodes connect there without DNS).
bool IsIpPort(absl::string_view text) {
  absl::StatusOr<HostPort> hp = ParseHostPort(text);
  if (!hp.ok()) return false;
  in6_addr any;
  return inet_pton(AF_INET, hp->host.c_str(), &any) == 1 ||
         inet_pton(AF_INET6, hp->host.c_str(), &any) == 1;
}

const OptionSpec kClusterOptionSpecs[] = {
    {"cluster-etcd", "URL[,URL...]|none",
     "Join a pimapd cluster coordinated by these etcd endpoints (http://HOST:"
     "PORT, etcd's v3 JSON gateway): membership, user ownership, forwarding "
     "to the node that owns a user. none (the default): a single node.",
     ParseEtcdUrls,
     [](const Options& o) {
       return o.cluster_etcd.empty() ? std::string("none")
                                     : absl::StrJoin(o.cluster_etcd, ",");
     }},
    {"cluster-name", "NAME",
     "The cluster's key prefix in etcd (/NAME/members/, /NAME/owners/): "
     "several clusters may share one etcd.",
     [](absl::string_view v, Options& o) {
       if (v.empty() || v.find('/') != absl::string_view::npos) {
         return absl::InvalidArgumentError("a non-empty name without '/'");
       }
       o.cluster_name = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return o.cluster_name; }},
    {"cluster-node-id", "ID",
     "This node's id in the cluster, unique and stable across restarts "
     "(default: the host name).",
     [](absl::string_view v, Options& o) {
       if (v.empty() || v.find('/') != absl::string_view::npos ||
           v.find(' ') != absl::string_view::npos) {
         return absl::InvalidArgumentError("a non-empty id without '/' or ' '");
       }
       o.cluster_node_id = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) {
       return o.cluster_node_id.empty() ? std::string("the host name")
                                        : o.cluster_node_id;
     }},
    {"cluster-listen", "HOST:PORT|none",
     "Where the other nodes forward devices whose user this node owns "
     "(internal network only; required with --cluster-etcd).",
     [](absl::string_view v, Options& o) {
       return Set(ParseOptionalHostPort(v), o.cluster_listen);
     },
     [](const Options& o) {
       return o.cluster_listen.has_value() ? o.cluster_listen->ToString()
                                           : std::string("none");
     }},
    {"cluster-advertise", "IP:PORT",
     "The address the other nodes reach --cluster-listen at (default: "
     "--cluster-listen itself, which must then be an IP address).",
     [](absl::string_view v, Options& o) {
       if (!IsIpPort(v)) {
         return absl::InvalidArgumentError("expected IP:PORT");
       }
       o.cluster_advertise = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.cluster_advertise); }},
    {"cluster-secret-file", "FILE",
     "The secret every node of the cluster shares (the file's first line): "
     "forwarded connections are signed with it.",
     [](absl::string_view v, Options& o) {
       o.cluster_secret_file = std::string(v);
       return absl::OkStatus();
     },
     [](const Options& o) { return NoneIfEmpty(o.cluster_secret_file); }},
    {"cluster-lease-ttl", "DURATION",
     "This node's etcd lease (2s..60s): a node that dies loses its users "
     "after this long; one that cannot renew it stops serving before it "
     "ends.",
     [](absl::string_view v, Options& o) {
       absl::StatusOr<absl::Duration> d = ParsePositiveDuration(v);
       if (!d.ok()) return d.status();
       if (*d < absl::Seconds(2) || *d > absl::Seconds(60) ||
           *d != absl::Trunc(*d, absl::Seconds(1))) {
         return absl::InvalidArgumentError("whole seconds, 2s to 60s");
       }
       o.cluster_lease_ttl = *d;
       return absl::OkStatus();
     },
     [](const Options& o) {
       return absl::FormatDuration(o.cluster_lease_ttl);
     }},
};

}  // namespace

absl::Span<const OptionSpec> ClusterOptionSpecs() {
  return kClusterOptionSpecs;
}

absl::Status ValidateCluster(const Options& o) {
  const bool any = o.cluster_listen.has_value() ||
                   !o.cluster_advertise.empty() ||
                   !o.cluster_secret_file.empty() || !o.cluster_node_id.empty();
  if (o.cluster_etcd.empty()) {
    if (any) {
      return absl::InvalidArgumentError(
          "--cluster-listen, --cluster-advertise, --cluster-secret-file and "
          "--cluster-node-id need --cluster-etcd");
    }
    return absl::OkStatus();
  }
  if (!o.cluster_listen.has_value()) {
    return absl::InvalidArgumentError("--cluster-etcd needs --cluster-listen");
  }
  if (o.cluster_secret_file.empty()) {
    return absl::InvalidArgumentError(
        "--cluster-etcd needs --cluster-secret-file");
  }
  if (o.cluster_advertise.empty() &&
      (!IsIpPort(o.cluster_listen->ToString()) ||
       o.cluster_listen->host == "0.0.0.0" || o.cluster_listen->host == "::")) {
    return absl::InvalidArgumentError(
        "--cluster-listen is not an address other nodes can reach: give "
        "--cluster-advertise IP:PORT");
  }
  return absl::OkStatus();
}

}  // namespace pimap
