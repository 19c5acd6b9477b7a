// The SessionDriver of a P-IMAP device (user#device): routes the device's
// commands into its DeviceDriver (which renders every answer from the device's
// view) and streams APPEND through it verbatim, in command order. It sits
// between the DeviceDriver and the binding's DeviceOutput to take what is
// routing's (relayed completions, the store draining) and to share the one
// input switch with the engine. Owns the DeviceDriver.
#ifndef PIMAP_CORE_SESSION_PIMAP_SESSION_DRIVER_H_
#define PIMAP_CORE_SESSION_PIMAP_SESSION_DRIVER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "core/imap/command.h"
#include "core/imap/limits.h"
#include "core/session/command_router.h"
#include "core/session/device_driver.h"
#include "core/session/event_frames.h"
#include "core/session/store_link.h"

namespace pimap::session {

class PimapSessionDriver final : public CommandRouter, private DeviceOutput {
 public:
  PimapSessionDriver(DriverServices services, DeviceOutput* output,
                     const imap::ParserLimits& limits, std::string user,
                     std::string device);

  // DeviceDriver::Start: attaches the session and answers the login, then
  // LoginDone(ok); after LoginDone(false) the binding releases this driver.
  void Start(StoreLink* link, std::string login_tag,
             const std::string& password, const ClientAddress& client = {});

  // Rebuilt from hibernation (hibernation.h) in the gateway's own IDLE; the
  // session's events come to the new engine instead of `keeper`.
  static PimapSessionDriver* Wake(DriverServices services,
                                  DeviceOutput* output,
                                  const imap::ParserLimits& limits,
                                  std::string user,
                                  const HibernatedIdle& state,
                                  DeviceLink* keeper);
  // What the session's events reach (the engine).
  DeviceLink* device_link() { return engine_->device_link(); }

  // SessionDriver
  void OnInputArrived() override { engine_->OnInputArrived(); }
  void OnOutputDrained() override;
  bool Hibernatable() const override;
  HibernatedIdle Hibernate(DeviceLink* keeper) override;

 private:
  ~PimapSessionDriver() override;

  // CommandRouter
  Opening OpenLine(absl::string_view line,
                   const imap::LiteralHeader* literal) override;
  bool IsLocal(absl::string_view name) const override {
    // The engine renders MSNs itself: it handles every command but APPEND,
    // whose (large) literal streams through untouched.
    return AlwaysLocal(name) || !DeviceDriver::RelaysVerbatim(name);
  }
  void Execute(const imap::Command& command) override;
  void BeginRelayed(const imap::CommandHead& head, absl::string_view line,
                    const imap::LiteralHeader* literal) override;
  size_t SendUp(absl::string_view bytes) override;
  std::string RelayedFirstLine(absl::string_view line) override {
    return engine_->RelayedFirstLine(line);
  }
  void DetachStore() override { engine_->Detach(); }
  bool EngineHoldsInput() const override { return engine_running_; }
  const DriverServices* services() const override {
    return &engine_->services();
  }
  // The engine writes through this driver, and so through output().
  bool WritesThroughOutput() const override { return true; }

  // DeviceOutput: the engine's, passed on to the binding's.
  void WriteResponse(std::string bytes) override;
  void WriteEvents(std::string bytes) override;
  bool WritePassThrough(absl::string_view bytes) override;
  void EndPassThrough() override;
  void SetCommandRunning(bool running, bool resume) override;
  void LoginDone(bool ok) override;
  void RelayedDone(absl::string_view tag) override;
  void RelayDrained() override;
  void EndSession(absl::string_view reason) override;
  void Close() override;
  bool OffersCompression() const override {
    return output() != nullptr && output()->OffersCompression();
  }
  bool Secure() const override {
    return output() != nullptr && output()->Secure();
  }
  absl::string_view Binding() const override {
    return output() != nullptr ? output()->Binding() : "";
  }

  PimapSessionDriver(DriverServices services, DeviceOutput* output,
                     const imap::ParserLimits& limits, DeviceDriver* engine);

  DeviceDriver* engine_;
  EventFrames event_frames_;
  bool engine_running_ = false;  // the engine holds input (a command runs)
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_PIMAP_SESSION_DRIVER_H_
