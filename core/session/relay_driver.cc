// A regular session's relay (relay_driver.h): the store link's side of it,
// IDLE and LOGOUT end to end, and backpressure from the device to the store.
#include "core/session/relay_driver.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/base/log.h"
#include "core/imap/writer.h"
#include "core/session/capabilities.h"
#include "core/session/provision.h"

namespace pimap::session {

RelayDriver::RelayDriver(const DriverServices& services, DeviceOutput* output,
                         const imap::ParserLimits& limits, std::string user,
                         StoreCredentials credentials, RelayParkConfig park)
    : CommandRouter(services.counters, output, limits),
      services_(services),
      park_config_(park),
      user_(std::move(user)),
      credentials_(std::move(credentials)) {}

RelayDriver::~RelayDriver() {
  *alive_ = false;
  CancelParkTimer();
  DisarmStoreTimer();
  if (keepalive_timer_ != 0) services_.timers->Cancel(keepalive_timer_);
  LeaveParked();
  ReleaseLink(/*reusable=*/false);
}

void RelayDriver::Start(StoreLink* link, absl::string_view login_tag) {
  Busy busy(this);
  link_ = link;
  link_->SetClient(this);
  std::string out;
  imap::AppendTaggedStatus(
      &out, login_tag, "OK",
      absl::StrCat("CAPABILITY ",
                   PostAuthCapabilities(store_capabilities(), false,
                                        output()->OffersCompression(),
                                        ExtraCapabilities())),
      "Logged in");
  Write(std::move(out));
  if (output() != nullptr) output()->LoginDone(true);
}

void RelayDriver::DetachStore() {
  // An XDELIVER whose client left stops here: if the MTA has the message it
  // is sent, but nothing is saved or flagged after (as for a P-IMAP device).
  side_.reset();
  xdeliver_.reset();
  xdeliver_up_tag_.clear();
  CancelParkTimer();
  DisarmStoreTimer();
  LeaveParked();
  ReleaseLink(/*reusable=*/false);
}

// ---- Commands ---------------------------------------------------------------

CommandRouter::Opening RelayDriver::OpenLine(absl::string_view line,
                                             const imap::LiteralHeader*) {
  switch (idle_) {
    case IdleState::kNone:
      return Opening::kCommand;
    case IdleState::kRelayed:
      // The store owns the IDLE: the line that ends it ("DONE", or anything
      // else, which the store answers BAD) goes there verbatim.
      CancelParkTimer();
      StopListening();
      idle_ = IdleState::kNone;
      return Opening::kRelayVerbatim;
    case IdleState::kOwnIdle:
      // Our IDLE on the store: end it; its tagged end answers the client's.
      if (link_ != nullptr) link_->Send("DONE\r\n");
      ArmStoreTimer();
      done_early_ = true;
      HoldInput();
      return Opening::kTaken;
    case IdleState::kEnding:
    case IdleState::kListing:
    case IdleState::kRestoring:
    case IdleState::kParkedStatus:
      // The park (or its STATUS round) finishes, then the IDLE ends at once.
      done_early_ = true;
      HoldInput();
      return Opening::kTaken;
    case IdleState::kParked:
      StartUnpark();
      return Opening::kTaken;
    case IdleState::kBorrowing:
    case IdleState::kResyncing:
      break;  // input is held: not reached
  }
  return Opening::kTaken;
}

void RelayDriver::BeginRelayed(const imap::CommandHead& head,
                               absl::string_view line,
                               const imap::LiteralHeader* literal) {
  client_.OnCommand(head, line, literal != nullptr);
  if (head.name == "IDLE") {
    idle_tag_ = head.tag;
    idle_ = IdleState::kRelayed;
    idle_continued_ = false;
    watch_wait_since_ms_ = -1;
  }
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
  if (AnswerAfterLogin(command, store_capabilities(), /*pimap=*/false,
                       ExtraCapabilities())) {
    return;
  }
  // XDELIVER: allowed in a regular session too (protocol.md §2.2, R01 §3).
  if (command.name == "XDELIVER") {
    Xdeliver(command);
    return;
  }
  if (command.name == "XPROVISION") {
    // Allowed in a regular session too (protocol.md §2.2, R01 §3).
    ProvisionOffer offer;
    if (const OutbandDispatcher* outband = services_.registry != nullptr
                                               ? services_.registry->outband()
                                               : nullptr;
        outband != nullptr) {
      offer.channels = outband->Channels();
      offer.vapid_public_key = outband->vapid_public_key();
    }
    absl::StatusOr<std::string> out =
        ProvisionResponse(command, /*device=*/"", offer,
                          output() != nullptr && output()->Secure());
    if (!out.ok()) {
      // Local commands run with nothing relayed outstanding: in order.
      std::string bad;
      imap::AppendTaggedStatus(&bad, command.tag, "BAD", "",
                               out.status().message());
      Write(std::move(bad));
      return;
    }
    Write(*std::move(out));
    return;
  }
  // Only the P-IMAP session's own commands are left (IsLocal).
  std::string out;
  imap::AppendTaggedStatus(&out, command.tag, "NO", "CANNOT",
                           "P-IMAP session required");
  Write(std::move(out));
}

// ---- Store side -------------------------------------------------------------

void RelayDriver::OnStoreBytes(absl::string_view bytes) {
  Busy busy(this);
  if (output() == nullptr) return;
  if (collecting()) {
    if (collected_.size() + bytes.size() > CollectLimit()) {
      collect_overflow_ = true;
    } else {
      collected_.append(bytes.data(), bytes.size());
    }
    return;
  }
  if (head_open_) {
    // The response's first line, for what the client learns from it. Data
    // about messages ("* 3 FETCH", "* 4 EXISTS") is not kept: the bulk of a
    // relay's bytes skips this after a few characters.
    const size_t eol = bytes.find('\n');
    const absl::string_view part = bytes.substr(0, eol);
    head_.append(
        part.data(),
        std::min(part.size(),
                 RelayClientState::kMaxLine -
                     std::min(head_.size(), RelayClientState::kMaxLine)));
    if (eol != absl::string_view::npos ||
        (head_.size() >= 3 && head_[0] == '*' &&
         absl::ascii_isdigit(head_[2]))) {
      head_open_ = false;
    }
  }
  // The output holds our own answers back until the response is whole, so
  // bytes never interleave inside one response.
  passing_ = true;
  const bool below = output()->WritePassThrough(bytes);
  if (!below && !store_paused_ && link_ != nullptr) {
    // The device reads slower than the store answers: stop reading the store
    // until the device's output drains, so memory stays bounded.
    store_paused_ = true;
    link_->SetReading(false);
  }
}

size_t RelayDriver::CollectLimit() const {
  // XDELIVER's original comes whole (bounded like the device's message).
  if (xdeliver_ != nullptr && services_.registry != nullptr) {
    return std::max(kMaxCollectedBytes,
                    services_.registry->config().max_xdeliver_bytes + 4096);
  }
  return kMaxCollectedBytes;
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
  if (collecting()) {
    OnOwnResponse(completed_tag);
    return;
  }
  passing_ = false;
  output()->EndPassThrough();
  if (!head_.empty()) {
    // The store confirmed the IDLE ("+ idling"): the client has seen it.
    // --park-after counts from here: a park due before it (a park time
    // shorter than the store's round trip) would wait a whole retry.
    if (idle_ == IdleState::kRelayed && head_[0] == '+' && !idle_continued_) {
      idle_continued_ = true;
      SchedulePark();
    }
    client_.OnResponseLine(absl::StripSuffix(head_, "\r"));
    head_.clear();
  }
  head_open_ = true;
  if (output() == nullptr) return;
  if (completed_tag.empty()) {
    PassThroughEnded();  // an XZIP may have waited for this response's end
    return;
  }
  if (completed_tag == idle_tag_) {
    idle_tag_.clear();
    CancelParkTimer();
    StopListening();
    idle_ = IdleState::kNone;
  }
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
  if (lent_ != nullptr) {
    services_.pool->Lost(lent_);
    lent_ = nullptr;
  }
  if (output() == nullptr) return;
  if (!logout_tag_.empty()) {
    output()->Close();
    return;
  }
  PIMAP_LOG(INFO).Conn(credentials_.origin).User(user_).Event("store.lost")
      << "store connection lost: " << reason.message();
  // No EndPassThrough: answers held back behind a response the store cut
  // short are dropped, and the goodbye ends the connection (a park or an
  // unpark in progress ends with it).
  Bye("Connection to the message store lost");
}

}  // namespace pimap::session
