// The binding's side of a SessionDriver (core/session/session_driver.h), as
// bindings/tcp plays it, for tests of the session drivers: an imap::Framer
// over the device's bytes, input held while the driver says a command runs,
// the driver's own answers held back while a store response is partly
// written, and on EndSession/Close a goodbye and the driver detached.
#ifndef PIMAP_TESTS_CORE_SESSION_FAKE_BINDING_H_
#define PIMAP_TESTS_CORE_SESSION_FAKE_BINDING_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/imap/framer.h"
#include "core/imap/limits.h"
#include "core/session/device_driver.h"
#include "core/session/session_driver.h"

namespace pimap::session::testing {

// Relayed completions and store drains are the drivers' own business: a call
// of RelayedDone/RelayDrained is recorded in `unexpected`.
// Whether the binding offers COMPRESS (the TCP binding does).
enum class CompressionSupport { kNone, kOffered, kActive };

class FakeBinding final : public DeviceOutput, private imap::Framer::Visitor {
 public:
  FakeBinding()
      : framer_(imap::Framer::Mode::kCommands, imap::ParserLimits{}) {}
  ~FakeBinding() override {
    if (driver_ != nullptr) driver_->Release();
  }

  void Attach(SessionDriver* driver) { driver_ = driver; }
  // The device sends `bytes`.
  void Type(absl::string_view bytes) {
    pending_.append(bytes.data(), bytes.size());
    if (driver_ != nullptr) driver_->OnInputArrived();
    Pump();
  }
  // The device read its output (below the high-water mark again).
  void Drain() {
    above_high_water = false;
    if (driver_ != nullptr) driver_->OnOutputDrained();
  }
  // The binding releases the driver (the connection object is freed).
  void ReleaseDriver() {
    SessionDriver* driver = std::exchange(driver_, nullptr);
    if (driver != nullptr) driver->Release();
  }

  // DeviceOutput
  void WriteResponse(std::string bytes) override {
    if (closed) return;
    if (mid_response_) {
      held_ += bytes;
      return;
    }
    transcript_ += bytes;
  }
  bool WritePassThrough(absl::string_view bytes) override {
    if (closed) return true;
    mid_response_ = true;
    transcript_.append(bytes.data(), bytes.size());
    return !above_high_water;
  }
  void EndPassThrough() override {
    mid_response_ = false;
    transcript_ += std::exchange(held_, std::string());
  }
  void SetCommandRunning(bool running, bool resume) override {
    running_calls.emplace_back(running, resume);
    input_held = running;
    if (!running && resume && !in_feed_) Pump();
  }
  void LoginDone(bool ok) override { login_done.push_back(ok); }
  void RelayedDone(absl::string_view tag) override {
    unexpected.push_back(absl::StrCat("RelayedDone ", tag));
  }
  void RelayDrained() override { unexpected.push_back("RelayDrained"); }
  void EndSession(absl::string_view reason) override {
    end_session.emplace_back(reason);
    if (closed) return;
    mid_response_ = false;  // the goodbye goes out now
    held_.clear();
    transcript_ += absl::StrCat("* BYE ", reason, "\r\n");
    Shut();
  }
  void Close() override {
    ++closes;
    Shut();
  }
  absl::Status StartCompression(std::string ok) override {
    switch (compression) {
      case CompressionSupport::kNone:
        return DeviceOutput::StartCompression(std::move(ok));
      case CompressionSupport::kActive:
        return absl::FailedPreconditionError("active");
      case CompressionSupport::kOffered:
        break;
    }
    compress_ok = ok;
    WriteResponse(std::move(ok));
    compression = CompressionSupport::kActive;
    return absl::OkStatus();
  }

  // What the device got since the last call.
  std::string Take() { return std::exchange(transcript_, std::string()); }
  const std::string& pending_input() const { return pending_; }

  bool above_high_water = false;
  CompressionSupport compression = CompressionSupport::kNone;
  std::string compress_ok;  // the OK StartCompression() was given
  // Closing frees the connection at once, which releases the driver from
  // inside its own call (bindings/tcp does so when nothing of it is busy).
  bool release_on_close = false;
  bool input_held = false;
  bool closed = false;
  int closes = 0;
  std::vector<std::pair<bool, bool>> running_calls;
  std::vector<bool> login_done;
  std::vector<std::string> end_session;
  std::vector<std::string> unexpected;  // calls a relay never makes

 private:
  void Shut() {
    closed = true;
    if (driver_ != nullptr) driver_->Detach();
    if (release_on_close) ReleaseDriver();
  }
  void Pump() {
    while (!input_held && !closed && driver_ != nullptr) {
      in_feed_ = true;
      const size_t used = framer_.Feed(pending_, *this);
      in_feed_ = false;
      pending_.erase(0, used);
      if (used == 0 || pending_.empty()) break;
    }
  }
  bool feeding() const { return !input_held && !closed; }

  // imap::Framer::Visitor
  bool OnLine(absl::string_view line,
              const imap::LiteralHeader* literal) override {
    if (driver_->OnCommandLine(line, literal) ==
        SessionDriver::Next::kRejectLiteral) {
      framer_.RejectLiteral();
    }
    return feeding();
  }
  bool OnLiteralData(absl::string_view chunk) override {
    driver_->OnLiteralData(chunk);
    return feeding();
  }
  bool OnEnd() override {
    driver_->OnCommandEnd();
    return feeding();
  }
  bool OnError(const imap::FrameError& error) override {
    driver_->OnFrameError(error);
    if (error.fatal) EndSession("Input cannot be resynchronised");
    return feeding();
  }

  imap::Framer framer_;
  SessionDriver* driver_ = nullptr;
  std::string pending_;
  std::string transcript_;
  std::string held_;
  bool mid_response_ = false;
  bool in_feed_ = false;
};

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_FAKE_BINDING_H_
