// The command routing the session drivers share (command_router.cc): each
// device command is either answered by the gateway (assembled and parsed
// first) or relayed verbatim to the store while it streams, literals included.
// Answers keep command order: a local answer (or a BAD) waits behind the
// relayed commands sent before it, and reading the device pauses meanwhile, as
// it does while the store cannot take more bytes. What is relayed and how is
// the derived driver's business (relay_driver.h: a regular session;
// pimap_session_driver.h: a P-IMAP device's APPEND); a router that relays
// nothing answers every command itself (a binding's commands before login).
// XZIP (xzip.h) is the router's too, so that every session has it: the inner
// command is routed like any other while its output is captured. XTERSE
// (terse.h) is the router's for the same reason: while it is on, output()
// rewrites status responses on their way to the binding (or XZIP's capture).
// XSYNC (xsync.h), a command group, runs its steps one by one the way XZIP runs
// its inner command (command_router_xsync.cc).
#ifndef PIMAP_CORE_SESSION_COMMAND_ROUTER_H_
#define PIMAP_CORE_SESSION_COMMAND_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/limits.h"
#include "core/session/device_driver.h"
#include "core/session/session_driver.h"
#include "core/session/terse.h"
#include "core/session/xsync.h"
#include "core/session/xzip.h"

namespace pimap::session {

// The tag of a command line whose head does not parse, if its first token can
// be one (else empty: the BAD goes out untagged).
std::string TagOfBadLine(absl::string_view line);

// Rewrites a synchronising literal header at the end of a relayed line into a
// non-synchronising one: the gateway already answered "+" to the device, so
// the store must not wait for a second go-ahead (LITERAL+, RFC 7888).
std::string UpstreamLine(absl::string_view line,
                         const imap::LiteralHeader* literal);

class CommandRouter : public SessionDriver {
 public:
  // Largest command the gateway assembles itself.
  static constexpr size_t kLocalCommandBytes = 64 * 1024;
  // Stop reading the device once this much waits for the store.
  static constexpr size_t kStoreHighWater = 256 * 1024;
  // Bounded pipelining: past this many relayed commands in flight, read
  // nothing more until the store has answered them all.
  static constexpr size_t kMaxOutstanding = 1000;

  // SessionDriver
  Next OnCommandLine(absl::string_view line,
                     const imap::LiteralHeader* literal) final;
  void OnLiteralData(absl::string_view chunk) final;
  void OnCommandEnd() final;
  void OnFrameError(const imap::FrameError& error) final;
  void OnInputArrived() override {}
  void OnOutputDrained() override {}
  void Detach() final;
  void Release() final;
  // XTERSE: per connection. The binding carries it from the router before
  // login to the session's driver (a login's answer is already terse), and
  // a hibernated device keeps it; a later login starts verbose.
  bool Terse() const override { return terse_ != nullptr; }
  void SetTerse(bool on) override;

 protected:
  CommandRouter(ShardCounters* counters, DeviceOutput* output,
                const imap::ParserLimits& limits);
  ~CommandRouter() override = default;

  // What the first line of a command is, before its head is parsed.
  enum class Opening {
    kCommand,        // parse the head and route the command
    kTaken,          // the driver took the line (the end of IDLE): skip it
    kRelayVerbatim,  // relay it as it is (the end of a relayed IDLE)
  };
  virtual Opening OpenLine(absl::string_view line,
                           const imap::LiteralHeader* literal) {
    return Opening::kCommand;
  }
  // Whether the gateway answers the command `name` itself.
  virtual bool IsLocal(absl::string_view name) const { return true; }
  // Runs a local command, in command order.
  virtual void Execute(const imap::Command& command) = 0;
  // A relayed command starts (`line` is its first line, `literal` the
  // literal that line announces, if any); its bytes follow through SendUp().
  virtual void BeginRelayed(const imap::CommandHead& head,
                            absl::string_view line,
                            const imap::LiteralHeader* literal) {}
  // A relayed command's first line as the store gets it (before the literal
  // rewriting of UpstreamLine).
  virtual std::string RelayedFirstLine(absl::string_view line) {
    return std::string(line);
  }
  // Relayed bytes for the store; returns how many wait to be sent.
  virtual size_t SendUp(absl::string_view bytes) { return 0; }
  // Detach(): let go of the store side.
  virtual void DetachStore() {}
  // The largest non-synchronising literal taken; a larger one gets BAD
  // [TOOBIG] and is skipped (LITERAL-, RFC 7888: 4096 before login).
  virtual uint64_t MaxUnaskedLiteral() const { return UINT64_MAX; }
  // The derived engine holds input itself (its resume goes to the output only
  // when the router holds none).
  virtual bool EngineHoldsInput() const { return false; }
  // XZIP: the shard's services (its compressor, the output bound); null: an
  // XZIP gzips with a compressor of its own and keeps at most 4 MiB.
  virtual const DriverServices* services() const { return nullptr; }
  // XZIP: whether everything Execute() writes goes through output(), so that
  // an XZIP captures it. A router that writes to its binding otherwise
  // answers XZIP with NO [CANNOT].
  virtual bool WritesThroughOutput() const { return false; }
  // XZIP: a store response is partly written to the output. An XZIP waits
  // for its end (PassThroughEnded()) before it captures the output.
  virtual bool PassThroughOpen() const { return false; }

