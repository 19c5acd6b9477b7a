// ConnectAny (connect_any.h): one attempt at a time, each on its own socket.
#include "core/engine/connect_any.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"

namespace pimap::engine {

namespace {

struct Attempts {
  Shard* shard;
  std::vector<ResolvedAddress> addresses;
  size_t next = 0;
  std::string last_error = "no address";
  Socket::ConnectCallback done;
};

void Next(std::shared_ptr<Attempts> attempts) {
  if (attempts->next >= attempts->addresses.size()) {
    auto done = std::move(attempts->done);
    done(absl::UnavailableError(attempts->last_error));
    return;
  }
  const ResolvedAddress& to = attempts->addresses[attempts->next++];
  Socket::Connect(attempts->shard, to.address, to.len,
                  [attempts](absl::StatusOr<Socket*> socket) mutable {
                    if (!socket.ok()) {
                      attempts->last_error =
                          std::string(socket.status().message());
                      Next(std::move(attempts));
                      return;
                    }
                    auto done = std::move(attempts->done);
                    done(*socket);
                  });
}

}  // namespace

void ConnectAny(Shard* shard, std::vector<ResolvedAddress> addresses,
                Socket::ConnectCallback done) {
  auto attempts = std::make_shared<Attempts>();
  attempts->shard = shard;
  attempts->addresses = std::move(addresses);
  attempts->done = std::move(done);
  Next(std::move(attempts));
}

}  // namespace pimap::engine
