// The session engine of a regular (relayed) session: a device that logged in
// without "#device" gets its own store connection, and every command but the
// few the gateway answers (CAPABILITY, COMPRESS, the pre-login and P-IMAP
// ones) goes to the store verbatim, literals streamed both ways and IDLE end to
// end. This class owns what only such a relay needs: the store link, the IDLE
// and LOGOUT in flight and pausing the store while the device reads slowly.
// XDELIVER (relay_driver_xdeliver.cc) is the gateway's own command here too.
// Ordering and input holding are CommandRouter's; it knows no socket, no TLS
// and no framing, like DeviceDriver.
//
// Parking (relay_driver_park.cc): a client that sits in IDLE for
// `park_after_ms` with a mailbox selected gives its link back to the pool;
// the gateway answers its IDLE from the user's store events (ParkedMailbox)
// and, at DONE, resynchronises a pooled link to what the client knows before
// relaying again. RelayClientState says when a session can be parked.
#ifndef PIMAP_CORE_SESSION_RELAY_DRIVER_H_
#define PIMAP_CORE_SESSION_RELAY_DRIVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/imap/command.h"
#include "core/imap/limits.h"
#include "core/session/command_router.h"
#include "core/session/device_driver.h"
#include "core/session/parked_mailbox.h"
#include "core/session/parked_notify.h"
#include "core/session/relay_client_state.h"
#include "core/session/session_registry.h"
#include "core/session/side_commands.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"
#include "core/session/xdeliver_run.h"

