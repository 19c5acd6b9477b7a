// The per-shard StoreConnector: opens UpstreamLinks to the configured store.
#ifndef PIMAP_STORE_STORE_CONNECTOR_H_
#define PIMAP_STORE_STORE_CONNECTOR_H_

#include "core/session/store_link.h"
#include "store/upstream_link.h"

namespace pimap::store {

class ImapStoreConnector final : public session::StoreConnector {
 public:
  ImapStoreConnector(engine::Shard* shard, UpstreamConfig config)
      : shard_(shard), config_(std::move(config)) {}
  void Login(const session::StoreCredentials& credentials,
             LoginCallback done) override {
    UpstreamLink::Open(shard_, config_, credentials, std::move(done));
  }
  // A reload: links opened from now on use `config` (each link keeps a copy
  // of what it was opened with).
  void set_config(UpstreamConfig config) { config_ = std::move(config); }

 private:
  engine::Shard* shard_;
  UpstreamConfig config_;
};

}  // namespace pimap::store

#endif  // PIMAP_STORE_STORE_CONNECTOR_H_
