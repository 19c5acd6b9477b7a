// Server response parsing: status responses keep their text verbatim, data
// responses are tokenized with the shared (lenient) tokenizer.
#include "core/imap/response.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace pimap::imap {
namespace {

absl::Status Bad(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

bool IsStatusName(absl::string_view n) {
  return n == "OK" || n == "NO" || n == "BAD" || n == "BYE" || n == "PREAUTH";
}

// Fills code/text from the resp-text that starts at line[pos].
void ParseRespText(absl::string_view rest, Response* r) {
  if (absl::ConsumePrefix(&rest, "[")) {
    const size_t close = rest.find(']');
    if (close != absl::string_view::npos) {
      r->code.assign(rest.data(), close);
      rest.remove_prefix(close + 1);
      absl::ConsumePrefix(&rest, " ");
      r->text.assign(rest.data(), rest.size());
      return;
    }
    // No closing bracket: not a code after all, keep everything as text.
    r->text.push_back('[');
  }
  r->text.append(rest.data(), rest.size());
}

absl::Status ParseResponse(const std::vector<internal::Segment>& segs,
                           int max_depth, Response* r) {
  const absl::string_view line = segs[0].line;
  const size_t limit = segs[0].text_end();
  if (line.empty()) return Bad("empty response");
  if (line[0] == '+') {
    r->kind = Response::Kind::kContinuation;
    absl::string_view rest = line.substr(1);
    absl::ConsumePrefix(&rest, " ");
    r->text.assign(rest.data(), rest.size());
    return absl::OkStatus();
  }
  size_t i = 0;
  if (line[0] == '*') {
    r->kind = Response::Kind::kUntagged;
    if (line.size() < 2 || line[1] != ' ') return Bad("expected space");
    i = 2;
    if (i < limit && absl::ascii_isdigit(static_cast<unsigned char>(line[i]))) {
      uint64_t n = 0;
      while (i < limit &&
             absl::ascii_isdigit(static_cast<unsigned char>(line[i]))) {
        n = n * 10 + static_cast<uint64_t>(line[i] - '0');
        if (n > 0xffffffffull) return Bad("number too large");
        ++i;
      }
      if (i >= limit || line[i] != ' ') return Bad("expected space");
      ++i;
      r->number = static_cast<uint32_t>(n);
    }
  } else {
    r->kind = Response::Kind::kTagged;
    while (i < limit &&
           internal::IsTagChar(static_cast<unsigned char>(line[i])))
      ++i;
    if (i == 0 || i >= limit || line[i] != ' ') return Bad("invalid tag");
    r->tag.assign(line.data(), i);
    ++i;
  }
  const size_t start = i;
  while (i < limit && line[i] != ' ' && line[i] != '[' && line[i] != '(' &&
         internal::IsParserAtomChar(static_cast<unsigned char>(line[i]))) {
    ++i;
  }
  if (i == start) return Bad("missing response name");
  r->name.assign(line.data() + start, i - start);
  absl::AsciiStrToUpper(&r->name);
  if (IsStatusName(r->name)) {
    absl::string_view rest = line.substr(i);
    absl::ConsumePrefix(&rest, " ");
    ParseRespText(rest, r);
    return absl::OkStatus();
  }
  if (r->kind == Response::Kind::kTagged) {
    return Bad("tagged response is not a status response");
  }
  internal::Tokenizer tokenizer(segs, max_depth, /*lenient=*/true);
  tokenizer.Seek(i);
  return tokenizer.ParseRemainingArgs(&r->args);
}

}  // namespace

bool Response::is_status() const { return IsStatusName(name); }

ResponseAssembler::ResponseAssembler(const ParserLimits& limits,
                                     size_t max_total_bytes)
    : limits_(limits), collector_(max_total_bytes, "response") {}

absl::Status ResponseAssembler::AddLine(absl::string_view line,
                                        const LiteralHeader* literal) {
  return collector_.AddLine(line, literal);
}

absl::Status ResponseAssembler::AddLiteralData(absl::string_view chunk) {
  return collector_.AddLiteralData(chunk);
}

void ResponseAssembler::Reset() { collector_.Reset(); }

absl::StatusOr<Response> ResponseAssembler::Finish() {
  std::vector<internal::Segment> segments;
  absl::Status s = collector_.Segments(&segments);
  Response response;
  if (s.ok()) s = ParseResponse(segments, limits_.max_depth, &response);
  collector_.Reset();
  if (!s.ok()) return s;
  return response;
}

std::vector<std::string> CapabilitiesFrom(const Response& r) {
  std::vector<std::string> caps;
  if (r.name == "CAPABILITY" && !r.is_status()) {
    for (const Arg& a : r.args) {
      if (a.type != Arg::Type::kAtom) continue;
      caps.push_back(absl::AsciiStrToUpper(a.value));
    }
    return caps;
  }
  if (!r.is_status()) return caps;
  absl::string_view code = r.code;
  const size_t sp = code.find(' ');
  if (!absl::EqualsIgnoreCase(code.substr(0, sp), "CAPABILITY")) return caps;
  if (sp == absl::string_view::npos) return caps;
  for (absl::string_view tok :
       absl::StrSplit(code.substr(sp + 1), ' ', absl::SkipEmpty())) {
    caps.push_back(absl::AsciiStrToUpper(tok));
  }
  return caps;
}

namespace {

// Feeds one raw response through a Framer into a ResponseAssembler.
class WholeResponse final : public Framer::Visitor {
 public:
  WholeResponse(const ParserLimits& limits, size_t max_bytes)
      : assembler_(limits, max_bytes) {}
  bool OnLine(absl::string_view line, const LiteralHeader* literal) override {
    Note(assembler_.AddLine(line, literal));
    return status_.ok();
  }
  bool OnLiteralData(absl::string_view chunk) override {
    Note(assembler_.AddLiteralData(chunk));
    return status_.ok();
  }
  bool OnEnd() override {
    ended_ = true;
    return false;  // one response only
  }
  bool OnError(const FrameError& error) override {
    Note(absl::InvalidArgumentError(error.message));
    return false;
  }
  absl::StatusOr<Response> Finish() {
    if (!status_.ok()) return status_;
    if (!ended_) return absl::InvalidArgumentError("incomplete response");
    return assembler_.Finish();
  }

 private:
  void Note(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  ResponseAssembler assembler_;
  absl::Status status_;
  bool ended_ = false;
};

}  // namespace

absl::StatusOr<Response> ParseWholeResponse(absl::string_view raw,
                                            const ParserLimits& limits,
                                            size_t max_bytes) {
  Framer framer(Framer::Mode::kResponses, limits);
  WholeResponse visitor(limits, max_bytes);
  framer.Feed(raw, visitor);
  return visitor.Finish();
}

bool HasCapability(const std::vector<std::string>& caps,
                   absl::string_view cap) {
  for (const std::string& c : caps) {
    if (absl::EqualsIgnoreCase(c, cap)) return true;
  }
  return false;
}

}  // namespace pimap::imap
