// A regular session's relay (relay_driver.h): the store link's side of it,
// IDLE and LOGOUT end to end, and backpressure from the device to the store.
#include "core/session/relay_driver.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/session/capabilities.h"

namespace pimap::session {

RelayDriver::RelayDriver(ShardCounters* counters, DeviceOutput* output,
                         const imap::ParserLimits& limits, std::string user)
    : CommandRouter(counters, output, limits), user_(std::move(user)) {}

RelayDriver::~RelayDriver() {
  if (link_ != nullptr) link_->Close();
}

void RelayDriver::Start(StoreLink* link, absl::string_view login_tag) {
  Busy busy(this);
  link_ = link;
  link_->SetClient(this);
  std::string out;
  imap::AppendTaggedStatus(
      &out, login_tag, "OK",
      absl::StrCat("CAPABILITY ", PostAuthCapabilities(store_capabilities())),
      "Logged in");
  Write(std::move(out));
  if (output() != nullptr) output()->LoginDone(true);
}

void RelayDriver::DetachStore() {
  if (link_ != nullptr) {
    link_->Close();
    link_ = nullptr;
  }
}

// ---- Commands ---------------------------------------------------------------

CommandRouter::Opening RelayDriver::OpenLine(absl::string_view,
                                             const imap::LiteralHeader*) {
  if (idle_tag_.empty()) return Opening::kCommand;
  idle_tag_.clear();
  return Opening::kRelayVerbatim;
}

void RelayDriver::BeginRelayed(const imap::CommandHead& head) {
  if (head.name == "IDLE") idle_tag_ = head.tag;
  if (head.name == "LOGOUT") logout_tag_ = head.tag;
}

size_t RelayDriver::SendUp(absl::string_view bytes) {
  if (link_ == nullptr) return 0;
  link_->Send(bytes);
  return link_->PendingOutput();
}

const std::vector<std::string>& RelayDriver::store_capabilities() const {
  static const std::vector<std::string> kNone;
  return link_ != nullptr ? link_->capabilities() : kNone;
}

void RelayDriver::Execute(const imap::Command& command) {
  if (AnswerAfterLogin(command, store_capabilities(), /*pimap=*/false)) return;
  // Only the P-IMAP extension commands are left (IsLocal).
  std::string out;
  imap::AppendTaggedStatus(&out, command.tag, "NO", "CANNOT",
                           "P-IMAP session required");
  Write(std::move(out));
}

// ---- Store side -------------------------------------------------------------

void RelayDriver::OnStoreBytes(absl::string_view bytes) {
  Busy busy(this);
  if (output() == nullptr) return;
  // The output holds our own answers back until the response is whole, so
  // bytes never interleave inside one response.
  const bool below = output()->WritePassThrough(bytes);
  if (!below && !store_paused_ && link_ != nullptr) {
    // The device reads slower than the store answers: stop reading the store
    // until the device's output drains, so memory stays bounded.
    store_paused_ = true;
    link_->SetReading(false);
  }
}

void RelayDriver::OnOutputDrained() {
  Busy busy(this);
  if (store_paused_ && link_ != nullptr) {
    store_paused_ = false;
    link_->SetReading(true);
  }
}

void RelayDriver::OnStoreResponseEnd(absl::string_view completed_tag) {
  Busy busy(this);
  if (output() == nullptr) return;
  output()->EndPassThrough();
  if (completed_tag.empty() || output() == nullptr) return;
  if (completed_tag == idle_tag_) idle_tag_.clear();
  if (!logout_tag_.empty() && completed_tag == logout_tag_) {
    output()->Close();
    return;
  }
  CompleteRelayed(completed_tag);
}

void RelayDriver::OnStoreDrained() {
  Busy busy(this);
  StoreDrained();
}

void RelayDriver::OnStoreClosed(absl::Status reason) {
  Busy busy(this);
  link_ = nullptr;
  if (output() == nullptr) return;
  if (!logout_tag_.empty()) {
    output()->Close();
    return;
  }
  PIMAP_LOG(INFO) << "store connection lost for user="
                  << imap::QuoteForLog(user_) << ": " << reason.message();
  // No EndPassThrough: answers held back behind a response the store cut
  // short are dropped, and the goodbye ends the connection.
  output()->EndSession("Connection to the message store lost");
}

}  // namespace pimap::session
