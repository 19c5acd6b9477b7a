// Resolver (resolver.h) on getaddrinfo_a with SIGEV_THREAD notification.
#include "core/engine/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/engine/shard.h"

namespace pimap::engine {
namespace {

// One lookup: lives from getaddrinfo_a until its notification thread ends.
struct Lookup {
  Shard* shard;
  std::string key;
  std::string host;
  std::string port;
  addrinfo hints{};
  gaicb request{};
};

void OnLookupDone(sigval value) {
  std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(value.sival_ptr));
  absl::StatusOr<std::vector<ResolvedAddress>> result;
  const int rc = gai_error(&lookup->request);
  if (rc != 0) {
    result = absl::NotFoundError(
        absl::StrCat("cannot resolve ", lookup->host, ": ", gai_strerror(rc)));
  } else {
    std::vector<ResolvedAddress> addresses;
    for (addrinfo* ai = lookup->request.ar_result; ai != nullptr;
         ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage) || addresses.size() >= 8) {
        continue;
      }
      ResolvedAddress a;
      std::memcpy(&a.address, ai->ai_addr, ai->ai_addrlen);
      a.len = ai->ai_addrlen;
      addresses.push_back(a);
    }
    freeaddrinfo(lookup->request.ar_result);
    if (addresses.empty()) {
      result =
          absl::NotFoundError(absl::StrCat("no address for ", lookup->host));
    } else {
      result = std::move(addresses);
    }
  }
  // A full inbox loses the answer: its requests end at their deadlines.
  lookup->shard->Post([key = std::move(lookup->key),
                       result = std::move(result)](Shard& shard) mutable {
    if (Resolver* r = shard.services().Find<Resolver>(); r != nullptr) {
      r->Deliver(key, std::move(result));
    }
  });
}

bool InternalV4(uint32_t a) {  // host order
  const auto in = [a](uint32_t net, int bits) {
    return (a >> (32 - bits)) == (net >> (32 - bits));
  };
  return in(0x00000000, 8) ||   // "this" network
         in(0x0a000000, 8) ||   // 10/8
         in(0x64400000, 10) ||  // 100.64/10 (CGNAT)
         in(0x7f000000, 8) ||   // loopback
         in(0xa9fe0000, 16) ||  // link-local
         in(0xac100000, 12) ||  // 172.16/12
         in(0xc0a80000, 16) ||  // 192.168/16
         in(0xe0000000, 4) ||   // multicast
         in(0xf0000000, 4);     // reserved, broadcast
}

std::optional<ResolvedAddress> Literal(const std::string& host, uint16_t port) {
  ResolvedAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<ResolvedAddress> ParseIpPort(absl::string_view text) {
  absl::string_view host;
  absl::string_view port_text;
  if (absl::ConsumePrefix(&text, "[")) {
    const size_t close = text.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("expected [IPv6]:PORT");
    }
    host = text.substr(0, close);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError("expected IP:PORT");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError("bad port");
  }
  sockaddr_storage address{};
  const std::string host_string(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  if (inet_pton(AF_INET, host_string.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return ResolvedAddress{address, sizeof(sockaddr_in)};
  }
  address = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET6, host_string.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return ResolvedAddress{address, sizeof(sockaddr_in6)};
  }
  return absl::InvalidArgumentError(
      "not an IP address (names are not "
      "accepted here)");
}

bool IsInternalAddress(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    return InternalV4(ntohl(v4->sin_addr.s_addr));
  }
  if (address.ss_family != AF_INET6) return true;
  const in6_addr& a =
      reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a)) {
    uint32_t v4;
    std::copy(a.s6_addr + 12, a.s6_addr + 16, reinterpret_cast<uint8_t*>(&v4));
    return InternalV4(ntohl(v4));
  }
  return IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a) ||
         IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_SITELOCAL(&a) ||
         IN6_IS_ADDR_MULTICAST(&a) ||
         (a.s6_addr[0] & 0xfe) == 0xfc;  // fc00::/7 (unique local)
}

void Resolver::Resolve(const std::string& host, uint16_t port, Done done) {
  if (std::optional<ResolvedAddress> literal = Literal(host, port)) {
    done(std::vector<ResolvedAddress>{*literal});
    return;
  }
  std::string key = absl::StrCat(host, ":", port);
  const int64_t now = shard_->timers().now_ms();
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (it->second.expires_ms > now) {
      done(it->second.addresses);
      return;
    }
    cache_.erase(it);
  }
  if (auto it = waiting_.find(key); it != waiting_.end()) {
    it->second.push_back(std::move(done));
    return;
  }
  if (waiting_.size() >= kMaxLookups) {
    done(absl::ResourceExhaustedError("too many name lookups in flight"));
    return;
  }
  auto lookup = std::make_unique<Lookup>();
  lookup->shard = shard_;
  lookup->key = key;
  lookup->host = host;
  lookup->port = absl::StrCat(port);
  lookup->hints.ai_socktype = SOCK_STREAM;
  lookup->hints.ai_flags = AI_NUMERICSERV;
  lookup->request.ar_name = lookup->host.c_str();
  lookup->request.ar_service = lookup->port.c_str();
  lookup->request.ar_request = &lookup->hints;
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD;
  event.sigev_notify_function = &OnLookupDone;
  event.sigev_value.sival_ptr = lookup.get();
  gaicb* list[] = {&lookup->request};
  if (const int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &event); rc != 0) {
    done(absl::UnavailableError(
        absl::StrCat("name lookup not started: ", gai_strerror(rc))));
    return;
  }
  lookup.release();  // OnLookupDone owns it now
  waiting_[key].push_back(std::move(done));
}

void Resolver::Deliver(const std::string& key,
                       absl::StatusOr<std::vector<ResolvedAddress>> result) {
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  std::vector<Done> waiters = std::move(it->second);
  waiting_.erase(it);
  if (result.ok()) {
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[key] = Cached{*result, shard_->timers().now_ms() + kCacheMs};
  }
  for (Done& done : waiters) done(result);
}

}  // namespace pimap::engine
