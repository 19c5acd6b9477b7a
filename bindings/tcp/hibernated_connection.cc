// A hibernated device's record: wakes on input or events, keeps the IDLE's
// keepalives and autologout, says goodbye at shutdown
// (hibernated_connection.h).
#include "bindings/tcp/hibernated_connection.h"

#include <algorithm>
#include <utility>

#include "bindings/tcp/imap_connection.h"
#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/imap/writer.h"
#include "core/session/pimap_session_driver.h"

namespace pimap::tcp {

void HibernatedConnection::Start(ImapServer* server,
                                 HibernatedTransport transport,
                                 session::SessionDriver* driver) {
  auto* record = new HibernatedConnection(server, std::move(transport));
  record->state_ = driver->Hibernate(record);
  PIMAP_LOG(DEBUG).Conn(record->state_.client) << "hibernated";
  record->ArmTimer();
  // Last: a TLS or DEFLATE layer hands over what it has buffered at once, and
  // that wakes the device (freeing the record) before this returns.
  record->transport_.transport->SetHandler(record);
}

HibernatedConnection::HibernatedConnection(ImapServer* server,
                                           HibernatedTransport transport)
    : server_(server), transport_(std::move(transport)) {
  server_->Register(this);
  ShardCounters& counters = server_->shard().counters();
  GaugeAdd(counters.device_connections, 1);
  GaugeAdd(counters.hibernated_devices, 1);
  CounterAdd(counters.hibernations);
}

HibernatedConnection::~HibernatedConnection() {
  if (timer_ != 0) server_->shard().timers().Cancel(timer_);
  // A record that woke handed the user's count to the live connection.
  if (!transport_.user.empty()) server_->UserLoggedOut(transport_.user);
  server_->Unregister(this);
  ShardCounters& counters = server_->shard().counters();
  GaugeAdd(counters.device_connections, -1);
  GaugeAdd(counters.hibernated_devices, -1);
}

// ---- Waking
// -------------------------------------------------------------------

ImapConnection* HibernatedConnection::Wake() {
  PIMAP_LOG(DEBUG).Conn(state_.client) << "wakes";
  CounterAdd(server_->shard().counters().wakeups);
  if (timer_ != 0) server_->shard().timers().Cancel(timer_);
  timer_ = 0;
  ImapConnection* connection = ImapConnection::Rebuild(
      server_, std::exchange(transport_, {}), state_, this);
  state_.session = nullptr;
  return connection;
}

void HibernatedConnection::OnTransportData(absl::string_view data) {
  // Inside the transport's delivery: the new handler takes the rest of it
  // after this chunk (a TLS or DEFLATE pump does not re-enter), so the
  // device's bytes keep their order.
  ImapConnection* connection = Wake();
  {
    ImapConnection::Busy busy(connection);
    connection->Start();
    if (!connection->destroy_pending_) connection->OnTransportData(data);
  }
  delete this;
}

void HibernatedConnection::OnEventsPending() {
  ImapConnection* connection = Wake();
  {
    ImapConnection::Busy busy(connection);
    connection->Start();
    if (!connection->destroy_pending_)
      connection->device_link()->OnEventsPending();
  }
  delete this;
}

void HibernatedConnection::OnFolderEvent(const session::StoreEvent& event) {
  ImapConnection* connection = Wake();
  {
    ImapConnection::Busy busy(connection);
    connection->Start();
    if (!connection->destroy_pending_) {
      connection->device_link()->OnFolderEvent(event);
    }
  }
  delete this;
}

void HibernatedConnection::OnTakenOver(absl::string_view reason) {
  // The registry has already given the session to the newer connection (or
  // dropped it): the rebuilt engine only says goodbye, as a live one would.
  const std::string why(reason);  // `reason` may not outlive the wake-up
  ImapConnection* connection = Wake();
  {
    ImapConnection::Busy busy(connection);
    connection->Start();
    if (!connection->destroy_pending_) {
      connection->device_link()->OnTakenOver(why);
    }
  }
  delete this;
}

void HibernatedConnection::Kick(absl::string_view reason) {
  // As OnTakenOver: the rebuilt engine says goodbye as a live one would.
  const std::string why(reason);  // `reason` may not outlive the wake-up
  ImapConnection* connection = Wake();
  {
    ImapConnection::Busy busy(connection);
    connection->Start();
    if (!connection->destroy_pending_) connection->device_link()->Kick(why);
  }
  delete this;
}

// ---- Keepalive, autologout, goodbye
// -------------------------------------------

void HibernatedConnection::ArmTimer(bool keepalive_sent) {
  // One timer for both: the next keepalive of the IDLE the engine would have
  // sent (the same phase), or the autologout, whichever comes first.
  const int64_t now = MonotonicNowMs();
  const int64_t idle_timeout = server_->config().idle_timeout_ms;
  int64_t delay =
      std::max<int64_t>(0, transport_.last_activity_ms + idle_timeout - now);
  const int64_t interval = server_->sessions().config().idle_keepalive_ms;
  if (interval > 0) {
    delay = std::min(
        delay, session::KeepaliveDelayMs(state_.session->device, interval, now,
                                         keepalive_sent));
  }
  timer_ = server_->shard().timers().Schedule(delay, [this] {
    timer_ = 0;
    OnTimer();
  });
}

void HibernatedConnection::OnTimer() {
  const int64_t idle = MonotonicNowMs() - transport_.last_activity_ms;
  if (idle >= server_->config().idle_timeout_ms) {
    Shutdown("Autologout; idle for too long");
    return;
  }
  // XTERSE (terse.h) drops the text here too.
  const absl::string_view kKeepalive =
      state_.terse ? "* OK\r\n" : "* OK Still here\r\n";
  CounterAdd(server_->shard().counters().bytes_out, kKeepalive.size());
  transport_.transport->Write(kKeepalive);
  ArmTimer(/*keepalive_sent=*/true);
}

void HibernatedConnection::Shutdown(absl::string_view reason) {
  // The session first (saved, with --state-dir), then the goodbye: a device
  // that reconnects at once, perhaps to a new process (an upgrade), finds it.
  const std::string why(reason);  // may point into this connection's state
  server_->sessions().Detach(state_.session, this);
  std::string out;
  imap::AppendUntaggedStatus(&out, "BYE", "", why);
  CounterAdd(server_->shard().counters().bytes_out, out.size());
  transport_.transport->Write(std::move(out));
  transport_.transport->Close();  // flushes, then closes; no more callbacks
  transport_.transport = nullptr;
  delete this;
}

void HibernatedConnection::OnTransportClosed(absl::Status reason) {
  transport_.transport = nullptr;
  End();
}

void HibernatedConnection::End() {
  // As a live connection that goes away: the session stays, journaling, for
  // the device's resume.
  server_->sessions().Detach(state_.session, this);
  delete this;
}

}  // namespace pimap::tcp
