// The P-IMAP session engine for one connected device: it takes the device's
// parsed commands, runs them against a store link UID-wise, and writes IMAP
// responses rendered from the device's own view to a DeviceOutput. It knows no
// socket, no TLS and no framing: the TCP binding (and later HTTPS) is a thin
// adapter that frames commands, carries bytes and applies backpressure.
//
// One store command runs at a time, so every store response can be attributed
// to the command (a `Job`) that produced it. Store responses are either passed
// through (renumbered where they carry MSNs), collected for the gateway's own
// use, or dropped.
#ifndef PIMAP_CORE_SESSION_DEVICE_DRIVER_H_
#define PIMAP_CORE_SESSION_DEVICE_DRIVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/command.h"
#include "core/session/command_state.h"
#include "core/session/hibernation.h"
#include "core/session/idle_machine.h"
#include "core/session/link_borrower.h"
#include "core/session/session_registry.h"
#include "core/session/store_link.h"
#include "core/session/store_link_pool.h"

namespace pimap::http {
class ShardCompressor;
}
namespace pimap::convert {
class Transcoder;
}

namespace pimap::session {

// What the driver needs from the binding that carries the device's bytes.
class DeviceOutput {
 public:
  virtual ~DeviceOutput() = default;
  // One or more whole responses of the gateway's own. The binding holds them
  // back while a passed-through store response is only partly written.
  virtual void WriteResponse(std::string bytes) = 0;
  // A burst of events pushed during IDLE (framed, if the device asked for
  // it, by the session driver on the way: event_frames.h).
  virtual void WriteEvents(std::string bytes) {
    WriteResponse(std::move(bytes));
  }
  // Part of a store response passed through as it streams. Returns false when
  // the device's output is above its high-water mark: the driver then stops
  // reading the store until OnOutputDrained().
  virtual bool WritePassThrough(absl::string_view bytes) = 0;
  // The passed-through response is complete.
  virtual void EndPassThrough() = 0;
  // While a command runs the binding reads no further command (IDLE excepted:
  // its DONE must get in). `resume` also processes input that is waiting; the
  // driver asks for it only when its own state is settled.
  virtual void SetCommandRunning(bool running, bool resume) = 0;
  // The login that Start() was given has been answered (ok: authenticated).
  virtual void LoginDone(bool ok) = 0;
  // A command the binding relayed verbatim (APPEND) completed with this tag.
  virtual void RelayedDone(absl::string_view tag) = 0;
  // The store accepted everything relayed so far (resume reading the device).
  virtual void RelayDrained() = 0;
  // COMPRESS=DEFLATE (RFC 4978): writes `ok` (the command's tagged OK)
  // uncompressed, then compresses both directions from the next byte on.
  // FailedPrecondition when compression is already active (the router
  // answers NO [COMPRESSIONACTIVE]); any other error: NO [CANNOT].
  // Whether StartCompression can work here (COMPRESS=DEFLATE is advertised).
  virtual bool OffersCompression() const { return true; }
  // Whether the device's bytes travel inside TLS (implicit or STARTTLS, or an
  // HTTPS request): XPROVISION hands key material only then. False unless
  // the binding knows.
  virtual bool Secure() const { return false; }
  // The binding's name for the operator (pimapctl who): "imap", "http".
  virtual absl::string_view Binding() const { return "imap"; }
  virtual absl::Status StartCompression(std::string ok) {
    return absl::UnimplementedError("compression is not offered here");
  }
  // The session cannot go on (taken over, store lost): goodbye and close.
  virtual void EndSession(absl::string_view reason) = 0;
  // LOGOUT completed: close the connection.
  virtual void Close() = 0;
};

// The per-shard services a driver uses.
struct DriverServices {
  SessionRegistry* registry = nullptr;
  ShardCounters* counters = nullptr;
  TimerWheel* timers = nullptr;
  // Null: the device keeps the link it logged in with for its whole
  // connection. Set: links are borrowed per command and given back between
  // commands (and during an IDLE the gateway answers from the journal).
  StoreLinkPool* pool = nullptr;
  int64_t borrow_timeout_ms = 15000;  // waiting for a pooled link
  // The shard's compressor (core/http/content_coding.h), shared by every
  // compressed response of the shard; null: the session compresses nothing.
  // (With the dictionary of pushed-event frames, if any: event_frames.h.)
  http::ShardCompressor* compressor = nullptr;
  // Output a device may leave unread before the binding disconnects it
  // (--max-output-bytes): bounds what an XZIP keeps and answers in one write.
  size_t max_output_bytes = 4 << 20;
  // (XDELIVER's submitter and settings are the registry's, not here: this
  // struct is in every driver, idle or not.)
  // XCONVERT's conversions (core/convert/transcoder.h); null: XCONVERT
  // answers NO.
  convert::Transcoder* transcoder = nullptr;
};

class DeviceDriver final : private LinkBorrower::Host, private DeviceLink {
 public:
  DeviceDriver(DriverServices services, DeviceOutput* output, std::string user,
               std::string device);
  // Rebuilt from hibernation (device_driver_hibernate.cc): in the gateway's
  // own IDLE of `state`, the session's events coming here again instead of
  // to `keeper`.
  DeviceDriver(DriverServices services, DeviceOutput* output, std::string user,
               const HibernatedIdle& state, DeviceLink* keeper);
  DeviceDriver(const DeviceDriver&) = delete;
  DeviceDriver& operator=(const DeviceDriver&) = delete;

