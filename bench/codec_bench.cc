// Codec throughput: command framing+parsing, response writing and response
// parsing on realistic traffic (FETCH/UID FETCH/STORE/SEARCH, LOGIN with
// quoted strings, APPEND with a 64 KiB literal, FETCH responses with bodies).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/response.h"
#include "core/imap/writer.h"

namespace pimap::imap {
namespace {

// Frames and assembles; counts complete messages.
template <typename Assembler>
class Sink : public Framer::Visitor {
 public:
  Sink(const ParserLimits& limits, size_t max_total)
      : assembler_(limits, max_total) {}
  bool OnLine(absl::string_view line, const LiteralHeader* lit) override {
    (void)assembler_.AddLine(line, lit);
    return true;
  }
  bool OnLiteralData(absl::string_view chunk) override {
    (void)assembler_.AddLiteralData(chunk);
    return true;
  }
  bool OnEnd() override {
    auto r = assembler_.Finish();
    benchmark::DoNotOptimize(r);
    if (r.ok()) ++parsed;
    return true;
  }
  bool OnError(const FrameError&) override {
    assembler_.Reset();
    return true;
  }
  int64_t parsed = 0;

 private:
  Assembler assembler_;
};

std::string CommandMix() {
  std::string s;
  for (int i = 0; i < 64; ++i) {
    absl::StrAppend(
        &s, "a", i, " UID FETCH ", 1000 + i, ":", 2000 + i,
        " (UID FLAGS INTERNALDATE RFC822.SIZE "
        "BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])\r\n",
        "b", i, " FETCH 1:* (FLAGS)\r\n", "c", i,
        " UID STORE 4711,4713:4720 +FLAGS.SILENT (\\Seen \\Flagged)\r\n", "d",
        i, " UID SEARCH SINCE 1-Jan-2024 UNSEEN FROM \"alice@example.org\"\r\n",
        "e", i, " LOGIN \"joe#P6505551234@foo.com\" \"s3cr\\\"et\\\\pw\"\r\n",
        "f", i, " NOOP\r\n");
  }
  return s;
}

std::string AppendCommand() {
  std::string body;
  while (body.size() < 64 * 1024) {
    body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n";
  }
  body.resize(64 * 1024);
  return absl::StrCat(
      "A APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {", body.size(),
      "}\r\n", body, "\r\n");
}

void RunCommands(benchmark::State& state, const std::string& input,
                 size_t chunk) {
  const ParserLimits limits;
  int64_t commands = 0;
  for (auto _ : state) {
    Framer framer(Framer::Mode::kCommands, limits);
    Sink<CommandAssembler> sink(limits, 1 << 20);
    absl::string_view rest = input;
    while (!rest.empty()) {
      const absl::string_view piece = rest.substr(0, chunk);
      framer.Feed(piece, sink);
      rest.remove_prefix(piece.size());
    }
    commands += sink.parsed;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(input.size()));
  state.SetItemsProcessed(commands);
}

void BM_CommandMix(benchmark::State& state) {
  static const std::string input = CommandMix();
  RunCommands(state, input, static_cast<size_t>(state.range(0)));
}
// 16 KiB: typical socket reads; 64: lines split across reads (buffering path).
BENCHMARK(BM_CommandMix)->Arg(16384)->Arg(64);

void BM_Append64KiB(benchmark::State& state) {
  static const std::string input = AppendCommand();
  RunCommands(state, input, 16384);
}
BENCHMARK(BM_Append64KiB);

void BM_CommandHeadOnly(benchmark::State& state) {
  for (auto _ : state) {
    auto h = ParseCommandHead("a17 UID FETCH 1:* (FLAGS)");
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CommandHeadOnly);

void BM_WriteResponses(benchmark::State& state) {
  const std::vector<std::string> mailboxes = {
      "INBOX", "Sent Items", "[Gmail]/All Mail", "Archive", "Caf\xc3\xa9"};
  std::string out;
  int64_t items = 0;
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < 100; ++i) {
      const std::string& m =
          mailboxes[static_cast<size_t>(i) % mailboxes.size()];
      out.append("* LIST (\\HasNoChildren) \"/\" ");
      AppendAstring(&out, m);
      out.append("\r\n");
      out.append("* 1 FETCH (ENVELOPE (");
      AppendNString(&out, &m);
      out.push_back(' ');
      AppendNString(&out, nullptr);
      out.append("))\r\n");
      AppendTaggedStatus(&out, "a1", "OK", "READ-WRITE", "SELECT completed");
      AppendUntaggedStatus(&out, "OK", "UIDVALIDITY 3", "UIDs valid");
    }
    items += 400;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(out.size()));
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_WriteResponses);

std::string ResponseMix() {
  const std::string body(4096, 'x');
  std::string s =
      "* OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] Dovecot ready.\r\n";
  for (int i = 1; i <= 64; ++i) {
    absl::StrAppend(
        &s, "* ", i, " FETCH (UID ", 1000 + i,
        " FLAGS (\\Seen) ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700\" "
        "\"Subject \\\"quoted\\\"\" ((\"Terry\" NIL \"gray\" \"example.org\")) "
        "NIL NIL NIL NIL \"<id@example.org>\") BODY[] {",
        body.size(), "}\r\n", body, ")\r\n", "* ", i, " EXISTS\r\n");
  }
  s += "a1 OK [READ-WRITE] Fetch completed.\r\n";
  return s;
}

void BM_ParseResponses(benchmark::State& state) {
  static const std::string input = ResponseMix();
  const ParserLimits limits;
  int64_t responses = 0;
  for (auto _ : state) {
    Framer framer(Framer::Mode::kResponses, limits);
    Sink<ResponseAssembler> sink(limits, 1 << 20);
    absl::string_view rest = input;
    while (!rest.empty()) {
      const absl::string_view piece = rest.substr(0, 16384);
      framer.Feed(piece, sink);
      rest.remove_prefix(piece.size());
    }
    responses += sink.parsed;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(input.size()));
  state.SetItemsProcessed(responses);
}
BENCHMARK(BM_ParseResponses);

}  // namespace
}  // namespace pimap::imap
