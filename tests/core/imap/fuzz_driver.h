// One fuzz iteration over the codec, shared by the bounded sanitizer test
// (codec_fuzz_test.cc) and the optional libFuzzer entry point: bytes go
// through the Framer with caller-chosen chunking and pausing, into the
// command or response assembler, and invariants are checked on the way.
// Violations abort (so that both harnesses report them); memory errors are
// left to ASan/UBSan.
#ifndef PIMAP_TESTS_CORE_IMAP_FUZZ_DRIVER_H_
#define PIMAP_TESTS_CORE_IMAP_FUZZ_DRIVER_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/login_name.h"
#include "core/imap/response.h"
#include "core/imap/sasl.h"
#include "core/imap/sequence_set.h"
#include "core/imap/writer.h"
#include "tests/fuzz/fuzz_check.h"

namespace pimap::imap::fuzz {

// The libFuzzer targets' invariant check (tests/fuzz/fuzz_check.h).
#define PIMAP_FUZZ_CHECK(cond) FUZZ_CHECK(cond)

// A tiny deterministic byte source so that the same input always takes the
// same chunking/pausing decisions.
class Choices {
 public:
  explicit Choices(uint64_t seed) : state_(seed | 1) {}
  uint32_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<uint32_t>(state_ >> 11);
  }
  uint32_t Below(uint32_t n) { return n == 0 ? 0 : Next() % n; }

 private:
  uint64_t state_;
};

struct Stats {
  uint64_t commands_ok = 0;
  uint64_t commands_bad = 0;
  uint64_t frame_errors = 0;
  uint64_t fatal = 0;
};

template <typename Assembler>
class CheckingVisitor : public Framer::Visitor {
 public:
  CheckingVisitor(const ParserLimits& limits, size_t max_total, bool commands,
                  Choices* choices, Stats* stats)
      : limits_(limits),
        assembler_(limits, max_total),
        commands_(commands),
        choices_(choices),
        stats_(stats) {}

  bool OnLine(absl::string_view line, const LiteralHeader* lit) override {
    PIMAP_FUZZ_CHECK(line.size() <= limits_.max_line_bytes);
    PIMAP_FUZZ_CHECK(literal_left_ == 0);
    if (lit != nullptr) {
      PIMAP_FUZZ_CHECK(lit->size <= limits_.max_literal_bytes);
      PIMAP_FUZZ_CHECK(lit->header_offset < line.size());
      literal_left_ = lit->size;
    }
    if (first_line_ && commands_) {
      (void)ParseCommandHead(line);
    }
    first_line_ = false;
    (void)assembler_.AddLine(line, lit);
    return Continue();
  }
  bool OnLiteralData(absl::string_view chunk) override {
    PIMAP_FUZZ_CHECK(!chunk.empty());
    PIMAP_FUZZ_CHECK(chunk.size() <= literal_left_);
    literal_left_ -= chunk.size();
    (void)assembler_.AddLiteralData(chunk);
    return Continue();
  }
  bool OnEnd() override {
    PIMAP_FUZZ_CHECK(literal_left_ == 0);
    PIMAP_FUZZ_CHECK(!first_line_);
    auto result = assembler_.Finish();
    if (result.ok()) {
      ++stats_->commands_ok;
      Inspect(*result);
    } else {
      ++stats_->commands_bad;
      PIMAP_FUZZ_CHECK(result.status().code() ==
                       absl::StatusCode::kInvalidArgument);
    }
    first_line_ = true;
    return Continue();
  }
  bool OnError(const FrameError& error) override {
    ++stats_->frame_errors;
    PIMAP_FUZZ_CHECK(!error.message.empty());
    PIMAP_FUZZ_CHECK(error.tag.size() <= 64);
    assembler_.Reset();
    first_line_ = true;
    literal_left_ = 0;
    return Continue();
  }

 private:
  bool Continue() { return choices_->Below(8) != 0; }

  void Inspect(const Command& c) {
    PIMAP_FUZZ_CHECK(!c.tag.empty());
    PIMAP_FUZZ_CHECK(!c.name.empty());
    CheckArgs(c.args, 0);
    for (const Arg& a : c.args) {
      if (a.type == Arg::Type::kAtom) (void)SequenceSet::Parse(a.value);
      if (a.is_string()) {
        (void)ParseLoginName(a.value);
        (void)DecodeSaslPlain(a.value);
        std::string out;
        AppendAstring(&out, a.value);
        (void)QuoteForLog(out);
      }
    }
  }
  void Inspect(const Response& r) {
    CheckArgs(r.args, 0);
    (void)CapabilitiesFrom(r);
  }
  void CheckArgs(const std::vector<Arg>& args, int depth) {
    PIMAP_FUZZ_CHECK(depth <= limits_.max_depth);
    for (const Arg& a : args) {
      if (a.type == Arg::Type::kList) {
        CheckArgs(a.children, depth + 1);
      } else {
        PIMAP_FUZZ_CHECK(a.children.empty());
      }
    }
  }

  ParserLimits limits_;
  Assembler assembler_;
  bool commands_;
  Choices* choices_;
  Stats* stats_;
  uint64_t literal_left_ = 0;
  bool first_line_ = true;
};

// Feeds `data` in random chunks (resuming after pauses) through one framer.
template <typename Assembler>
void RunOne(absl::string_view data, Framer::Mode mode,
            const ParserLimits& limits, Choices& choices, Stats& stats) {
  const size_t max_total = 4 * limits.max_line_bytes + 256;
  Framer framer(mode, limits);
  CheckingVisitor<Assembler> visitor(
      limits, max_total, mode == Framer::Mode::kCommands, &choices, &stats);
  absl::string_view rest = data;
  while (!rest.empty() && !framer.fatal()) {
    const size_t want =
        1 + choices.Below(
                choices.Below(4) == 0 ? 3 : static_cast<uint32_t>(rest.size()));
    absl::string_view chunk = rest.substr(0, want);
    // Resume until the chunk is consumed; every call must make progress or
    // deliver an event, so a bounded number of calls suffices.
    size_t guard = 0;
    while (!chunk.empty() && !framer.fatal()) {
      const size_t used = framer.Feed(chunk, visitor);
      PIMAP_FUZZ_CHECK(used <= chunk.size());
      chunk.remove_prefix(used);
      rest.remove_prefix(used);
      PIMAP_FUZZ_CHECK(++guard < 4 * data.size() + 16);
    }
  }
  if (framer.fatal()) {
    PIMAP_FUZZ_CHECK(framer.Feed("x\r\n", visitor) == 0);
    ++stats.fatal;
  } else {
    // Deliver events owed from a final pause.
    for (int i = 0; i < 4; ++i) framer.Feed("", visitor);
  }
}

inline void RunInput(absl::string_view data, uint64_t seed, Stats& stats) {
  Choices choices(seed);
  ParserLimits limits;
  if (choices.Below(2) == 0) {
    limits.max_line_bytes = 4 + choices.Below(60);
    limits.max_literal_bytes = choices.Below(40);
    limits.max_depth = 1 + static_cast<int>(choices.Below(6));
  }
  if (choices.Below(2) == 0) {
    RunOne<CommandAssembler>(data, Framer::Mode::kCommands, limits, choices,
                             stats);
  } else {
    RunOne<ResponseAssembler>(data, Framer::Mode::kResponses, limits, choices,
                              stats);
  }
}

}  // namespace pimap::imap::fuzz

#endif  // PIMAP_TESTS_CORE_IMAP_FUZZ_DRIVER_H_