  // Takes `link` (logged in as the user; null when the login was checked
  // without the store, and a link is borrowed from the pool), attaches the
  // device's session (resumed or new) and answers the login tagged `login_tag`
  // (then LoginDone()).
  // `password` is kept only inside the session registry, for a watch that logs
  // in as the user. `client`: where the device connects from (its log lines,
  // and the store's ID on the pooled links its commands open).
  void Start(StoreLink* link, std::string login_tag,
             const std::string& password, const ClientAddress& client = {});

  // A command line starts. Acknowledges what was written before it
  // (architecture.md §4). Returns true when the line is the end of IDLE: the
  // driver has taken it, the binding skips the rest of the line and waits.
  bool OnCommandLine();
  // Bytes arrived from the device: a command in them may acknowledge what was
  // written before now, not what is written later (pipelining).
  void OnInputArrived() {
    ackable_seq_ = delivered_seq_;
    if (session_ != nullptr) {
      session_->view_writes_ackable = session_->view_writes;
    }
  }
  // Commands the binding relays verbatim through RelayBytes (a large literal
  // streams through untouched); the driver executes every other command.
  static bool RelaysVerbatim(absl::string_view name) {
    return name == "APPEND";
  }
  // The first line of such a command as the store gets it: an APPEND to a
  // virtual folder names its backing folder (device_driver_xpsearch.cc).
  std::string RelayedFirstLine(absl::string_view line) const;
  // The P-IMAP extension commands (a regular session answers them NO).
  static bool IsExtensionCommand(absl::string_view name) {
    return name == "XFILTER" || name == "XSETPIMAPPREF" ||
           name == "XGETPIMAPPREF" || name == "XGETPIMAPPREFS" ||
           name == "XPROVISION" || name == "XDELIVER" || name == "XCONVERT" ||
           name == "XUIDCONVERT" || name == "XPSEARCH";
  }
  void Execute(const imap::Command& command);
  // The capability tokens a P-IMAP session adds to the list (event frames,
  // XDELIVER with a submitter).
  static std::string ExtraCapabilities(const DriverServices& services);
  // A command relayed verbatim starts; its bytes follow through RelayBytes.
  void BeginRelayed(absl::string_view device_tag);
  void RelayBytes(absl::string_view bytes);
  size_t RelayPending() const;