  // The commands every session answers itself (CAPABILITY, the pre-login
  // ones, COMPRESS, the P-IMAP extensions).
  static bool AlwaysLocal(absl::string_view name);
  // Answers what every logged-in session answers alike (CAPABILITY from
  // `store_caps`, COMPRESS, the pre-login commands); false for others.
  // `extra_caps`: the session's own capability tokens (PostAuthCapabilities).
  bool AnswerAfterLogin(const imap::Command& command,
                        const std::vector<std::string>& store_caps, bool pimap,
                        absl::string_view extra_caps = "");

  // The binding's output; while an XZIP's inner command runs, the capture in
  // front of it (null once detached).
  // With XTERSE on, the rewriter in front of either.
  DeviceOutput* output() const {
    DeviceOutput* out =
        xzip_ != nullptr && xzip_->running() && output_ != nullptr ? xzip_.get()
                                                                   : output_;
    if (terse_ == nullptr || out == nullptr) return out;
    terse_->set_next(out);
    return terse_.get();
  }
  // `bytes` (whole responses) as output() would send them: rewritten while
  // terse mode is on. For what is written past output() (event frames).
  std::string TerseText(std::string bytes) const;
  ShardCounters& counters() { return *counters_; }
  void Write(std::string bytes);
  // The relayed command `tag` completed: answers that waited behind the
  // relayed commands go out, and input resumes.
  void CompleteRelayed(absl::string_view tag);
  // The store took every relayed byte so far.
  void StoreDrained();
  // A store response that was no command's completion passed through whole
  // (an XZIP waiting for its end runs; see PassThroughOpen()).
  void PassThroughEnded();
  // Input is held by the router (ordering or store backpressure).
  bool holding() const { return waits_ != 0; }
  // Between commands with nothing relayed, deferred, held or captured.
  bool AtRest() const {
    return mode_ == Mode::kNone && waits_ == 0 && busy_ == 0 &&
           !release_pending_ && outstanding_.empty() && assembler_ == nullptr &&
           deferred_command_ == nullptr && deferred_bad_.empty() &&
           xzip_ == nullptr && xsync_ == nullptr;
  }
  // Relayed commands the store has not completed yet.
  size_t relayed_outstanding() const { return outstanding_.size(); }

  // Keeps this alive while a call from outside (binding, store) runs.
  class Busy {
   public:
    explicit Busy(CommandRouter* r) : r_(r) { ++r_->busy_; }
    ~Busy() {
      if (--r_->busy_ == 0 && r_->release_pending_) delete r_;
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    CommandRouter* r_;
  };

 private:
  enum class Mode : uint8_t { kNone, kLocal, kRelay, kSkip, kXzip };
  // Why input is held (bits of waits_).
  enum Wait : uint8_t {
    kWaitOrdered = 1,  // a local answer waits for relayed commands
    kWaitStore = 2,    // the store's send queue is full
  };

  // Routes the command `line` starts; false when the line has been dealt
  // with entirely (`*next` says what the framer does).
  bool StartCommand(absl::string_view line, const imap::LiteralHeader* literal,
                    Next* next);
  // The rest of the command is ignored.
  Next SkipCommand(const imap::LiteralHeader* literal);
  void RelayLine(absl::string_view line, const imap::LiteralHeader* literal);
  void Relay(absl::string_view bytes);
  void WriteBad(absl::string_view tag, absl::string_view message);
  // Our own answer, in command order (after the relayed commands before it).
  void WriteOrdered(std::string out);
  void Hold(Wait wait);
  void Unhold(Wait wait);

  // XZIP (command_router.cc): its first line; false when it was answered
  // at once (refused) and `*next` says what the framer does.
  bool StartXzip(absl::string_view line, const imap::LiteralHeader* literal,
                 const imap::CommandHead& head, Next* next);
  // The XZIP received whole runs its inner command, in command order.
  void RunXzip();
  // The session lets go of input while the XZIP runs.
  void OnXzipReleased(bool resume);
  // The inner command completed: the XZIP's answer, and input goes on.
  void FinishXzip(bool resume);
  // Whether the XZIP's inner command was relayed and has not completed.
  bool XzipRelayed() const;
  // A local command runs, in command order: XTERSE here, others Execute().
  void Dispatch(const imap::Command& command);
  void RunXterse(const imap::Command& command);
  // XSYNC (command_router_xsync.cc): parses the group and runs its first
  // step; each step runs as an XZIP's inner command, and at its end
  // FinishXsyncStep passes its data on and runs the next or answers.
  void RunXsync(const imap::Command& command);
  void StartXsyncStep();
  void FinishXsyncStep(bool resume);

  ShardCounters* counters_;
  DeviceOutput* output_;  // null once detached
  imap::ParserLimits limits_;
  // The local command being assembled (null between commands).
  std::unique_ptr<imap::CommandAssembler> assembler_;
  Mode mode_ = Mode::kNone;
  bool relay_started_ = false;  // part of the current command went up
  uint8_t waits_ = 0;
  bool release_pending_ = false;
  int busy_ = 0;
  std::string command_tag_;
  // Tags relayed, not yet completed (a vector: a deque costs a 512-byte
  // block per session even when it holds one tag).
  std::vector<std::string> outstanding_;
  // A local command and BADs waiting for the relayed ones (rare: on the heap).
  std::unique_ptr<imap::Command> deferred_command_;
  std::string deferred_bad_;
  // The XZIP being received, waiting for its turn or running (null between
  // XZIPs).
  std::unique_ptr<Xzip> xzip_;
  // XTERSE ON: the rewriter output() puts in front (null: off).
  std::unique_ptr<TerseOutput> terse_;
  // The XSYNC running (null between them).
  std::unique_ptr<XsyncRun> xsync_;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_COMMAND_ROUTER_H_
