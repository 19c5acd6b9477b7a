// A shard's service registry, in the spirit of Seastar's sharded<T>: each shard
// holds its own instance of every per-shard service (the IMAP server, the session
// registry, the link pool, ...), found by type on that shard's thread. Replaces
// process-wide tables indexed by shard id: a service is reachable only from the
// thread that owns it, and code that runs on a shard (a hand-over arriving,
// an inbox task) asks its own shard.
//
// Hazard: not thread-safe by design. Register during the shard's set-up, look up
// on its thread only.
#ifndef PIMAP_CORE_ENGINE_SERVICE_REGISTRY_H_
#define PIMAP_CORE_ENGINE_SERVICE_REGISTRY_H_

#include <utility>
#include <vector>

namespace pimap::engine {

class ServiceRegistry {
 public:
  // `service` (not owned) is this shard's T from now on; null removes it.
  template <typename T>
  void Register(T* service) {
    for (auto& [key, value] : services_) {
      if (key == Key<T>()) {
        value = service;
        return;
      }
    }
    services_.emplace_back(Key<T>(), service);
  }
  // This shard's T, or null.
  template <typename T>
  T* Find() const {
    for (const auto& [key, value] : services_) {
      if (key == Key<T>()) return static_cast<T*>(value);
    }
    return nullptr;
  }

 private:
  // One address per type: a key without RTTI.
  template <typename T>
  static const void* Key() {
    static const char key = 0;
    return &key;
  }
  // A handful of services per shard: a vector beats a hash map here.
  std::vector<std::pair<const void*, void*>> services_;
};

}  // namespace pimap::engine

#endif  // PIMAP_CORE_ENGINE_SERVICE_REGISTRY_H_