  // The device's output went below its high-water mark.
  void OnOutputDrained();
  const std::vector<std::string>& store_capabilities() const;
  const DriverServices& services() const { return services_; }
  // Whether per-command state is allocated (none at rest: an idle device is
  // small).
  bool holds_command_state() const { return cmd_ != nullptr; }
  // The device is gone: no call reaches the output any more; the session lives
  // on (journaling) and the store link closes.
  void Detach();
  // Whether the device idles in the gateway's own IDLE with nothing running,
  // waiting or held (hibernation.h).
  bool Hibernatable() const;
  // Hibernatable(): hands the session's events to `keeper` and its state to
  // the caller; the driver is left detached (Release() it).
  HibernatedIdle Hibernate(DeviceLink* keeper);
  // The session's events reach the engine through this.
  DeviceLink* device_link() { return this; }
  // Frees the driver now, or once the calls on the stack have unwound.
  void Release();

 private:
  ~DeviceDriver() override;

  // StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override;
  void OnStoreDrained() override;
  void OnStoreClosed(absl::Status reason) override;
  // LinkBorrower::Host (device_driver_links.cc)
  StoreCredentials LinkCredentials() const override;
  bool StorePasswordRejected() const override;
  void OnStoreLoginRejected(const std::string& password) override;
  void FromOutside(absl::FunctionRef<void()> call) override;
  void OnLinkBorrowed() override;
  void OnNoLink(const absl::Status& pool_error, absl::string_view why) override;
  // DeviceLink
  void OnEventsPending() override;
  void OnTakenOver(absl::string_view reason) override;
  void OnFolderEvent(const StoreEvent& event) override;
  bool Selecting(absl::string_view folder) const override;
  // device_driver_idle.cc: an IDLE relayed there leaves the store's IDLE, to
  // go on as the gateway's own (ReIdle).
  void OnFolderCovered(absl::string_view folder) override;
  std::string Binding() const override;
  bool HoldsStoreLink() const override { return link() != nullptr; }
  void Kick(absl::string_view reason) override;

  // What the running store command's responses mean (command_state.h).
  using Job = DeviceJob;

  // Keeps this alive while a call from outside (store, timer, registry) runs.
  class Busy {
   public:
    explicit Busy(DeviceDriver* d) : d_(d) { ++d_->busy_; }
    ~Busy() {
      if (--d_->busy_ != 0) return;
      if (d_->release_pending_) {
        delete d_;
      } else {
        d_->MaybeDropCommandState();
      }
    }

   private:
    DeviceDriver* d_;
  };

  SessionRegistry& registry() { return *services_.registry; }
  ShardCounters& counters() { return *services_.counters; }
  void Write(std::string bytes);
  void WriteBad(absl::string_view tag, absl::string_view message);
  void PassThrough(absl::string_view bytes);
  void Paused(bool running, bool resume);

  // device_driver.cc: login, resume, commands, job completion.
  void FinishLogin();
  // A resume can be answered from the journal alone (no store round trip).
  bool JournalSuffices() const;
  void SendJob(Job job, const std::string& device_tag, std::string command);
  void ExecuteInSession(const imap::Command& command);
  // XPROVISION (device_driver_provision.cc, provision.h).
  void Provision(const imap::Command& command);
  // XDELIVER (device_driver_xdeliver.cc): fetch the original (R/F), compose,
  // submit, then the SAVETO copy and the original's flag, each as a job.
  void Xdeliver(const imap::Command& command);
  // The address the user sends as (empty: none can be made).
  std::string SenderAddress() const;
  void OnXdeliverJobDone(bool ok, absl::string_view rest);
  // Carries out the run's next step (a job, the submission or the answer).
  void AdvanceXdeliver();
  void SubmitXdeliver();
  void OnJobDone(absl::string_view tagged_line);
  // XCONVERT (device_driver_convert.cc): `from` is where its number is in
  // the arguments (after UID's subcommand).
  void StartConvert(const imap::Command& command, size_t from, bool uid);
  void OnConvertFetched(bool ok, absl::string_view rest);
  void OnConverted(uint64_t id, absl::StatusOr<std::string> result);
  // XPSEARCH and what virtual folders change in the mailbox commands
  // (device_driver_xpsearch.cc): true when the command was answered.
  bool ExecuteVfolderCommand(const imap::Command& command);
  // COPY/MOVE's target as the store gets it (a virtual folder's backing).
  std::string CopyTarget(const imap::Arg& arg) const;
  // device_driver_login.cc: the jobs of a login (ENABLE, resume SELECT,
  // rebuild).
  void OnLoginJobDone(bool ok);
  // device_driver_push.cc: filter verdicts and new-format FETCH.
  void OnPushJobDone(bool ok);
  void FinishCommand(absl::string_view status_rest);
  // device_driver_status.cc
  bool StartFilteredStatus(const imap::Command& command);
  void OnStatusJobDone(bool ok, absl::string_view rest);
  void FinishFilteredStatus();
  void ApplyViewSearch();

