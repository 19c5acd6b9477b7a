// Reading a forwarded device's first line (forward_arrival.h).
#include "bindings/tcp/forward_arrival.h"

#include <openssl/mem.h>

#include <utility>

#include "absl/time/clock.h"
#include "bindings/tcp/imap_connection.h"
#include "core/base/log.h"
#include "core/cluster/forward_record.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::tcp {

void ForwardArrival::Start(ImapServer* server, int slot,
                           const ClientAddress& peer,
                           const std::string* secret) {
  engine::Socket* socket = engine::Socket::Adopt(&server->shard(), slot);
  // Bounded: each holds a descriptor and up to a line until it verifies.
  if (server->stopping() || !server->AdmitForwardArrival()) {
    socket->Abort();
    return;
  }
  auto* arrival = new ForwardArrival(server, socket, peer, secret);
  socket->SetHandler(arrival);
}

ForwardArrival::ForwardArrival(ImapServer* server, engine::Socket* socket,
                               const ClientAddress& peer,
                               const std::string* secret)
    : server_(server), socket_(socket), peer_(peer), secret_(secret) {
  server_->shard().RetainLive();  // the shard does not stop under us
  timer_ = server_->shard().timers().Schedule(kLineTimeoutMs, [this] {
    timer_ = 0;
    Refuse("no forward line in time");
  });
}

ForwardArrival::~ForwardArrival() {
  if (timer_ != 0) server_->shard().timers().Cancel(timer_);
  server_->LeaveForwardArrival();
  server_->shard().ReleaseLive();
  OPENSSL_cleanse(input_.data(), input_.size());
}

void ForwardArrival::OnTransportData(absl::string_view data) {
  input_.append(data.data(), data.size());
  cluster::ForwardRecord record;
  size_t consumed = 0;
  std::string error;
  switch (cluster::ParseForwardLine(input_, *secret_,
                                    absl::ToUnixSeconds(absl::Now()), &record,
                                    &consumed, &error)) {
    case cluster::ForwardParse::kNeedMore:
      return;
    case cluster::ForwardParse::kInvalid:
      Refuse(error);
      return;
    case cluster::ForwardParse::kComplete:
      break;
  }
  PendingLogin login;
  login.tag = std::move(record.tag);
  login.name.user = std::move(record.user);
  login.name.device = std::move(record.device);
  login.password = std::move(record.password);
  login.client_id = std::move(record.client_id);
  login.terse = record.terse;
  login.hops = record.hops;
  login.forwarded_secure = record.secure;
  login.client = record.client;
  std::string rest = input_.substr(consumed);
  engine::Socket* socket = socket_;
  socket_ = nullptr;
  // The connection takes the socket's handler first; then this goes.
  ImapConnection::ArriveForwarded(server_, socket, std::move(rest),
                                  std::move(login));
  delete this;
}

void ForwardArrival::OnTransportClosed(absl::Status) {
  socket_ = nullptr;
  delete this;
}

void ForwardArrival::Refuse(absl::string_view why) {
  PIMAP_LOG(WARNING).Conn(peer_).Event("cluster.forward.refused")
      << "internal connection refused: " << why;
  if (socket_ != nullptr) socket_->Abort();
  socket_ = nullptr;
  delete this;
}

}  // namespace pimap::tcp
