// COMPRESS=DEFLATE and XZSTDEVENTS dictionary frames (RunFrames) on the
// traffic an idle phone gets: a stream of pushed
// events (EXISTS, flag changes, expunges, keepalives), each written and
// flushed on its own, as the gateway does. Counters per event: wire bytes
// (plain bytes / wire bytes = the ratio), and the zlib state a connection
// holds while it sends. Configurations: the gateway's (2 KiB window, memLevel
// 4) keeping its compressor between events, the same freeing it after each
// event (--deflate-keep 0), and zlib's defaults (32 KiB window, memLevel 8).
// Two inputs: 1000 synthetic short events (the first rows, kept for
// comparison), and bursts the gateway really pushed, recorded by
// bench/capture-events into bench/events/ (BM_Captured*: one mix per file and
// a phone-like mix of them, see CapturedMix()).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// Each string is one burst, written and flushed on its own; `count` of them
// are events (untagged responses) for the per-event counters.
void RunBursts(benchmark::State& state, const std::vector<std::string>& events,
               size_t count, DeflateConfig config, bool keep) {
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
    events_sent += count;
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

void Run(benchmark::State& state, DeflateConfig config, bool keep) {
  const std::vector<std::string> events = Events(1000);
  RunBursts(state, events, events.size(), config, keep);
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

// Events as XZSTDEVENTS frames (docs/zstd-event-frames.md): each burst one
// independent zstd frame made with the shipped dictionary and the shard's
// context, in its IMAP wrapping (or plain when a frame would not shrink it).
// No state per connection at all (state_bytes_sending: the shard's, shared by
// all). `count`: the events (untagged responses) in `bursts`.
void RunFrames(benchmark::State& state, const std::vector<std::string>& bursts,
               size_t count) {
  http::ShardCompressor compressor;
  compressor.set_event_dictionary(http::EventDictionary::Default());
  uint64_t plain = 0, wire = 0, framed = 0, events_sent = 0, sent = 0;
  for (auto _ : state) {
    session::EventFrames framing(&compressor);
    imap::Command on;
    on.tag = "z";
    on.name = "XZSTDEVENTS";
    on.args.emplace_back();
    on.args.back().value = absl::StrCat(compressor.event_dictionary()->id());
    framing.Execute(on);
    for (const std::string& e : bursts) {
      const std::string out = framing.Frame(e);
      plain += e.size();
      wire += out.size();
      framed += out != e;
    }
    events_sent += count;
    sent += bursts.size();
  }
  state.counters["plain_bytes_per_event"] =
      static_cast<double>(plain) / static_cast<double>(events_sent);
  state.counters["wire_bytes_per_event"] =
      static_cast<double>(wire) / static_cast<double>(events_sent);
  state.counters["bursts_framed"] =
      static_cast<double>(framed) / static_cast<double>(sent);
  state.counters["ratio"] =
      static_cast<double>(plain) / static_cast<double>(wire);
  state.counters["state_bytes_sending"] = 0;
  state.SetItemsProcessed(static_cast<int64_t>(events_sent));
}

// `events` regrouped n per burst.
std::vector<std::string> Grouped(const std::vector<std::string>& events,
                                 size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < events.size(); i += n) {
    std::string burst;
    for (size_t j = i; j < i + n && j < events.size(); ++j) burst += events[j];
    out.push_back(std::move(burst));
  }
  return out;
}

// The synthetic events, state.range(0) per pushed burst.
void BM_ZstdDictionaryFrames(benchmark::State& state) {
  const std::vector<std::string> single = Events(1000);
  RunFrames(state, Grouped(single, state.range(0)), single.size());
}

// ---- What the gateway really pushes (bench/capture-events) -----------------

// The bursts of bench/events/<name>.transcript: one burst per block, blocks
// separated by an empty line, lines sent with CRLF (tools/dict/README.md).
std::vector<std::string> Transcript(absl::string_view name) {
  const std::string path =
      absl::StrCat(PIMAP_BENCH_EVENTS_DIR, "/", name, ".transcript");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> bursts;
  std::string burst;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (line.empty()) {
      if (!burst.empty()) bursts.push_back(std::move(burst));
      burst.clear();
      continue;
    }
    absl::StrAppend(&burst, line, "\r\n");
  }
  if (!burst.empty()) bursts.push_back(std::move(burst));
  return bursts;
}

