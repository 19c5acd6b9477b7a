// XZIP, the P-IMAP draft's compressed command wrapper:
//
//   C: A001 XZIP A002 FETCH 1:* (UID FLAGS)
//   S: * {N}
//   S: <N octets: gzip of A002's whole response stream, "A002 OK ..." included>
//   S: A001 OK XZIP completed
//
// CommandRouter (command_router.cc) runs the inner command exactly as it runs
// unwrapped; this file owns what is XZIP's own: which commands may be
// wrapped, where the inner command starts, the inner command kept whole until
// it may run, and the capture: a DeviceOutput put in front of the binding's
// while the inner command runs, which keeps the session's output (bounded),
// finds the inner command's tagged completion in it, and passes the control
// calls through. It lives on the heap only from an XZIP's first line to its
// answer: an idle session holds one null pointer of it.
#ifndef PIMAP_CORE_SESSION_XZIP_H_
#define PIMAP_CORE_SESSION_XZIP_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/framer.h"
#include "core/session/device_driver.h"

namespace pimap::http {
class ShardCompressor;
}

namespace pimap::session {

// Whether XZIP may wrap the command `name` (upper-cased). Not those that need
// a continuation ("+": IDLE, AUTHENTICATE), nor those that change the
// connection itself (STARTTLS, COMPRESS, LOGIN, AUTHENTICATE, LOGOUT: the
// session's driver or transport changes under them), nor XZIP.
bool XzipWraps(absl::string_view name);

// Where the inner command of "tag XZIP inner-tag inner-command" starts, and
// its tag and name. InvalidArgument when no inner tag and command follow.
struct XzipInner {
  size_t offset = 0;
  std::string tag;
  std::string name;  // upper-cased
};
absl::StatusOr<XzipInner> ParseXzipLine(absl::string_view line,
                                        absl::string_view tag);

// gzip (RFC 1952) of `bytes`: one member, made with the shard's compressor
// through http::ResponseEncoder; with `compressor` null, with a compressor of
// its own for this call (freed before it returns).
std::string XzipGzip(absl::string_view bytes,
                     http::ShardCompressor* compressor);

// One XZIP command, from its first line to its answer.
class Xzip final : public DeviceOutput, private imap::Framer::Visitor {
 public:
  // Largest inner command kept (an APPEND of a bigger message goes unwrapped).
  static constexpr size_t kMaxCommandBytes = 1 << 20;
  // The capture keeps at least this much output (else the output bound).
  static constexpr size_t kMinCaptureBytes = 4 << 20;

  // The inner command as the binding's framer delivered it.
  struct Piece {
    std::string line;
    bool has_literal = false;
    imap::LiteralHeader literal;  // offsets relative to `line`
    std::string data;             // the literal's bytes
  };

  // `inner` from ParseXzipLine of the XZIP's first line.
  Xzip(std::string outer_tag, XzipInner inner);
  ~Xzip() override = default;
  Xzip(const Xzip&) = delete;
  Xzip& operator=(const Xzip&) = delete;

  const std::string& outer_tag() const { return outer_tag_; }
  const std::string& inner_tag() const { return inner_tag_; }

  // ---- Before it runs: the inner command is kept whole. False once it is
  // larger than kMaxCommandBytes (nothing more is kept).
  bool AddLine(absl::string_view line, const imap::LiteralHeader* literal);
  bool AddLiteralData(absl::string_view chunk);
  std::vector<Piece> TakePieces() { return std::move(pieces_); }

  // ---- While it runs: the capture in front of `real` (the binding's output;
  // no response is partly written to it). At most `max_bytes` of output are
  // kept; past that nothing is (overflowed). `on_release(resume)`: the
  // session lets go of input (SetCommandRunning false); the call may free
  // this object.
  void Start(DeviceOutput* real, size_t max_bytes,
             std::function<void(bool resume)> on_release);
  bool running() const { return real_ != nullptr; }
  // The inner command's tagged completion has been captured.
  bool inner_done() const { return inner_done_; }
  bool overflowed() const { return overflowed_; }
  // The binding's input was stopped during the XZIP (by the session through
  // the capture, or by the router): it is to be let go at the answer.
  bool held_input() const { return held_input_; }
  void set_held_input() { held_input_ = true; }
  // The router is replaying the inner command (its end is looked at after).
  bool replaying() const { return replaying_; }
  void set_replaying(bool on) { replaying_ = on; }
  // Everything captured, in order (the running response's held-back answers
  // included).
  std::string TakeCaptured();

  // DeviceOutput
  void WriteResponse(std::string bytes) override;
  bool WritePassThrough(absl::string_view bytes) override;
  void EndPassThrough() override;
  void SetCommandRunning(bool running, bool resume) override;
  void LoginDone(bool ok) override { real_->LoginDone(ok); }
  void RelayedDone(absl::string_view tag) override { real_->RelayedDone(tag); }
  void RelayDrained() override { real_->RelayDrained(); }
  bool OffersCompression() const override { return real_->OffersCompression(); }
  absl::string_view Binding() const override { return real_->Binding(); }
  bool Secure() const override { return real_->Secure(); }
  absl::Status StartCompression(std::string ok) override {
    return absl::UnavailableError("COMPRESS cannot run inside XZIP");
  }
  void EndSession(absl::string_view reason) override;
  void Close() override;

 private:
  // imap::Framer::Visitor: the captured responses, for the inner tag.
  bool OnLine(absl::string_view line,
              const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view) override { return true; }
  bool OnEnd() override;
  bool OnError(const imap::FrameError&) override;

  void Capture(absl::string_view bytes);
  // The session ends: what was captured is dropped, nothing more is kept.
  void Abandon();

  std::string outer_tag_;
  std::string inner_tag_;
  size_t inner_offset_;
  std::vector<Piece> pieces_;
  size_t command_bytes_ = 0;

  DeviceOutput* real_ = nullptr;
  size_t max_bytes_ = 0;
  std::function<void(bool)> on_release_;
  imap::Framer framer_;  // over the captured bytes
  std::string captured_;
  std::string held_;          // own answers while a response passes through
  std::string response_tag_;  // of the response being framed
  bool response_start_ = true;
  bool passing_ = false;  // a captured response passes through
  bool inner_done_ = false;
  bool overflowed_ = false;
  bool abandoned_ = false;
  bool held_input_ = false;
  bool replaying_ = false;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_XZIP_H_
