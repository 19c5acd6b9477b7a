// The admin commands' work on one shard (pimapctl who, sessions, kick): read
// from, or act on, the shard's own SessionRegistry on its own thread. Run by
// GatherFromShards (admin_gather.h) on every shard; each shard answers for
// the sessions it owns.
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_SESSIONS_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_SESSIONS_H_

#include <string>

#include "tools/pimapd/admin_report.h"

namespace pimap::engine {
class Shard;
}  // namespace pimap::engine

namespace pimap {

// Shard thread. Devices and users (of `user`; empty: all, at most
// kAdminMaxRows).
AdminShardReport CollectWho(engine::Shard& shard, const std::string& user);
// Shard thread. Every device session of `user` in detail.
AdminShardReport CollectSessions(engine::Shard& shard, const std::string& user);
// Shard thread. Closes the connection of `user`'s `device` (empty: of every
// device of the user) with a BYE; with `forget`, also ends the P-IMAP session
// (the device's next login is a first login; its filters and prefs stay).
AdminShardReport KickOnShard(engine::Shard& shard, const std::string& user,
                             const std::string& device, bool forget);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_SESSIONS_H_