  // device_driver_links.cc: the store link (links_, link_borrower.h), its own
  // or borrowed from the pool on demand, and what the device's jobs need of
  // it.
  StoreLink* link() const { return links_.link(); }
  // Whether the gateway learns every change of `folder` without a link of this
  // device (the user's watch covers INBOX; the store's pushes cover all).
  bool covered_folder(absl::string_view folder) const;
  // SendJob without a ready link: keeps the job, borrows, prepares, sends.
  void QueueJob(Job job, const std::string& device_tag, std::string command);
  void AcquireLink();
  // Sends the next step bringing a borrowed link to the session's state;
  // false when it is there and the queued job has been sent.
  bool PrepareLink();
  // What `job` needs of a borrowed link.
  LinkNeed NeedOf(Job job) const;
  // The folder `job` needs selected on the link (empty: none).
  std::string FolderFor(Job job) const;
  bool WantsReadOnly(Job job) const;
  void OnPrepDone(bool ok);
  // Gives the link back to the pool when nothing of the device needs it.
  void MaybeReturnLink();
  // The link is gone (or could not be had) while `job_` ran or waited.
  void OnLinkFailed(absl::string_view why);
  // Ends the running command with "NO [UNAVAILABLE]", keeping the session.
  void AbortCommand(absl::string_view why);

  // device_driver_responses.cc: what each store response means for the device.
  // What each response is (response_class.h: ClassifyResponse), carried out.
  void OnResponseStart(absl::string_view line);
  // A FETCH of the device's own command: renumbered from its view and passed
  // through (true), or not in the view (false: dropped).
  bool RenumberFetch(absl::string_view line, absl::string_view line_end);
  void OnResponseEnd(absl::string_view completed_tag);

  // device_driver_push.cc: journal rendering, push in IDLE, filter verdicts.
  // Renders up to `max_events` undelivered journal events of the selected
  // folder against the device's view (journal_render.h) and marks them
  // delivered. `replay`: a resume, where events written before a disconnect
  // come again.
  std::string RenderPending(bool allow_expunge, size_t max_events = SIZE_MAX,
                            bool replay = false);
  bool NeedsEval() const;
  // New mail under a search-key filter waits for the store's verdicts.
  bool NeedsVerdicts() const;
  // Flag changes of unknown result (StoreEvent::resolve) not yet fetched:
  // their UIDs in the device's view, ascending (empty: none).
  std::vector<uint32_t> FlagsToResolve() const;
  void StartFlagsFetch(const std::vector<uint32_t>& uids);
  void StartEval();
  void StartEvalSearch();
  void OnEvalDone();
  bool NewFormatWanted() const;
  void FetchNewThen();
  // The events held for new mail's FETCH and that FETCH, as one burst
  // (CommandState::held_events).
  void WriteHeldEvents();
  bool watched_folder() const;
  // News seen on the device's own store connection, for folders the user's
  // watch does not cover: journaled like the watch's events.
  void JournalOwn(EventKind kind, uint32_t uid, std::vector<std::string> flags);

