// Asking every shard a question from one shard's thread, without locks: the
// question is posted to each shard (Shard::Post), each answers on its own
// thread from the state it owns, and posts its answer back to the asking
// shard, where the answers are gathered. Bounded in time: at the deadline the
// answers in hand are used and the shards that did not answer are named (a
// stuck or overloaded shard must not hang the operator's command).
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_GATHER_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_GATHER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "tools/pimapd/admin_report.h"

namespace pimap::engine {
class Shard;
}  // namespace pimap::engine

namespace pimap {

// Runs on each shard's thread: that shard's answer.
using AdminCollect = std::function<AdminShardReport(engine::Shard&)>;
// Runs once on the asking shard's thread: the answers that came (in shard
// order) and the ids of the shards that did not answer in time.
using AdminGathered = absl::AnyInvocable<void(
    std::vector<AdminShardReport> reports, std::vector<int> missing)>;

// On `home`'s thread. `collect` is copied to every shard (it must hold only
// what any thread may read). A shard whose inbox is full counts as missing
// at once.
void GatherFromShards(engine::Shard& home, AdminCollect collect,
                      int64_t deadline_ms, AdminGathered done);

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_GATHER_H_
