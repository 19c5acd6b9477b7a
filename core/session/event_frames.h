// Pushed events as zstd dictionary frames (docs/zstd-event-frames.md): the
// commands a P-IMAP device uses to fetch the dictionary and to switch the
// framing on, and the framing of each pushed burst:
//
//   C: d XZSTDDICT                 S: * XZSTDDICT 1208202602 ~{8192}
//                                     <dictionary> )... d OK
//   C: z XZSTDEVENTS 1208202602    S: z OK [XZSTDDICT 1208202602] ...
//   (in IDLE)                      S: * Z ~{27}
//                                     <one zstd frame: "* 12 EXISTS\r\n...">
//
// Per connection, like COMPRESS: a resumed session starts unframed. The
// frame is made with the shard's compressor and the process's read-only
// dictionary; nothing is kept per device but the switch.
#ifndef PIMAP_CORE_SESSION_EVENT_FRAMES_H_
#define PIMAP_CORE_SESSION_EVENT_FRAMES_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "core/imap/command.h"

namespace pimap::http {
class EventDictionary;
class ShardCompressor;
}  // namespace pimap::http

namespace pimap::session {

class EventFrames {
 public:
  // The shard's compressor and its dictionary; null (or no dictionary): the
  // extension is off (not advertised, its commands unknown).
  explicit EventFrames(http::ShardCompressor* compressor);

  bool available() const {
    return dictionary_ != nullptr && compressor_ != nullptr;
  }
  // "XZSTDEVENTS=<id>" for CAPABILITY, or "" when unavailable.
  std::string Capability() const;

  // The complete answer to `command` if it is this extension's (XZSTDDICT,
  // XZSTDEVENTS), else nullopt.
  std::optional<std::string> Execute(const imap::Command& command);

  // A pushed burst as the device asked for it: one "* Z ~{n}" frame,
  // or unchanged (framing off, or a burst the frame would not shrink).
  std::string Frame(std::string events);

  // Whether the device turned framing on (kept across hibernation).
  bool on() const { return on_; }
  void set_on(bool on) { on_ = on && available(); }

 private:
  const http::EventDictionary* dictionary_;
  http::ShardCompressor* compressor_;
  bool on_ = false;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_EVENT_FRAMES_H_
