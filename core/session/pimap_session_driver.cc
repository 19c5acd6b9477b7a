// A P-IMAP device's commands into its DeviceDriver (pimap_session_driver.h),
// and the engine's output on to the binding.
#include "core/session/pimap_session_driver.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::session {

PimapSessionDriver::PimapSessionDriver(DriverServices services,
                                       DeviceOutput* output,
                                       const imap::ParserLimits& limits,
                                       std::string user, std::string device)
    : CommandRouter(services.counters, output, limits),
      engine_(new DeviceDriver(services, this, std::move(user),
                               std::move(device))),
      event_frames_(services.compressor) {}

PimapSessionDriver::PimapSessionDriver(DriverServices services,
                                       DeviceOutput* output,
                                       const imap::ParserLimits& limits,
                                       DeviceDriver* engine)
    : CommandRouter(services.counters, output, limits),
      engine_(engine),
      event_frames_(services.compressor) {}

PimapSessionDriver::~PimapSessionDriver() { engine_->Release(); }

PimapSessionDriver* PimapSessionDriver::Wake(DriverServices services,
                                             DeviceOutput* output,
                                             const imap::ParserLimits& limits,
                                             std::string user,
                                             const HibernatedIdle& state,
                                             DeviceLink* keeper) {
  auto* driver = new PimapSessionDriver(services, output, limits, nullptr);
  driver->engine_ =
      new DeviceDriver(services, driver, std::move(user), state, keeper);
  driver->event_frames_.set_on(state.event_frames);
  driver->SetTerse(state.terse);
  return driver;
}

bool PimapSessionDriver::Hibernatable() const {
  return AtRest() && !engine_running_ && output() != nullptr &&
         engine_->Hibernatable();
}

HibernatedIdle PimapSessionDriver::Hibernate(DeviceLink* keeper) {
  HibernatedIdle state = engine_->Hibernate(keeper);
  state.event_frames = event_frames_.on();
  state.terse = Terse();
  Detach();
  return state;
}

void PimapSessionDriver::Start(StoreLink* link, std::string login_tag,
                               const std::string& password,
                               const ClientAddress& client) {
  Busy busy(this);
  engine_->Start(link, std::move(login_tag), password, client);
}

void PimapSessionDriver::OnOutputDrained() {
  Busy busy(this);
  engine_->OnOutputDrained();
}

// ---- Commands ---------------------------------------------------------------

CommandRouter::Opening PimapSessionDriver::OpenLine(
    absl::string_view, const imap::LiteralHeader*) {
  if (!engine_->OnCommandLine()) return Opening::kCommand;
  // The line that ended IDLE: the engine has it and answers when the store
  // (or its journal) has; nothing more is read meanwhile.
  engine_running_ = true;
  if (output() != nullptr) output()->SetCommandRunning(true, false);
  return Opening::kTaken;
}

void PimapSessionDriver::BeginRelayed(const imap::CommandHead& head,
                                      absl::string_view,
                                      const imap::LiteralHeader*) {
  engine_->BeginRelayed(head.tag);
}

size_t PimapSessionDriver::SendUp(absl::string_view bytes) {
  engine_->RelayBytes(bytes);
  return engine_->RelayPending();
}

void PimapSessionDriver::Execute(const imap::Command& command) {
  const std::string extra =
      command.name == "CAPABILITY"
          ? DeviceDriver::ExtraCapabilities(engine_->services())
          : std::string();
  if (AnswerAfterLogin(command, engine_->store_capabilities(),
                       /*pimap=*/true, extra)) {
    return;
  }
  if (std::optional<std::string> answer = event_frames_.Execute(command)) {
    Write(*std::move(answer));
    return;
  }
  engine_->Execute(command);
}

// ---- The engine's output ----------------------------------------------------

void PimapSessionDriver::WriteResponse(std::string bytes) {
  Busy busy(this);
  Write(std::move(bytes));
}

void PimapSessionDriver::WriteEvents(std::string bytes) {
  Busy busy(this);
  // Rewritten before framing: a frame passes the terse output untouched.
  Write(event_frames_.Frame(TerseText(std::move(bytes))));
}

bool PimapSessionDriver::WritePassThrough(absl::string_view bytes) {
  Busy busy(this);
  return output() == nullptr || output()->WritePassThrough(bytes);
}

void PimapSessionDriver::EndPassThrough() {
  Busy busy(this);
  if (output() != nullptr) output()->EndPassThrough();
}

void PimapSessionDriver::SetCommandRunning(bool running, bool resume) {
  Busy busy(this);
  engine_running_ = running;
  // While the router holds input (ordering, store backpressure) the switch
  // stays on; the router turns it off when it lets go.
  if (output() == nullptr || (!running && holding())) return;
  output()->SetCommandRunning(running, resume);
}

void PimapSessionDriver::LoginDone(bool ok) {
  Busy busy(this);
  if (output() != nullptr) output()->LoginDone(ok);
}

void PimapSessionDriver::RelayedDone(absl::string_view tag) {
  Busy busy(this);
  CompleteRelayed(tag);
}

void PimapSessionDriver::RelayDrained() {
  Busy busy(this);
  StoreDrained();
}

void PimapSessionDriver::EndSession(absl::string_view reason) {
  Busy busy(this);
  if (output() != nullptr) output()->EndSession(reason);
}

void PimapSessionDriver::Close() {
  Busy busy(this);
  if (output() != nullptr) output()->Close();
}

}  // namespace pimap::session
