// XZSTDDICT / XZSTDEVENTS and the framing of pushed bursts (event_frames.h).
#include "core/session/event_frames.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/http/content_coding.h"
#include "core/http/event_dictionary.h"
#include "core/imap/writer.h"

namespace pimap::session {

EventFrames::EventFrames(http::ShardCompressor* compressor)
    : dictionary_(compressor != nullptr ? compressor->event_dictionary()
                                        : nullptr),
      compressor_(compressor) {}

std::string EventFrames::Capability() const {
  if (!available()) return "";
  return absl::StrCat("XZSTDEVENTS=", dictionary_->id());
}

std::optional<std::string> EventFrames::Execute(const imap::Command& command) {
  const bool dict = command.name == "XZSTDDICT";
  if (!available() || (!dict && command.name != "XZSTDEVENTS")) {
    return std::nullopt;
  }
  const std::string& tag = command.tag;
  const uint32_t id = dictionary_->id();
  const std::string current = absl::StrCat("XZSTDDICT ", id);
  std::string out;
  if (command.args.size() > 1 ||
      (command.args.size() == 1 && !command.args[0].is_astring())) {
    imap::AppendTaggedStatus(&out, tag, "BAD", "",
                             absl::StrCat(command.name, " takes one argument"));
    return out;
  }
  const std::string arg = command.args.empty() ? "" : command.args[0].value;
  uint32_t asked = 0;
  const bool names_id = absl::SimpleAtoi(arg, &asked);
  if (dict) {
    // The current dictionary (or the one named, if it is the current one).
    if (!arg.empty() && (!names_id || asked != id)) {
      imap::AppendTaggedStatus(&out, tag, "NO", current,
                               "No such dictionary; this is the current one");
      return out;
    }
    absl::StrAppend(&out, "* XZSTDDICT ", id, " ~{",
                    dictionary_->bytes().size(), "}\r\n",
                    dictionary_->bytes(), "\r\n");
    imap::AppendTaggedStatus(&out, tag, "OK", "", "XZSTDDICT completed");
    return out;
  }
  if (arg.empty()) {
    imap::AppendTaggedStatus(&out, tag, "BAD", "",
                             "XZSTDEVENTS needs a dictionary id or OFF");
    return out;
  }
  if (absl::EqualsIgnoreCase(arg, "OFF")) {
    on_ = false;
    imap::AppendTaggedStatus(&out, tag, "OK", "", "Pushed events come plain");
    return out;
  }
  if (!names_id || asked != id) {
    // A device with an old dictionary learns the current id and fetches it.
    imap::AppendTaggedStatus(&out, tag, "NO", current,
                             "Unknown dictionary; fetch the current one");
    return out;
  }
  on_ = true;
  imap::AppendTaggedStatus(&out, tag, "OK", current,
                           "Pushed events come as zstd frames");
  return out;
}

std::string EventFrames::Frame(std::string events) {
  if (!on_ || events.empty() || !available()) return events;
  std::string frame;
  compressor_->AppendZstdDictFrame(*dictionary_, events, &frame);
  // The shortest untagged response that carries binary: "* Z" and a
  // literal8 (RFC 3516: a frame holds NULs), 13 bytes around a frame of
  // 10-99 bytes. The name is one letter because every pushed burst pays it.
  std::string framed =
      absl::StrCat("* Z ~{", frame.size(), "}\r\n", frame, "\r\n");
  // A lone short event does not shrink (a frame costs ~9 bytes, its IMAP
  // wrapping ~13): it goes plain, which is valid IMAP all the same. Framing
  // never makes the device's traffic larger.
  if (framed.size() >= events.size()) return events;
  return framed;
}

}  // namespace pimap::session
