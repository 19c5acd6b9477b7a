// ProxyHeaderReader (proxy_accept.h): peek, parse, consume exactly the header.
#include "core/engine/proxy_accept.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/engine/shard.h"

namespace pimap::engine {

namespace {
// A header cut across segments is rare (balancers write it in one go): the
// rest is looked for again after a wait, not in a busy loop, since a peek
// returns at once while the bytes seen so far are there; doubled each time.
constexpr int64_t kFirstRetryMs = 5;
constexpr int64_t kMaxRetryMs = 320;

// An accepted connection closed before anyone read it.
class CloseDone final : public Completion {
 public:
  void OnComplete(const io_uring_cqe&) override {}
};
CloseDone close_done;  // stateless: one for every shard
}  // namespace

void ProxyHeaderGate::AbortAll() {
  // Fail() takes each out of the set: work on a copy.
  std::vector<ProxyHeaderReader*> readers(readers_.begin(), readers_.end());
  for (ProxyHeaderReader* reader : readers) {
    reader->Fail(absl::UnavailableError("listener stopped"));
  }
}

void AcceptWithProxyPolicy(
    Shard* shard, const ProxyProtocolPolicy* policy, ProxyHeaderGate* gate,
    int slot, const ClientAddress& accepted,
    absl::AnyInvocable<void(int slot, const ClientAddress& client)> accept) {
  if (policy == nullptr || !AnyContains(policy->trusted, accepted.peer)) {
    accept(slot, accepted);
    return;
  }
  if (gate->full()) {
    PIMAP_LOG(INFO).Conn(accepted)
        << "connection closed: " << gate->pending()
        << " connections of load balancers wait for their PROXY header";
    io_uring_sqe* sqe = shard->ring().GetSqe();
    io_uring_prep_close_direct(sqe, slot);
    io_uring_sqe_set_data64(sqe, CompletionData(&close_done));
    return;
  }
  ProxyHeaderReader::Start(shard, gate, slot, accepted, policy->timeout_ms,
                           [slot, accepted, accept = std::move(accept)](
                               absl::StatusOr<ClientAddress> client) mutable {
                             if (!client.ok()) {
                               // The balancer's address (the client's is what
                               // failed to come).
                               PIMAP_LOG(INFO).Conn(accepted)
                                   << "connection closed: "
                                   << client.status().message();
                               return;
                             }
                             accept(slot, *client);
                           });
}

void ProxyHeaderReader::Start(Shard* shard, ProxyHeaderGate* gate, int slot,
                              const ClientAddress& accepted, int64_t timeout_ms,
                              Done done) {
  auto* reader =
      new ProxyHeaderReader(shard, gate, slot, accepted, std::move(done));
  reader->deadline_ = shard->timers().Schedule(timeout_ms, [reader] {
    reader->deadline_ = 0;
    reader->Fail(absl::DeadlineExceededError("no PROXY header in time"));
  });
  reader->Peek();
}

ProxyHeaderReader::ProxyHeaderReader(Shard* shard, ProxyHeaderGate* gate,
                                     int slot, const ClientAddress& accepted,
                                     Done done)
    : shard_(shard),
      gate_(gate),
      slot_(slot),
      address_(accepted),
      done_(std::move(done)),
      retry_ms_(kFirstRetryMs) {
  gate_->readers_.insert(this);
  // The shard does not exit while a completion may still point here.
  shard_->RetainLive();
}

ProxyHeaderReader::~ProxyHeaderReader() {
  LeaveGate();
  if (deadline_ != 0) shard_->timers().Cancel(deadline_);
  if (retry_ != 0) shard_->timers().Cancel(retry_);
  shard_->ReleaseLive();
}

void ProxyHeaderReader::LeaveGate() {
  if (gate_ == nullptr) return;
  gate_->readers_.erase(this);
  gate_ = nullptr;
}

void ProxyHeaderReader::Peek() {
  io_uring_sqe* sqe = shard_->ring().GetSqe();
  io_uring_prep_recv(sqe, slot_, buffer_, sizeof(buffer_), MSG_PEEK);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, CompletionData(&peek_op_));
  ++ops_in_flight_;
}

void ProxyHeaderReader::OnPeek(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  if (finished_) {
    MaybeFree();
    return;
  }
  if (cqe.res <= 0) {
    Fail(cqe.res == 0 ? absl::AbortedError("closed before its PROXY header")
                      : absl::ErrnoToStatus(-cqe.res, "PROXY header recv"));
    return;
  }
  const auto seen = static_cast<size_t>(cqe.res);
  std::string error;
  switch (
      ParseProxyHeader(absl::string_view(buffer_, seen), &header_, &error)) {
    case ProxyParse::kInvalid:
      Fail(absl::InvalidArgumentError(error));
      return;
    case ProxyParse::kNeedMore:
      retry_ = shard_->timers().Schedule(retry_ms_, [this] {
        retry_ = 0;
        Peek();
      });
      retry_ms_ = std::min(retry_ms_ * 2, kMaxRetryMs);
      return;
    case ProxyParse::kComplete:
      break;
  }
  // Exactly the header: the client's own bytes stay in the socket.
  io_uring_sqe* sqe = shard_->ring().GetSqe();
  io_uring_prep_recv(sqe, slot_, buffer_, header_.length, MSG_WAITALL);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, CompletionData(&consume_op_));
  ++ops_in_flight_;
}

void ProxyHeaderReader::OnConsumed(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  if (finished_) {
    MaybeFree();
    return;
  }
  if (cqe.res != static_cast<int>(header_.length)) {
    Fail(absl::DataLossError("PROXY header not consumed whole"));
    return;
  }
  if (header_.has_address) {
    address_.peer = header_.source;
    address_.local = header_.destination;
  }
  finished_ = true;
  LeaveGate();
  auto done = std::move(done_);
  const ClientAddress address = address_;
  MaybeFree();
  done(address);
}

void ProxyHeaderReader::OnAux(const io_uring_cqe& cqe) {
  --ops_in_flight_;
  MaybeFree();
}

void ProxyHeaderReader::Fail(absl::Status error) {
  if (finished_) return;
  finished_ = true;
  LeaveGate();
  if (retry_ != 0) {
    shard_->timers().Cancel(retry_);
    retry_ = 0;
  }
  // The peek or consume in flight is cancelled, then the slot closed.
  shard_->ring().CancelAndCloseDirect(slot_, &aux_op_);
  ops_in_flight_ += 2;
  auto done = std::move(done_);
  done(std::move(error));
}

void ProxyHeaderReader::MaybeFree() {
  if (ops_in_flight_ == 0 && retry_ == 0 && finished_) delete this;
}

}  // namespace pimap::engine
