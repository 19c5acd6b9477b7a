// DetachForHandOver (detach.h).
#include "bindings/tls/detach.h"

#include <memory>
#include <utility>

#include "bindings/tls/tls_transport.h"
#include "core/engine/socket.h"

namespace pimap::tls {

TimerWheel::TimerId DetachForHandOver(
    engine::Socket* socket, engine::Transport* transport, TimerWheel& timers,
    int64_t timeout_ms, absl::AnyInvocable<void(int slot, SSL* ssl)> detached,
    absl::AnyInvocable<void()> timed_out) {
  // Shared by the two outcomes; both run on this shard's thread.
  struct Race {
    TimerWheel::TimerId timer = 0;
    absl::AnyInvocable<void(int, SSL*)> detached;
    absl::AnyInvocable<void()> timed_out;
  };
  auto race = std::make_shared<Race>();
  race->detached = std::move(detached);
  race->timed_out = std::move(timed_out);
  transport->SetReading(false);
  const bool tls = transport->is_tls();
  race->timer = timers.Schedule(timeout_ms, [race, transport] {
    race->timer = 0;
    transport->Abort();  // no Detach callback after this
    race->timed_out();
  });
  socket->Detach([race, tls, transport, &timers](int slot) {
    if (race->timer != 0) timers.Cancel(race->timer);
    race->timer = 0;
    SSL* ssl = nullptr;
    if (tls) ssl = static_cast<TlsTransport*>(transport)->ReleaseSsl();
    race->detached(slot, ssl);
  });
  return race->timer;
}

}  // namespace pimap::tls
