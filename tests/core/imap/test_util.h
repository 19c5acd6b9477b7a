// Helpers shared by the codec tests: an event-recording framer visitor and
// one-shot "bytes -> Command/Response" helpers going through the Framer.
#ifndef PIMAP_TESTS_CORE_IMAP_TEST_UTIL_H_
#define PIMAP_TESTS_CORE_IMAP_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/response.h"

namespace pimap::imap::testing {

inline std::string KindName(FrameErrorKind k) {
  switch (k) {
    case FrameErrorKind::kLineTooLong:
      return "LineTooLong";
    case FrameErrorKind::kLiteralTooLarge:
      return "LiteralTooLarge";
    case FrameErrorKind::kBadLiteralHeader:
      return "BadLiteralHeader";
  }
  return "?";
}

// Records events as strings; consecutive literal chunks are merged so that
// the record does not depend on how the input was chunked.
class Recorder : public Framer::Visitor {
 public:
  bool OnLine(absl::string_view line, const LiteralHeader* lit) override {
    std::string e = absl::StrCat("L:", line);
    if (lit != nullptr) {
      absl::StrAppend(&e, "|", lit->size, lit->synchronizing ? "s" : "n",
                      lit->binary ? "b" : "", "@", lit->header_offset);
    }
    events.push_back(e);
    if (lit != nullptr && (reject_all || (reject_sync && lit->synchronizing))) {
      framer->RejectLiteral();
    }
    return Next();
  }
  bool OnLiteralData(absl::string_view chunk) override {
    if (!events.empty() && events.back().rfind("D:", 0) == 0) {
      events.back().append(chunk.data(), chunk.size());
    } else {
      events.push_back(absl::StrCat("D:", chunk));
    }
    return Next();
  }
  bool OnEnd() override {
    events.push_back("E");
    return Next();
  }
  bool OnError(const FrameError& e) override {
    events.push_back(absl::StrCat("X:", KindName(e.kind), ":", e.tag, ":",
                                  e.fatal ? "fatal" : "ok"));
    messages.push_back(e.message);
    return Next();
  }
  std::string Joined() const { return absl::StrJoin(events, "\n"); }

  std::vector<std::string> events;
  std::vector<std::string> messages;
  bool pause_every_event = false;
  bool reject_sync = false;
  bool reject_all = false;
  Framer* framer = nullptr;

 private:
  bool Next() { return !pause_every_event; }
};

// Frames `raw` and assembles it into one parsed message. Fails if the input
// does not frame into exactly one complete message.
template <typename Assembler, typename Result>
absl::StatusOr<Result> AssembleOne(Framer::Mode mode, absl::string_view raw,
                                   const ParserLimits& limits,
                                   size_t max_total) {
  struct V : Framer::Visitor {
    Assembler* a;
    absl::Status status;
    int ends = 0;
    bool OnLine(absl::string_view line, const LiteralHeader* lit) override {
      if (status.ok()) status = a->AddLine(line, lit);
      return true;
    }
    bool OnLiteralData(absl::string_view chunk) override {
      if (status.ok()) status = a->AddLiteralData(chunk);
      return true;
    }
    bool OnEnd() override {
      ++ends;
      return false;
    }
    bool OnError(const FrameError& e) override {
      status = absl::InternalError(absl::StrCat("frame error: ", e.message));
      return false;
    }
  };
  Assembler assembler(limits, max_total);
  Framer framer(mode, limits);
  V v;
  v.a = &assembler;
  const size_t used = framer.Feed(raw, v);
  if (!v.status.ok()) return v.status;
  if (v.ends != 1 || used != raw.size()) {
    return absl::InternalError(
        absl::StrCat("not exactly one message: ends=", v.ends, " used=", used,
                     "/", raw.size()));
  }
  return assembler.Finish();
}

inline absl::StatusOr<Command> ParseCommandBytes(
    absl::string_view raw, const ParserLimits& limits = ParserLimits(),
    size_t max_total = 1 << 20) {
  return AssembleOne<CommandAssembler, Command>(Framer::Mode::kCommands, raw,
                                                limits, max_total);
}

inline absl::StatusOr<Response> ParseResponseBytes(
    absl::string_view raw, const ParserLimits& limits = ParserLimits(),
    size_t max_total = 1 << 20) {
  return AssembleOne<ResponseAssembler, Response>(Framer::Mode::kResponses, raw,
                                                  limits, max_total);
}

// Compact rendering of arguments: atom as is, "quoted", {n}literal,
// ~{n}binary, NIL, (list).
inline std::string ArgDebug(const Arg& a) {
  switch (a.type) {
    case Arg::Type::kAtom:
      return a.value;
    case Arg::Type::kQuoted:
      return absl::StrCat("\"", a.value, "\"");
    case Arg::Type::kLiteral:
      return absl::StrCat(a.binary ? "~" : "", "{", a.value.size(), "}",
                          a.value);
    case Arg::Type::kNil:
      return "NIL";
    case Arg::Type::kList: {
      std::vector<std::string> parts;
      for (const Arg& c : a.children) parts.push_back(ArgDebug(c));
      return absl::StrCat("(", absl::StrJoin(parts, " "), ")");
    }
  }
  return "?";
}

inline std::string ArgsDebug(const std::vector<Arg>& args) {
  std::vector<std::string> parts;
  for (const Arg& a : args) parts.push_back(ArgDebug(a));
  return absl::StrJoin(parts, " ");
}

}  // namespace pimap::imap::testing

#endif  // PIMAP_TESTS_CORE_IMAP_TEST_UTIL_H_