namespace pimap::session {

class RelayDriver final : public CommandRouter,
                          private StoreLinkClient,
                          private ParkedListener {
 public:
  // Largest response collected whole while the gateway talks to the store
  // for itself (parking, unparking); a bigger one abandons the park.
  static constexpr size_t kMaxCollectedBytes = 4 * 1024 * 1024;
  // Events buffered while the park's listing runs.
  static constexpr size_t kMaxEarlyEvents = 4096;
  // Listing rounds before a park attempt gives up (the mailbox keeps moving).
  static constexpr int kMaxListRounds = 3;

  // `user` is the store user (logs, events). Parking needs services.registry,
  // .timers and .pool, `credentials` to borrow links with (the user's own, or
  // a master user's) and park.park_after_ms > 0; without them it never parks.
  RelayDriver(const DriverServices& services, DeviceOutput* output,
              const imap::ParserLimits& limits, std::string user,
              StoreCredentials credentials, RelayParkConfig park);

  // Takes `link` (logged in as the user) and answers the login tagged
  // `login_tag` with the capabilities after login, then LoginDone(true).
  void Start(StoreLink* link, absl::string_view login_tag);

  // SessionDriver
  void OnOutputDrained() override;

  bool parked() const { return idle_ == IdleState::kParked; }
  // Messages in the parked client's view (0 when not parked).
  size_t parked_messages() const {
    return parked_.has_value() ? parked_->view().size() : 0;
  }

 private:
  // Where the client's IDLE stands.
  enum class IdleState : uint8_t {
    kNone,     // no IDLE
    kRelayed,  // the client's IDLE runs on the store under its tag
    kEnding,   // parking: DONE sent, the IDLE's end is awaited
    kListing,  // parking: our UID SEARCH lists the client's MSN map
    kOwnIdle,  // parking gave up: our IDLE runs on the store for the client
    kParked,   // no link: the gateway answers the IDLE from events
    kParkedStatus,  // parked; a pooled link asks STATUS for its NOTIFY
    kRestoring,     // a park undone: the client's NOTIFY is set again, then
                    // the IDLE ends (done_early_) or our IDLE runs
    kBorrowing,     // unparking: waiting for a pooled link
    kResyncing,     // unparking: the resync commands run on the link
  };

  ~RelayDriver() override;

  // CommandRouter
  Opening OpenLine(absl::string_view line,
                   const imap::LiteralHeader* literal) override;
  bool IsLocal(absl::string_view name) const override {
    return AlwaysLocal(name);
  }
  void Execute(const imap::Command& command) override;
  void BeginRelayed(const imap::CommandHead& head, absl::string_view line,
                    const imap::LiteralHeader* literal) override;
  size_t SendUp(absl::string_view bytes) override;
  void DetachStore() override;
  bool EngineHoldsInput() const override { return engine_holds_; }
  const DriverServices* services() const override { return &services_; }
  bool WritesThroughOutput() const override { return true; }
  bool PassThroughOpen() const override { return passing_; }
  const std::vector<std::string>& store_capabilities() const;

  // StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override;
  void OnStoreDrained() override;
  void OnStoreClosed(absl::Status reason) override;

  // ParkedListener
  void OnParkedEvents(const std::vector<StoreEvent>& events) override;

  // ---- relay_driver_xdeliver.cc: XDELIVER run by the gateway (R01 §3)
  MailSubmitter* submitter() const;
  // The session's own capability tokens (PostAuthCapabilities' extra).
  std::string ExtraCapabilities() const;
  void Xdeliver(const imap::Command& command);
  // Carries out the run's next step: a command on the link, the
  // submission, or the tagged answer.
  void AdvanceXdeliver();
  // kFetch/kFlag of an original in another mailbox: on a pooled link, the
  // client's own staying in its mailbox.
  void RunElsewhere();
  // A whole response while our XDELIVER command runs on the link.
  void OnXdeliverResponse(absl::string_view completed_tag);
  // How much one collected response may hold.
  size_t CollectLimit() const;

  // ---- relay_driver_park.cc
  bool parking_enabled() const;
  // The gateway talks to the store for itself: responses are collected whole.
  bool collecting() const;
  void SchedulePark();
  void CancelParkTimer();
  void StartPark();
  void OnOwnResponse(absl::string_view completed_tag);
  void OnParkResponse(const imap::Response& r, absl::string_view completed_tag);
  void SendList();
  void FinishListing();
  // Parking did not work out: the store runs our IDLE for the client.
  void GiveUpPark(absl::string_view why);
  // Parking is off for this IDLE: an IDLE of ours on the store serves it.
  void StartOwnIdle();
  void Park();
  void ScheduleKeepalive();
  void StartUnpark();
  void OnLinkLent(absl::StatusOr<PooledLink*> lent);
  // Borrows a link of the client's profile; `then` gets it (or the error),
  // unless the client left meanwhile.
  void BorrowForClient(void (RelayDriver::*then)(absl::StatusOr<PooledLink*>));
  // The lent link (link_) is brought to what the client knows.
  void BeginResync();
  // The ENABLE a newly logged-in lent link needs for the client's profile
  // (empty if none); marks the link as having it.
  std::string ApplyProfile();
  // Our commands on the link, tagged; `enable` (may be empty) first.
  // `notify` (may be empty): the client's NOTIFY SET, right after it.
  void SendResync(absl::string_view enable,
                  const std::vector<std::string>& commands,
                  absl::string_view notify = {});
  void OnResyncResponse(const imap::Response& r,
                        absl::string_view completed_tag);
  // The client's IDLE ends: its tagged OK, then relaying as before.
  void EndIdle();
  // The resync is done: the IDLE's answer, and relaying resumes.
  void FinishUnpark();

  // ---- relay_driver_notify.cc: parking a client that used NOTIFY
  // The store stops its NOTIFY on a link about to be pooled (parking).
  void QuietNotify();
  // A park did not happen: the client's NOTIFY is set again (and what
  // changed meanwhile reported: STATUS) before its IDLE goes on or ends.
  void RestoreNotify();
  void OnRestoreResponse(const imap::Response& r, absl::string_view raw);
  // Store events of other mailboxes queued STATUS: a pooled link asks them.
  void StartStatusFetch();
  void OnStatusLinkLent(absl::StatusOr<PooledLink*> lent);
  void OnStatusResponse(const imap::Response& r);
  // The unpark's NOTIFY SET goes first on the link (empty if none).
  std::string NotifySetCommand();
  // A response during the resync that belongs to the NOTIFY; true: handled.
  bool OnResyncNotifyResponse(const imap::Response& r, absl::string_view raw);
  void LeaveParked();
  // The user's events stop coming (AddParked undone).
  void StopListening();
  // The store must answer our own command within the store timeout.
  void ArmStoreTimer();
  void DisarmStoreTimer();
  // The client's next command waits (its IDLE is being ended for it).
  void HoldInput();
  void ReleaseInput();
  // Gives the link to the pool (reusable), or closes it.
  void ReleaseLink(bool reusable);
  std::string NextTag();
  void Bye(absl::string_view reason);

  DriverServices services_;
  RelayParkConfig park_config_;
  StoreLink* link_ = nullptr;   // null once closed or lost, or parked
  PooledLink* lent_ = nullptr;  // set when link_ is the pool's
  std::string user_;
  StoreCredentials credentials_;
  RelayClientState client_;
  std::string idle_tag_;       // the client's IDLE, until its tagged end
  std::string logout_tag_;     // a relayed LOGOUT: its end closes the device
  bool store_paused_ = false;  // not reading the store: the device lags
  IdleState idle_ = IdleState::kNone;
  // The client ended its IDLE while it was being parked.
  bool done_early_ = false;
  bool idle_continued_ = false;  // the store's "+" for the IDLE was relayed
  bool listening_ = false;       // registered with the registry (AddParked)
  // When this IDLE's park started waiting for the user's watch; -1: not yet.
  int64_t watch_wait_since_ms_ = -1;
  // The profile the link was opened or last borrowed under (pooled per
  // profile: a link going back under a stale one would mislead a borrower).
  std::string link_profile_ = "relay:";
  bool engine_holds_ = false;  // HoldInput()
  // The first line of the store response streaming now (for client_), and
  // whether it is still being read.
  std::string head_;
  bool head_open_ = true;
  bool passing_ = false;  // a store response is partly passed through
  // While collecting(): the whole response so far, and whether it overflowed.
  std::string collected_;
  bool collect_overflow_ = false;
  // The gateway's own command on the link (parking, unparking), and how many
  // of the resync's remain.
  std::string own_tag_;
  std::string enable_tag_;  // the unpark's ENABLE, while it runs
  size_t own_remaining_ = 0;
  uint64_t next_tag_ = 0;
  int list_rounds_ = 0;
  bool listed_ = false;            // the listing's data arrived
  bool moved_after_list_ = false;  // EXISTS/EXPUNGE after it
  UidView listing_;
  std::vector<StoreEvent> early_events_;
  std::optional<ParkedMailbox> parked_;
  // The parked client's NOTIFY for other mailboxes (set when it used one).
  std::optional<ParkedNotify> parked_notify_;
  std::string notify_tag_;     // our NOTIFY on the link, until answered
  bool notify_quiet_ = false;  // the link's NOTIFY was stopped for the park
  uint64_t park_timer_ = 0;
  uint64_t keepalive_timer_ = 0;
  uint64_t store_timer_ = 0;  // ArmStoreTimer
  int64_t unpark_started_ms_ = 0;
  // The XDELIVER running (null: none), its tag and its command's on the link
  // (empty: none runs there now).
  std::unique_ptr<XdeliverRun> xdeliver_;
  std::string xdeliver_tag_;
  std::string xdeliver_up_tag_;
  std::unique_ptr<SideCommands> side_;  // RunElsewhere's command
  // Borrow callbacks may outlive the driver.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_RELAY_DRIVER_H_