// A recorded mix as bursts: a transcript's name, or "phone": a device showing
// sender and subject of new mail (PIMAP_INBAND_NEW_FORMAT ALL) whose user
// reads each new message on another client (a flag change pushed) and deletes
// every other one there (an expunge pushed), interleaved in that order.
// "phone-other-vocabulary": the same with mail the dictionary never saw.
std::vector<std::string> CapturedMix(absl::string_view mix) {
  if (!absl::StartsWith(mix, "phone")) return Transcript(mix);
  const std::vector<std::string> mail =
      Transcript(mix == "phone" ? "new-all" : "new-all-other-vocabulary");
  const std::vector<std::string> flags = Transcript("flags");
  const std::vector<std::string> gone = Transcript("expunge");
  std::vector<std::string> out;
  size_t f = 0, g = 0, n = 0;
  for (size_t m = 0; m < mail.size(); ++m) {
    out.push_back(mail[m]);
    // A new message is its EXISTS burst then its FETCH burst.
    if (!absl::StartsWith(mail[m], "* ") ||
        mail[m].find(" FETCH (") == std::string::npos) {
      continue;
    }
    out.push_back(flags[f++ % flags.size()]);
    if (n++ % 2 == 1) out.push_back(gone[g++ % gone.size()]);
  }
  return out;
}

// The untagged responses of `bursts`, each on its own.
std::vector<std::string> Lines(const std::vector<std::string>& bursts) {
  std::vector<std::string> out;
  for (const std::string& b : bursts) {
    for (absl::string_view line :
         absl::StrSplit(b, absl::ByString("\r\n"), absl::SkipEmpty())) {
      // A line ending in a literal announcement continues after it.
      if (!out.empty() && absl::EndsWith(out.back(), "}\r\n")) {
        absl::StrAppend(&out.back(), line, "\r\n");
      } else {
        out.push_back(absl::StrCat(line, "\r\n"));
      }
    }
  }
  return out;
}

enum Deflate { kGateway, kGatewayPartial, kZlibDefaults };

void BM_CapturedDeflate(benchmark::State& state, const char* mix,
                        Deflate kind) {
  const std::vector<std::string> bursts = CapturedMix(mix);
  DeflateConfig c;
  if (kind != kGateway) c.flush = Z_PARTIAL_FLUSH;
  if (kind == kZlibDefaults) {
    c.window_bits = 15;
    c.mem_level = 8;
  }
  RunBursts(state, bursts, Lines(bursts).size(), c, /*keep=*/true);
}

// per_burst 0: the bursts as recorded; n: the events regrouped n per burst.
void BM_CapturedZstdFrames(benchmark::State& state, const char* mix,
                           int per_burst) {
  const std::vector<std::string> bursts = CapturedMix(mix);
  const std::vector<std::string> lines = Lines(bursts);
  RunFrames(state, per_burst == 0 ? bursts : Grouped(lines, per_burst),
            lines.size());
}

void BM_CapturedPlain(benchmark::State& state, const char* mix) {
  const std::vector<std::string> bursts = CapturedMix(mix);
  uint64_t plain = 0;
  for (const std::string& b : bursts) plain += b.size();
  const size_t count = Lines(bursts).size();
  for (auto _ : state) benchmark::DoNotOptimize(plain);
  state.counters["events"] = static_cast<double>(count);
  state.counters["bursts"] = static_cast<double>(bursts.size());
  state.counters["plain_bytes_per_event"] =
      static_cast<double>(plain) / static_cast<double>(count);
}

#define PIMAP_CAPTURED(name, mix)                                            \
  BENCHMARK_CAPTURE(BM_CapturedPlain, name, mix);                            \
  BENCHMARK_CAPTURE(BM_CapturedDeflate, name##_gateway_sync, mix, kGateway); \
  BENCHMARK_CAPTURE(BM_CapturedDeflate, name##_gateway_partial, mix,         \
                    kGatewayPartial);                                        \
  BENCHMARK_CAPTURE(BM_CapturedDeflate, name##_zlib_defaults, mix,           \
                    kZlibDefaults);                                          \
  BENCHMARK_CAPTURE(BM_CapturedZstdFrames, name##_as_pushed, mix, 0);        \
  BENCHMARK_CAPTURE(BM_CapturedZstdFrames, name##_1_per_burst, mix, 1);      \
  BENCHMARK_CAPTURE(BM_CapturedZstdFrames, name##_10_per_burst, mix, 10)

PIMAP_CAPTURED(new_none, "new-none");
PIMAP_CAPTURED(new_fast, "new-fast");
PIMAP_CAPTURED(new_all, "new-all");
PIMAP_CAPTURED(flags, "flags");
PIMAP_CAPTURED(expunge, "expunge");
PIMAP_CAPTURED(phone, "phone");
// Senders, domains and subject words the dictionary never saw (capture-events
// --vocabulary other): its score on mail unlike its training set.
PIMAP_CAPTURED(new_fast_other_vocabulary, "new-fast-other-vocabulary");
PIMAP_CAPTURED(new_all_other_vocabulary, "new-all-other-vocabulary");
PIMAP_CAPTURED(phone_other_vocabulary, "phone-other-vocabulary");

BENCHMARK(BM_GatewayDeflateKept);
BENCHMARK(BM_ZstdDictionaryFrames)->Arg(1)->Arg(3)->Arg(10);
BENCHMARK(BM_GatewayDeflateFreedPerEvent);
BENCHMARK(BM_GatewayDeflateKeptPartialFlush);
BENCHMARK(BM_ZlibDefaultsKept);

}  // namespace
}  // namespace pimap::compress
