// Session registry, store-watch lifetime and event fan-out for one shard.
#include "bindings/tcp/pimap_sessions.h"

#include <random>

#include "core/base/log.h"
#include "core/engine/shard.h"
#include "core/imap/writer.h"

namespace pimap::tcp {

namespace {
constexpr int64_t kSweepMs = 60 * 1000;
}

SessionManager::SessionManager(engine::Shard* shard, const SessionConfig* config,
                               session::StoreWatchFactory* watches)
    : shard_(shard), config_(config), watches_(watches) {
  // Session ids need not be secret (the login authenticates), only distinct.
  std::random_device rd;
  next_session_id_ = (uint64_t{rd()} << 20) ^ rd();
  sweep_timer_ = shard_->timers().Schedule(kSweepMs, [this] { Sweep(); });
}

SessionManager::~SessionManager() {
  if (sweep_timer_ != 0) shard_->timers().Cancel(sweep_timer_);
  for (auto& [user, sessions] : users_) {
    if (sessions.watch != nullptr) sessions.watch->Close();
  }
}

size_t SessionManager::sessions() const {
  size_t n = 0;
  for (const auto& [user, s] : users_) n += s.devices.size();
  return n;
}

DeviceSession* SessionManager::Attach(const std::string& user, const std::string& device,
                                      const session::StoreCredentials& credentials,
                                      DeviceLink* link, bool* resumed) {
  UserSessions& u = users_[user];
  if (config_->master_user.empty()) u.credentials = credentials;
  auto it = u.devices.find(device);
  *resumed = it != u.devices.end();
  DeviceSession* session;
  if (*resumed) {
    session = it->second.get();
    if (session->connection != nullptr && session->connection != link) {
      DeviceLink* old = session->connection;
      session->connection = nullptr;
      old->OnTakenOver();
    }
  } else {
    auto created = std::make_unique<DeviceSession>(user, device, ++next_session_id_, *config_);
    session = created.get();
    u.devices.emplace(device, std::move(created));
  }
  session->connection = link;
  session->last_activity_ms = MonotonicNowMs();
  if (u.watch == nullptr) {
    session::StoreCredentials watch_credentials = u.credentials;
    if (!config_->master_user.empty()) {
      watch_credentials = {config_->master_user, config_->master_password, user};
    }
    u.watch = watches_->Watch(user, std::move(watch_credentials), this);
    ++watches_count_;
  }
  UpdateGauges();
  return session;
}

void SessionManager::Detach(DeviceSession* session, DeviceLink* link) {
  if (session->connection != link) return;  // already taken over
  session->connection = nullptr;
  session->last_activity_ms = MonotonicNowMs();
  session->journal.OnDisconnect();
}

void SessionManager::End(DeviceSession* session) {
  const std::string user = session->user;
  auto it = users_.find(user);
  if (it == users_.end()) return;
  it->second.devices.erase(session->device);
  DropUserIfIdle(user);
  UpdateGauges();
}

void SessionManager::DropUserIfIdle(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end() || !it->second.devices.empty()) return;
  if (it->second.watch != nullptr) {
    it->second.watch->Close();
    --watches_count_;
  }
  users_.erase(it);
}

void SessionManager::OnStoreEvents(absl::string_view user,
                                   const std::vector<session::StoreEvent>& events) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  for (auto& [device, session] : it->second.devices) {
    for (const session::StoreEvent& event : events) session->journal.Append(event);
    if (session->connection != nullptr) session->connection->OnEventsPending();
  }
}

void SessionManager::Sweep() {
  sweep_timer_ = shard_->timers().Schedule(kSweepMs, [this] { Sweep(); });
  const int64_t now = MonotonicNowMs();
  std::vector<std::string> touched;
  for (auto& [user, sessions] : users_) {
    for (auto dit = sessions.devices.begin(); dit != sessions.devices.end();) {
      DeviceSession& s = *dit->second;
      if (s.connection == nullptr &&
          now - s.last_activity_ms > config_->session_lifetime_ms) {
        PIMAP_LOG(INFO) << "session expired: user=" << imap::QuoteForLog(s.user)
                        << " device=" << imap::QuoteForLog(s.device);
        sessions.devices.erase(dit++);
      } else {
        ++dit;
      }
    }
    if (sessions.devices.empty()) touched.push_back(user);
  }
  for (const std::string& user : touched) DropUserIfIdle(user);
  UpdateGauges();
}

void SessionManager::UpdateGauges() {
  ShardCounters& c = shard_->counters();
  c.pimap_sessions.store(static_cast<int64_t>(sessions()), std::memory_order_relaxed);
  c.watch_connections.store(static_cast<int64_t>(watches_count_),
                            std::memory_order_relaxed);
}

}  // namespace pimap::tcp
