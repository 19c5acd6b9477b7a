// EtcdClient (etcd_client.h): each call is one POST through
// outband_http::StartHttpsRequest (plain HTTP, pooled keep-alive
// connections), its body built and its answer parsed by etcd_json.h.
#include "bindings/etcd/etcd_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "bindings/etcd/etcd_json.h"

namespace pimap::etcd {
namespace {

// The Host header: an IPv6 literal in brackets.
std::string HostHeader(const std::string& host) {
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::StrCat("[", host, "]");
  }
  return host;
}

// Worth the next endpoint: this one could not be reached or did not answer
// in time (the transport's errors), or answered 5xx (no leader, a timeout
// inside etcd: ErrorStatus maps those to Unavailable/DeadlineExceeded or to
// the gRPC code of the body, so the HTTP code is what decides).
bool Retryable(const absl::StatusOr<http::HttpRequest>& r) {
  if (!r.ok()) {
    return r.status().code() == absl::StatusCode::kUnavailable ||
           r.status().code() == absl::StatusCode::kDeadlineExceeded;
  }
  return r->status >= 500;
}

}  // namespace

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  // Empty, or every byte 0xff: no key is greater; etcd reads a range_end of
  // "\0" as "every key from `key` on".
  return std::string(1, '\0');
}

// One POST, tried on the preferred endpoint and, if that fails in a way
// another endpoint may not (Retryable), once more on the next one. Frees
// itself after `done`.
class EtcdClient::Call {
 public:
  Call(std::shared_ptr<State> state, std::string path, std::string body,
       absl::AnyInvocable<void(absl::StatusOr<std::string>)> done)
      : state_(std::move(state)),
        path_(std::move(path)),
        body_(std::move(body)),
        done_(std::move(done)) {}

  void Start() {
    endpoint_ = state_->preferred % state_->endpoints.size();
    Attempt();
  }

 private:
  void Attempt() {
    const outband_http::HttpsTarget& target = state_->endpoints[endpoint_];
    std::string request = absl::StrCat(
        "POST ", path_, " HTTP/1.1\r\nHost: ", HostHeader(target.host),
        "\r\nContent-Type: application/json\r\nContent-Length: ", body_.size(),
        "\r\n\r\n", body_);
    outband_http::StartHttpsRequest(
        state_->shard, /*tls=*/nullptr, target, std::move(request),
        state_->timeout_ms,
        [this](absl::StatusOr<http::HttpRequest> response) {
          OnResponse(std::move(response));
        },
        kMaxResponseBytes);
  }

  void OnResponse(absl::StatusOr<http::HttpRequest> response) {
    ++attempts_;
    if (Retryable(response) && attempts_ < 2 && state_->endpoints.size() > 1) {
      endpoint_ = (endpoint_ + 1) % state_->endpoints.size();
      Attempt();
      return;
    }
    absl::StatusOr<std::string> result;
    if (!response.ok()) {
      result =
          absl::Status(response.status().code(),
                       absl::StrCat("etcd: ", response.status().message()));
    } else {
      // It answered: the next calls start there.
      state_->preferred = endpoint_;
      if (response->status >= 200 && response->status < 300) {
        result = std::move(response->body);
      } else {
        result = ErrorStatus(response->status, response->body);
      }
    }
    auto done = std::move(done_);
    delete this;
    done(std::move(result));
  }

  std::shared_ptr<State> state_;
  std::string path_;
  std::string body_;
  absl::AnyInvocable<void(absl::StatusOr<std::string>)> done_;
  size_t endpoint_ = 0;
  int attempts_ = 0;
};

EtcdClient::EtcdClient(engine::Shard* shard,
                       std::vector<outband_http::HttpsTarget> endpoints,
                       int64_t timeout_ms)
    : state_(std::make_shared<State>(
          State{shard, std::move(endpoints), timeout_ms})) {}

void EtcdClient::Post(
    absl::string_view path, std::string body,
    absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) {
  if (state_->endpoints.empty()) {
    done(absl::FailedPreconditionError("etcd: no endpoints"));
    return;
  }
  (new Call(state_, std::string(path), std::move(body), std::move(done)))
      ->Start();
}

namespace {

// Adapts a body callback to a parser and the caller's `done`.
template <typename T, typename Parse>
absl::AnyInvocable<void(absl::StatusOr<std::string>)> Parsed(
    Parse parse, absl::AnyInvocable<void(absl::StatusOr<T>)> done) {
  return [parse,
          done = std::move(done)](absl::StatusOr<std::string> body) mutable {
    if (!body.ok()) {
      done(body.status());
      return;
    }
    done(parse(*body));
  };
}

}  // namespace

void EtcdClient::Grant(int64_t ttl_s, Done<LeaseGrant> done) {
  Post(kGrantPath, GrantBody(ttl_s),
       Parsed<LeaseGrant>(ParseGrant, std::move(done)));
}

void EtcdClient::KeepAlive(int64_t lease, Done<int64_t> done) {
  Post(kKeepAlivePath, LeaseIdBody(lease),
       Parsed<int64_t>(ParseKeepAlive, std::move(done)));
}

void EtcdClient::Revoke(int64_t lease, StatusDone done) {
  Post(kRevokePath, LeaseIdBody(lease),
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         absl::Status status = body.status();
         if (status.ok()) status = ParseRevision(*body).status();
         // Already expired or revoked: what the caller wanted.
         if (absl::IsNotFound(status)) status = absl::OkStatus();
         done(std::move(status));
       });
}

void EtcdClient::Put(std::string key, std::string value, int64_t lease,
                     Done<int64_t> done) {
  Post(kPutPath, PutBody(key, value, lease),
       Parsed<int64_t>(ParseRevision, std::move(done)));
}

void EtcdClient::Range(std::string key, std::string range_end,
                       Done<RangeResult> done) {
  Post(kRangePath, RangeBody(key, range_end),
       Parsed<RangeResult>(ParseRange, std::move(done)));
}

void EtcdClient::Delete(std::string key, std::string range_end,
                        Done<int64_t> done) {
  Post(kDeletePath, DeleteBody(key, range_end),
       Parsed<int64_t>(ParseDelete, std::move(done)));
}

void EtcdClient::PutIfAbsent(std::string key, std::string value, int64_t lease,
                             Done<TxnResult> done) {
  Post(kTxnPath, PutIfAbsentBody(key, value, lease),
       Parsed<TxnResult>(ParseTxn, std::move(done)));
}

void EtcdClient::DeleteIfValue(std::string key, std::string expected,
                               Done<TxnResult> done) {
  Post(kTxnPath, DeleteIfValueBody(key, expected),
       Parsed<TxnResult>(ParseTxn, std::move(done)));
}

}  // namespace pimap::etcd
