// An in-memory coordination store for the cluster's unit tests: leases with a
// TTL on a test clock, keys under them, and the two transactions, with the
// semantics etcd gives them. Answers are queued and delivered by Deliver()
// (or at once with `immediate`), so tests control interleavings.
#ifndef PIMAP_TESTS_CORE_CLUSTER_FAKE_COORDINATOR_H_
#define PIMAP_TESTS_CORE_CLUSTER_FAKE_COORDINATOR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "core/base/timer_wheel.h"
#include "core/cluster/cluster_config.h"
#include "core/cluster/coordinator.h"
#include "core/cluster/fence.h"
#include "gtest/gtest.h"

namespace pimap::cluster {

class FakeCoordinator : public Coordinator {
 public:
  explicit FakeCoordinator(int64_t* now_ms) : now_ms_(now_ms) {}

  bool immediate = true;
  bool unreachable = false;  // every call fails with Unavailable
  bool fail_puts = false;    // Put alone fails with Unavailable
  int calls = 0;

  // Runs the queued answers (in order); returns how many.
  int Deliver() {
    int n = 0;
    while (!queue_.empty()) {
      auto next = std::move(queue_.front());
      queue_.erase(queue_.begin());
      next();
      ++n;
    }
    return n;
  }
  // Expires leases whose time is up (their keys go).
  void Expire() {
    for (auto it = leases_.begin(); it != leases_.end();) {
      if (it->second <= *now_ms_) {
        DropKeysOf(it->first);
        leases_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  void ExpireLease(int64_t lease) {
    DropKeysOf(lease);
    leases_.erase(lease);
  }
  const std::map<std::string, StoredKey>& keys() const { return keys_; }
  void PutRaw(const std::string& key, const std::string& value, int64_t lease) {
    keys_[key] = {key, value, lease};
  }

  void Grant(int64_t ttl_s, Done<int64_t> done) override {
    Answer([this, ttl_s, done = std::move(done)]() mutable {
      if (unreachable) return done(absl::UnavailableError("down"));
      const int64_t id = next_lease_++;
      leases_[id] = *now_ms_ + ttl_s * 1000;
      ttl_[id] = ttl_s;
      done(id);
    });
  }
  void KeepAlive(int64_t lease, Done<int64_t> done) override {
    Answer([this, lease, done = std::move(done)]() mutable {
      if (unreachable) return done(absl::UnavailableError("down"));
      Expire();
      auto it = leases_.find(lease);
      if (it == leases_.end()) return done(absl::NotFoundError("expired"));
      it->second = *now_ms_ + ttl_[lease] * 1000;
      done(ttl_[lease]);
    });
  }
  void Revoke(int64_t lease, Done<bool> done) override {
    Answer([this, lease, done = std::move(done)]() mutable {
      ExpireLease(lease);
      done(true);
    });
  }
  void Put(std::string key, std::string value, int64_t lease,
           Done<bool> done) override {
    Answer([this, key = std::move(key), value = std::move(value), lease,
            done = std::move(done)]() mutable {
      if (unreachable || fail_puts) {
        return done(absl::UnavailableError("down"));
      }
      Expire();
      if (lease != 0 && !leases_.contains(lease)) {
        return done(absl::NotFoundError("requested lease not found"));
      }
      keys_[key] = {key, value, lease};
      done(true);
    });
  }
  void List(std::string prefix, Done<KeyRange> done) override {
    Answer(
        [this, prefix = std::move(prefix), done = std::move(done)]() mutable {
          if (unreachable) return done(absl::UnavailableError("down"));
          Expire();
          KeyRange range;
          range.revision = ++revision_;
          for (const auto& [k, v] : keys_) {
            if (k.compare(0, prefix.size(), prefix) == 0)
              range.keys.push_back(v);
          }
          done(std::move(range));
        });
  }
  void Get(std::string key, Done<KeyRange> done) override {
    Answer([this, key = std::move(key), done = std::move(done)]() mutable {
      if (unreachable) return done(absl::UnavailableError("down"));
      Expire();
      KeyRange range;
      auto it = keys_.find(key);
      if (it != keys_.end()) range.keys.push_back(it->second);
      done(std::move(range));
    });
  }
  void PutIfAbsent(std::string key, std::string value, int64_t lease,
                   Done<WriteOutcome> done) override {
    Answer([this, key = std::move(key), value = std::move(value), lease,
            done = std::move(done)]() mutable {
      if (unreachable) return done(absl::UnavailableError("down"));
      Expire();
      WriteOutcome out;
      auto it = keys_.find(key);
      if (it == keys_.end()) {
        if (lease != 0 && !leases_.contains(lease)) {
          return done(absl::NotFoundError("requested lease not found"));
        }
        keys_[key] = {key, value, lease};
        out.written = true;
      } else {
        out.holder_exists = true;
        out.holder = it->second;
      }
      done(out);
    });
  }
  void DeleteIfValue(std::string key, std::string expected,
                     Done<WriteOutcome> done) override {
    Answer([this, key = std::move(key), expected = std::move(expected),
            done = std::move(done)]() mutable {
      WriteOutcome out;
      auto it = keys_.find(key);
      if (it != keys_.end() && it->second.value == expected) {
        keys_.erase(it);
        out.written = true;
      } else if (it != keys_.end()) {
        out.holder_exists = true;
        out.holder = it->second;
      }
      done(out);
    });
  }

 private:
  void Answer(absl::AnyInvocable<void()> answer) {
    ++calls;
    if (immediate) {
      answer();
    } else {
      queue_.push_back(std::move(answer));
    }
  }
  void DropKeysOf(int64_t lease) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      if (it->second.lease == lease) {
        keys_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  int64_t* now_ms_;
  int64_t next_lease_ = 100;
  int64_t revision_ = 1;
  std::map<int64_t, int64_t> leases_;  // id -> expiry
  std::map<int64_t, int64_t> ttl_;
  std::map<std::string, StoredKey> keys_;
  std::vector<absl::AnyInvocable<void()>> queue_;
};

// What the cluster's fixtures share: a test clock driving a timer wheel, the
// fake etcd on that clock, node-a's configuration (cluster "c") and a fence.
class ClusterTestBase : public ::testing::Test {
 protected:
  ClusterTestBase() : timers_(0), etcd_(&now_) {
    config_.name = "c";
    config_.self = {"node-a", "127.0.0.1:7001", ""};
  }
  // Time goes on in 100 ms steps, the timers firing as it does.
  void Advance(int64_t ms) {
    for (int64_t i = 0; i < ms; i += 100) {
      now_ += 100;
      timers_.Advance(now_);
    }
  }

  int64_t now_ = 0;
  TimerWheel timers_;
  FakeCoordinator etcd_;
  ClusterConfig config_;
  ClusterFence fence_;
};

}  // namespace pimap::cluster

#endif  // PIMAP_TESTS_CORE_CLUSTER_FAKE_COORDINATOR_H_
