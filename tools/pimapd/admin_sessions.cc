// The admin commands on one shard's SessionRegistry (admin_sessions.h).
#include "tools/pimapd/admin_sessions.h"

#include <utility>
#include <vector>

#include "core/base/timer_wheel.h"
#include "core/engine/shard.h"
#include "core/session/session_registry.h"

namespace pimap {

namespace {

session::SessionRegistry* Registry(engine::Shard& shard) {
  return shard.services().Find<session::SessionRegistry>();
}

AdminDevice Describe(const session::DeviceSession& s, int shard, int64_t now) {
  AdminDevice d;
  d.user = s.user;
  d.device = s.device;
  d.shard = shard;
  d.connected = s.connection != nullptr;
  if (s.connection != nullptr) {
    d.binding = s.connection->Binding();
    d.store_link = s.connection->HoldsStoreLink();
  }
  d.idle_ms = s.last_activity_ms > 0 ? now - s.last_activity_ms : 0;
  d.journal = s.journal.size();
  return d;
}

}  // namespace

AdminShardReport CollectWho(engine::Shard& shard, const std::string& user) {
  AdminShardReport report;
  report.shard = shard.id();
  session::SessionRegistry* registry = Registry(shard);
  if (registry == nullptr) return report;
  const int64_t now = MonotonicNowMs();
  registry->ForEachSession(user, [&](const session::DeviceSession& s) {
    if (report.devices.size() >= kAdminMaxRows) {
      report.truncated = true;
      return;
    }
    report.devices.push_back(Describe(s, shard.id(), now));
  });
  registry->ForEachUser(
      [&](const std::string& name, size_t parked, bool watch) {
        if (!user.empty() && name != user) return;
        if (report.users.size() >= kAdminMaxRows) {
          report.truncated = true;
          return;
        }
        report.users.push_back({name, shard.id(), parked, watch});
      });
  return report;
}

AdminShardReport CollectSessions(engine::Shard& shard,
                                 const std::string& user) {
  AdminShardReport report;
  report.shard = shard.id();
  session::SessionRegistry* registry = Registry(shard);
  if (registry == nullptr || user.empty()) return report;
  const int64_t now = MonotonicNowMs();
  registry->ForEachSession(user, [&](const session::DeviceSession& s) {
    if (report.sessions.size() >= kAdminMaxRows) {
      report.truncated = true;
      return;
    }
    AdminSession out;
    out.device = Describe(s, shard.id(), now);
    out.session_id = s.session_id;
    out.selected = s.selected_folder;
    out.read_only = s.read_only;
    out.journal_limit = s.journal.limit();
    out.filters = s.filters.Serialize();
    out.prefs = s.prefs().Serialize();
    out.uidvalidity = s.view_uidvalidity;
    out.modseq = s.view_modseq;
    out.view_messages = s.view.size();
    out.checkpoint_dirty = s.checkpoint_dirty;
    out.restored = s.restored;
    out.folder_events = s.folder_events.size();
    report.sessions.push_back(std::move(out));
  });
  return report;
}

AdminShardReport KickOnShard(engine::Shard& shard, const std::string& user,
                             const std::string& device, bool forget) {
  AdminShardReport report;
  report.shard = shard.id();
  session::SessionRegistry* registry = Registry(shard);
  if (registry == nullptr || user.empty()) return report;
  // Names first: a kick changes the registry (Detach, End) under a walk.
  std::vector<std::string> devices;
  registry->ForEachSession(user, [&](const session::DeviceSession& s) {
    if (device.empty() || s.device == device) devices.push_back(s.device);
  });
  for (const std::string& name : devices) {
    AdminKicked kicked;
    kicked.user = user;
    kicked.device = name;
    kicked.shard = shard.id();
    session::DeviceSession* s = registry->FindSession(user, name);
    if (s == nullptr) continue;
    if (s->connection != nullptr) {
      kicked.was_connected = true;
      // The link may be freed inside (a hibernated connection wakes to say
      // goodbye): not touched after.
      s->connection->Kick("Disconnected by the administrator");
      s = registry->FindSession(user, name);
      kicked.closed = s == nullptr || s->connection == nullptr;
    }
    // A connection still attached (e.g. on its way between shards) keeps its
    // session: ending it under the connection would leave the link dangling.
    if (forget && s != nullptr && s->connection == nullptr) {
      registry->End(s);
      kicked.forgotten = true;
    }
    report.kicked.push_back(std::move(kicked));
  }
  return report;
}

}  // namespace pimap
