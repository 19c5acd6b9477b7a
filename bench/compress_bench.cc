// COMPRESS=DEFLATE on the traffic an idle phone gets: a stream of pushed
// events (EXISTS, flag changes, expunges, keepalives), each written and
// flushed on its own, as the gateway does. Counters per event: wire bytes
// (plain bytes / wire bytes = the ratio), and the zlib state a connection
// holds while it sends. Configurations: the gateway's (2 KiB window, memLevel
// 4) keeping its compressor between events, the same freeing it after each
// event (--deflate-keep 0), and zlib's defaults (32 KiB window, memLevel 8).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bindings/compress/deflate_transport.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/http/content_coding.h"
#include "core/http/event_dictionary.h"
#include "core/session/event_frames.h"

namespace pimap::compress {
namespace {

// Counts what reaches the socket.
class Sink final : public engine::Transport {
 public:
  void SetHandler(engine::TransportHandler* h) override { handler = h; }
  void Write(absl::string_view bytes) override { written += bytes.size(); }
  void Write(std::string&& bytes) override { written += bytes.size(); }
  using Transport::Write;
  size_t PendingOutput() const override { return 0; }
  void SetReading(bool) override {}
  void Close() override {}
  void Abort() override {}
  engine::TransportHandler* handler = nullptr;
  uint64_t written = 0;
};

// Pushed events as an idle client sees them: mostly new mail and flag
// changes, some expunges and keepalives, message numbers drifting upwards.
std::vector<std::string> Events(size_t n) {
  std::mt19937 rng(7);
  std::vector<std::string> out;
  uint32_t exists = 1200;
  for (size_t i = 0; i < n; ++i) {
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2:
        out.push_back(absl::StrCat("* ", ++exists, " EXISTS\r\n"));
        break;
      case 3:
      case 4:
        out.push_back(absl::StrCat("* ", exists - rng() % 20,
                                   " FETCH (FLAGS (\\Seen))\r\n"));
        break;
      case 5:
        out.push_back(absl::StrCat("* ", exists - rng() % 50,
                                   " FETCH (FLAGS (\\Seen \\Flagged))\r\n"));
        break;
      case 6:
        out.push_back(
            absl::StrCat("* ", exists-- - rng() % 100, " EXPUNGE\r\n"));
        break;
      default:
        out.push_back("* OK Still here\r\n");
    }
  }
  return out;
}

void Run(benchmark::State& state, DeflateConfig config, bool keep) {
  const std::vector<std::string> events = Events(1000);
  int64_t now = 0;
  TimerWheel timers(now);
  uint64_t plain = 0, wire = 0, events_sent = 0;
  size_t peak_state = 0;
  for (auto _ : state) {
    Sink sink;
    config.idle_free_ms = keep ? 3600 * 1000 : 0;
    auto* t =
        new DeflateTransport(&sink, config, nullptr, keep ? &timers : nullptr);
    for (const std::string& e : events) {
      t->Write(e);
      peak_state = std::max(peak_state, t->state_bytes());
      sink.handler->OnTransportDrained();  // the event left: idle again
      plain += e.size();
    }
    wire += sink.written;
    events_sent += events.size();
    t->Abort();
  }
  state.counters["plain_bytes_per_event"] =
      static_cast<double>(plain) / static_cast<double>(events_sent);
  state.counters["wire_bytes_per_event"] =
      static_cast<double>(wire) / static_cast<double>(events_sent);
  state.counters["ratio"] =
      static_cast<double>(plain) / static_cast<double>(wire);
  state.counters["state_bytes_sending"] = static_cast<double>(peak_state);
  state.SetItemsProcessed(static_cast<int64_t>(events_sent));
}

void BM_GatewayDeflateKept(benchmark::State& state) {
  Run(state, DeflateConfig{}, /*keep=*/true);
}
void BM_GatewayDeflateFreedPerEvent(benchmark::State& state) {
  Run(state, DeflateConfig{}, /*keep=*/false);
}
void BM_GatewayDeflateKeptPartialFlush(benchmark::State& state) {
  DeflateConfig c;
  c.flush = Z_PARTIAL_FLUSH;
  Run(state, c, /*keep=*/true);
}
void BM_ZlibDefaultsKept(benchmark::State& state) {
  DeflateConfig c;
  c.window_bits = 15;
  c.mem_level = 8;
  c.flush = Z_PARTIAL_FLUSH;
  Run(state, c, /*keep=*/true);
}

// The same events as XZSTDEVENTS frames (docs/zstd-event-frames.md): each
// one an independent zstd frame made with the shipped dictionary and the
// shard's context, wrapped in "* XZSTD ~{n}\r\n...\r\n". No state per
// connection at all (state_bytes_sending: the shard's, shared by all).
void BM_ZstdDictionaryFrames(benchmark::State& state) {
  // state.range(0) events per pushed burst (a burst is framed as one).
  std::vector<std::string> events;
  const std::vector<std::string> single = Events(1000);
  for (size_t i = 0; i < single.size(); i += state.range(0)) {
    std::string burst;
    for (size_t j = i; j < i + state.range(0) && j < single.size(); ++j) {
      burst += single[j];
    }
    events.push_back(std::move(burst));
  }
  http::ShardCompressor compressor;
  compressor.set_event_dictionary(http::EventDictionary::Default());
  uint64_t plain = 0, wire = 0, framed = 0, events_sent = 0, bursts = 0;
  for (auto _ : state) {
    session::EventFrames framing(&compressor);
    imap::Command on;
    on.tag = "z";
    on.name = "XZSTDEVENTS";
    on.args.emplace_back();
    on.args.back().value =
        absl::StrCat(compressor.event_dictionary()->id());
    framing.Execute(on);
    for (const std::string& e : events) {
      const std::string out = framing.Frame(e);
      plain += e.size();
      wire += out.size();
      framed += out != e;
    }
    events_sent += single.size();
    bursts += events.size();
  }
  state.counters["plain_bytes_per_event"] =
      static_cast<double>(plain) / static_cast<double>(events_sent);
  state.counters["wire_bytes_per_event"] =
      static_cast<double>(wire) / static_cast<double>(events_sent);
  state.counters["bursts_framed"] =
      static_cast<double>(framed) / static_cast<double>(bursts);
  state.counters["ratio"] =
      static_cast<double>(plain) / static_cast<double>(wire);
  state.counters["state_bytes_sending"] = 0;
  state.SetItemsProcessed(static_cast<int64_t>(events_sent));
}

BENCHMARK(BM_GatewayDeflateKept);
BENCHMARK(BM_ZstdDictionaryFrames)->Arg(1)->Arg(3)->Arg(10);
BENCHMARK(BM_GatewayDeflateFreedPerEvent);
BENCHMARK(BM_GatewayDeflateKeptPartialFlush);
BENCHMARK(BM_ZlibDefaultsKept);

}  // namespace
}  // namespace pimap::compress
