// Gathering answers from every shard on one shard's thread (admin_gather.h).
#include "tools/pimapd/admin_gather.h"

#include <memory>
#include <optional>
#include <utility>

#include "core/base/timer_wheel.h"
#include "core/engine/shard.h"
#include "core/engine/shard_set.h"

namespace pimap {

namespace {

// Lives on the home shard: only its thread reads or writes it. Other shards'
// tasks hold a reference only to hand it back to home (the count is atomic;
// the contents are not touched there).
struct Gathering {
  std::vector<std::optional<AdminShardReport>> reports;
  int outstanding = 0;
  bool finished = false;
  TimerWheel::TimerId timer = 0;
  AdminGathered done;

  void Finish(engine::Shard& home) {
    if (finished) return;
    finished = true;
    if (timer != 0) home.timers().Cancel(timer);
    timer = 0;
    std::vector<AdminShardReport> answered;
    std::vector<int> missing;
    for (size_t i = 0; i < reports.size(); ++i) {
      if (reports[i].has_value()) {
        answered.push_back(*std::move(reports[i]));
      } else {
        missing.push_back(static_cast<int>(i));
      }
    }
    AdminGathered callback = std::move(done);
    callback(std::move(answered), std::move(missing));
  }
};

}  // namespace

void GatherFromShards(engine::Shard& home, AdminCollect collect,
                      int64_t deadline_ms, AdminGathered done) {
  engine::ShardSet& set = home.set();
  auto state = std::make_shared<Gathering>();
  state->reports.resize(static_cast<size_t>(set.count()));
  state->outstanding = set.count();
  state->done = std::move(done);
  engine::Shard* home_shard = &home;
  for (int i = 0; i < set.count(); ++i) {
    const bool posted = set.shard(i).Post([state, collect, home_shard,
                                           i](engine::Shard& shard) {
      AdminShardReport report = collect(shard);
      report.shard = i;
      // A full inbox at home drops the answer: the deadline covers it.
      home_shard->Post(
          [state, i, report = std::move(report)](engine::Shard& home) mutable {
            if (state->finished) return;
            state->reports[static_cast<size_t>(i)] = std::move(report);
            if (--state->outstanding == 0) state->Finish(home);
          });
    });
    if (!posted) --state->outstanding;
  }
  if (state->outstanding == 0) {
    state->Finish(home);
    return;
  }
  // The timer holds the state; the answers' tasks hold it too, so whichever
  // comes last frees it (on home's thread, or with a dropped task).
  state->timer = home.timers().Schedule(deadline_ms, [state, home_shard] {
    state->timer = 0;
    state->Finish(*home_shard);
  });
}

}  // namespace pimap
