// Micro-benchmarks of the session model: journal append (+ render and ack),
// UidView MsnOf/UidAt on a 100k-range view, Insert/Erase at the end of a view
// and in its middle. Reports items/s and, where useful, bytes per item.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/session/journal.h"
#include "core/session/uid_view.h"

namespace pimap::session {
namespace {

// 1M messages in 100k ranges of 10 (every 11th UID missing).
UidView HundredKRanges() {
  std::vector<uint32_t> uids;
  uids.reserve(1000000);
  for (uint32_t u = 1; uids.size() < 1000000; ++u) {
    if (u % 11 != 0) uids.push_back(u);
  }
  return UidView::FromSortedUids(uids);
}

void BM_ViewMsnOf(benchmark::State& state) {
  const UidView view = HundredKRanges();
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> dist(1, view.max_uid());
  std::vector<uint32_t> probes(4096);
  for (uint32_t& p : probes) p = dist(rng);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(view.MsnOf(probes[i++ & 4095]));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ranges"] = static_cast<double>(view.range_count());
  state.counters["bytes_per_range"] =
      static_cast<double>(view.MemoryBytes()) / view.range_count();
}
BENCHMARK(BM_ViewMsnOf);

void BM_ViewUidAt(benchmark::State& state) {
  const UidView view = HundredKRanges();
  std::mt19937 rng(2);
  std::uniform_int_distribution<uint32_t> dist(1, view.size());
  std::vector<uint32_t> probes(4096);
  for (uint32_t& p : probes) p = dist(rng);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(view.UidAt(probes[i++ & 4095]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ViewUidAt);

// New mail: Insert above max_uid, alternating contiguous UIDs and gaps so
// that both "extend the last range" and "new range" paths run.
void BM_ViewInsertAtEnd(benchmark::State& state) {
  UidView view = HundredKRanges();
  uint32_t next = view.max_uid() + 2;
  for (auto _ : state) {
    benchmark::DoNotOptimize(view.Insert(next));
    next += (next & 1) ? 1 : 2;
    if (next > 4000000000u) {
      state.PauseTiming();
      view = HundredKRanges();
      next = view.max_uid() + 2;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ViewInsertAtEnd);

// Insert at the end then erase it again: the steady state of a busy folder.
void BM_ViewInsertEraseAtEnd(benchmark::State& state) {
  UidView view = HundredKRanges();
  const uint32_t uid = view.max_uid() + 5;
  for (auto _ : state) {
    benchmark::DoNotOptimize(view.Insert(uid));
    benchmark::DoNotOptimize(view.Erase(uid));
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_ViewInsertEraseAtEnd);

// Expunge in the middle (splits a range), then re-insert (joins it back).
void BM_ViewEraseInsertMiddle(benchmark::State& state) {
  UidView view = HundredKRanges();
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> dist(1, view.max_uid());
  std::vector<uint32_t> probes;
  while (probes.size() < 4096) {
    const uint32_t u = dist(rng);
    if (u % 11 != 0 && u % 11 != 1 && u % 11 != 10) probes.push_back(u);
  }
  size_t i = 0;
  for (auto _ : state) {
    const uint32_t u = probes[i++ & 4095];
    benchmark::DoNotOptimize(view.Erase(u));
    benchmark::DoNotOptimize(view.Insert(u));
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_ViewEraseInsertMiddle);

StoreEvent FlagsEvent(uint32_t uid) {
  StoreEvent e;
  e.kind = EventKind::kFlags;
  e.folder = "INBOX";
  e.uidvalidity = 1;
  e.uid = uid;
  e.flags = {"\\Seen"};
  e.modseq = uid;
  return e;
}

// Append only (the fan-out cost per device), acking every 1000 events to
// stay below the limit.
void BM_JournalAppend(benchmark::State& state) {
  Journal journal(10000);
  uint32_t uid = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(journal.Append(FlagsEvent(uid++)));
    if (journal.size() == 1000) {
      journal.MarkDelivered("INBOX", journal.last_seq());
      journal.AckDelivered("INBOX");
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JournalAppend);

// Append a batch, render it against a view ("* n FETCH (FLAGS (...))"),
// mark delivered and ack: the whole life of an event on a live connection.
void BM_JournalAppendRenderAck(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Journal journal(10000);
  const UidView view = HundredKRanges();
  std::mt19937 rng(4);
  std::uniform_int_distribution<uint32_t> dist(1, view.max_uid());
  std::string out;
  for (auto _ : state) {
    for (int k = 0; k < batch; ++k) journal.Append(FlagsEvent(dist(rng)));
    out.clear();
    for (const StoreEvent* e : journal.Undelivered("INBOX")) {
      if (std::optional<uint32_t> msn = view.MsnOf(e->uid)) {
        absl::StrAppend(&out, "* ", *msn, " FETCH (FLAGS (", e->flags[0],
                        "))\r\n");
      }
    }
    benchmark::DoNotOptimize(out.data());
    journal.MarkDelivered("INBOX", journal.last_seq());
    journal.AckDelivered("INBOX");
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_JournalAppendRenderAck)->Arg(1)->Arg(64);

// Memory of a full journal (10000 flag events), per entry.
void BM_JournalMemory(benchmark::State& state) {
  for (auto _ : state) {
    Journal journal(10000);
    for (uint32_t u = 1; u <= 10000; ++u) journal.Append(FlagsEvent(u));
    state.counters["bytes_per_entry"] =
        static_cast<double>(journal.MemoryBytes()) / journal.size();
  }
}
BENCHMARK(BM_JournalMemory)->Iterations(1);

}  // namespace
}  // namespace pimap::session
