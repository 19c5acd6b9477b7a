// The splice of a device to the node that owns its user
// (forwarded_connection.h).
#include "bindings/tcp/forwarded_connection.h"

#include <openssl/mem.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/imap/writer.h"

namespace pimap::tcp {

void ForwardedConnection::Start(ImapServer* server, engine::Transport* device,
                                const ClientAddress& client,
                                std::string target_id,
                                const sockaddr_storage& target,
                                socklen_t target_len, std::string first_bytes,
                                std::string tag) {
  auto* c =
      new ForwardedConnection(server, device, client, std::move(target_id),
                              std::move(first_bytes), std::move(tag));
  engine::Shard& shard = server->shard();
  // The timer before the handler: while it runs, a device that closes at
  // once (a TLS close_notify already buffered) does not free the object
  // under the connect's callback.
  c->connect_timer_ = shard.timers().Schedule(kConnectTimeoutMs, [c] {
    c->connect_timer_ = 0;
    c->Fail("the owner node did not answer in time");
  });
  // What the device sends while the owner is reached is held (held_), then
  // sent after the forward line: a receive in flight cannot be recalled.
  device->SetHandler(&c->device_side_);
  engine::Socket::Connect(&shard, target, target_len,
                          [c, alive = std::weak_ptr<bool>(c->alive_)](
                              absl::StatusOr<engine::Socket*> socket) {
                            if (alive.expired()) {
                              if (socket.ok()) (*socket)->Abort();
                              return;
                            }
                            c->OnConnected(std::move(socket));
                          });
}

ForwardedConnection::ForwardedConnection(
    ImapServer* server, engine::Transport* device, const ClientAddress& client,
    std::string target_id, std::string first_bytes, std::string tag)
    : server_(server),
      device_(device),
      client_(client),
      target_id_(std::move(target_id)),
      held_(std::move(first_bytes)),
      tag_(std::move(tag)) {
  server_->Register(this);
  server_->shard().counters().cluster_forwards.fetch_add(
      1, std::memory_order_relaxed);
  server_->shard().counters().forwarded_connections.fetch_add(
      1, std::memory_order_relaxed);
}

ForwardedConnection::~ForwardedConnection() {
  *alive_ = false;
  if (connect_timer_ != 0) server_->shard().timers().Cancel(connect_timer_);
  server_->Unregister(this);
  server_->shard().counters().forwarded_connections.fetch_sub(
      1, std::memory_order_relaxed);
}

void ForwardedConnection::OnConnected(absl::StatusOr<engine::Socket*> socket) {
  if (connect_timer_ != 0) {
    server_->shard().timers().Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  if (!socket.ok()) {
    Fail(socket.status().message());
    return;
  }
  if (device_ == nullptr) {  // the device left meanwhile
    (*socket)->Abort();
    Finish();
    return;
  }
  PIMAP_LOG(DEBUG)
          .Conn(client_)
          .Event("cluster.forward")
          .Field("to", target_id_)
      << "device spliced to its user's node";
  upstream_ = *socket;
  upstream_->SetHandler(&upstream_side_);
  // The forward line holds the password: the socket's copy is its to send.
  upstream_->Write(absl::string_view(held_));
  OPENSSL_cleanse(held_.data(), held_.size());
  held_ = std::string();
  // Last: resuming a TLS device may deliver (or close) at once.
  device_->SetReading(true);
}

void ForwardedConnection::OnData(bool from_device, absl::string_view data) {
  if (from_device && upstream_ == nullptr) {
    // The owner is still being reached: held, behind the forward line.
    if (device_ == nullptr || connect_timer_ == 0) return;  // closing
    held_.append(data.data(), data.size());
    if (held_.size() > kMaxBuffered) device_->SetReading(false);
    return;
  }
  engine::Transport* to = from_device ? upstream_ : device_;
  if (to == nullptr) return;  // closing
  // A write to a TLS device can fail at once and close both sides.
  std::weak_ptr<bool> alive = alive_;
  to->Write(data);
  if (alive.expired()) return;
  to = from_device ? upstream_ : device_;
  engine::Transport* from = from_device ? device_ : upstream_;
  // Backpressure: stop reading this side until the other drains.
  if (to != nullptr && from != nullptr && to->PendingOutput() > kMaxBuffered) {
    from->SetReading(false);
  }
}

void ForwardedConnection::OnDrained(bool device_drained) {
  engine::Transport* other = device_drained ? upstream_ : device_;
  if (other != nullptr && upstream_ != nullptr) other->SetReading(true);
}

void ForwardedConnection::OnClosed(bool device_closed, absl::Status reason) {
  // The transport that reported is freeing itself; the other side is
  // flushed and closed: whatever one peer said last still reaches the other.
  if (device_closed) {
    device_ = nullptr;
    if (upstream_ != nullptr) {
      upstream_->Close();
      upstream_ = nullptr;
    }
  } else {
    upstream_ = nullptr;
    if (device_ != nullptr) {
      device_->Close();
      device_ = nullptr;
    }
  }
  if (connect_timer_ == 0) Finish();
  // else: the connect is still in flight; its answer (or the timer) finishes.
}

void ForwardedConnection::Fail(absl::string_view why) {
  PIMAP_LOG(WARNING)
          .Conn(client_)
          .Event("cluster.forward.fail")
          .Field("to", target_id_)
      << "cannot reach the user's node: " << why;
  OPENSSL_cleanse(held_.data(), held_.size());
  held_.clear();
  if (device_ != nullptr) {
    std::string out;
    imap::AppendTaggedStatus(&out, tag_, "NO", "UNAVAILABLE",
                             "The user's gateway node cannot be reached; "
                             "try again");
    imap::AppendUntaggedStatus(&out, "BYE", "", "Reconnect");
    device_->Write(std::move(out));
    device_->Close();
    device_ = nullptr;
  }
  Finish();
}

void ForwardedConnection::Shutdown(absl::string_view) {
  if (device_ != nullptr) {
    device_->Close();
    device_ = nullptr;
  }
  if (upstream_ != nullptr) {
    upstream_->Close();
    upstream_ = nullptr;
  }
  if (connect_timer_ != 0) {
    server_->shard().timers().Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  Finish();
}

void ForwardedConnection::Finish() {
  if (device_ != nullptr || upstream_ != nullptr) return;
  delete this;
}

}  // namespace pimap::tcp