  // ---- IDLE (device_driver_idle.cc): carries out what `idle_` (IdleMachine,
  // idle_machine.h: the states, their transitions and the diagram) decides.
  // `job_` says which store command runs (kIdle while the store's IDLE is the
  // running command or nothing of the store runs; a verdict job, kNewFetch or
  // a kAcquire/kLink* step meanwhile); the machine says where the IDLE is.
  //
  // The gateway's own IDLE with no store work of it: the link may go back,
  // the command state may go.
  bool LocalIdleAtRest() const;
  void StartLocalIdle(const std::string& tag);
  // The device's DONE (any line while in IDLE); false: not in IDLE.
  bool TakeIdleDone();
  // Leaves the IDLE for the store's verdicts (or the new-format FETCH).
  void InterruptIdle();
  // The verdicts are in: push what passes, then back into the IDLE (or its
  // answer, if the device said DONE meanwhile).
  void ResumeIdleAfterEval();
  void ReIdle();
  void FinishLocalIdle();
  // The link is lost while the gateway's own IDLE was interrupted: the device
  // stays in IDLE, told nothing. False: not that case.
  bool LocalIdleSurvivesLinkLoss();
  // `just_sent`: one went out now (KeepaliveDelayMs).
  void ArmKeepalive(bool just_sent = false);

  // What running a command needs (command_state.h). An idle device holds none
  // of it: allocated on first use, freed when the driver is at rest
  // (MaybeDropCommandState), so that thousands of idling devices cost only the
  // fields below.
  CommandState& cmd() {
    if (cmd_ == nullptr) cmd_ = std::make_unique<CommandState>();
    return *cmd_;
  }
  const CommandState& cmd() const {
    return cmd_ != nullptr ? *cmd_ : kNoCommand;
  }
  // Frees the command state when no command runs or waits (see CommandState).
  void MaybeDropCommandState();
  static const CommandState kNoCommand;
  std::unique_ptr<CommandState> cmd_;

  DriverServices services_;
  DeviceOutput* output_;  // null once detached
  std::string user_;
  std::string device_;
  ClientAddress client_;  // the device's connection (log lines)
  // The store link, its own or borrowed (link_borrower.h).
  // [[no_unique_address]]: logged_in_ goes into its tail padding.
  [[no_unique_address]] LinkBorrower links_;
  bool logged_in_ = false;  // the login has been answered
  // The device's tags of verbatim commands (APPEND) not yet completed: how a
  // completion is told from one of the gateway's own (a device may use any
  // tag, "~p7" too; ours skip the ones in here).
  std::vector<std::string> relayed_tags_;
  uint64_t delivered_seq_ = 0;  // the highest journal seq written to the device
  // Flag changes to resolve (StoreEvent::resolve) up to this journal seq have
  // been fetched from the store (their results journaled behind them).
  uint64_t flags_resolved_seq_ = 0;
  uint64_t ackable_seq_ = 0;  // what the device's input may acknowledge
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  DeviceSession* session_ = nullptr;  // null for a session that ended (LOGOUT)
  int busy_ = 0;
  bool release_pending_ = false;

  // Login and resume. The bools share busy_'s word and the uint32_t sits
  // next to job_: the 8 bytes of client_'s connection id (log lines) come
  // out of padding, not out of each idling device.
  bool resumed_ = false;
  bool resync_pending_ = false;  // resume found the journal insufficient
  bool rebuilt_ = false;
  std::string login_tag_;
  std::string logout_tag_;
  uint32_t resume_uidvalidity_ = 0;

  // The running store command.
  Job job_ = Job::kNone;
  // The device's tag of it; outside CommandState because an IDLE the gateway
  // answers itself keeps it while the driver is at rest.
  std::string job_device_tag_;
  uint64_t next_up_tag_ = 0;
  bool live_resync_ = false;     // the journal overflowed under a live device
  bool xfilter_resync_ = false;  // a view filter change rebuilds the view

  // IDLE: one state machine (idle_machine.h). [[no_unique_address]]: the
  // bools below go into its tail padding, so that the driver of an idling
  // device is no larger than with the machine's fields inline.
  [[no_unique_address]] IdleMachine idle_;

  // Filter verdicts and new-format FETCH.
  bool own_new_ = false;      // the store said EXISTS: look for new UIDs
  bool hold_events_ = false;  // rendering for new-format mail: held, not sent
  bool device_condstore_ = false;  // the device itself ENABLEd CONDSTORE
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_DEVICE_DRIVER_H_
