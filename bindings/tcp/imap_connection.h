// One device's IMAP connection to the gateway: an explicit state machine
// (not authenticated → logging in → authenticated/relaying → closing) over a
// Transport. Before login it answers locally (CAPABILITY, NOOP, STARTTLS, LOGIN,
// AUTHENTICATE PLAIN, LOGOUT); LOGIN moves the connection to the shard that owns the
// user, which logs in to the store; after that every command is relayed.
#ifndef PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_
#define PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_

#include <openssl/ssl.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/login_name.h"
#include "bindings/tcp/pimap_sessions.h"
#include "core/session/store_link.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::tcp {

class ImapServer;

// A login that is waiting for the store (and may travel to the owner shard).
struct PendingLogin {
  std::string tag;
  imap::LoginName name;
  std::string password;  // secret: never logged
};

class ImapConnection final : private engine::TransportHandler,
                             private imap::Framer::Visitor,
                             private session::StoreLinkClient,
                             private DeviceLink {
 public:
  // A connection accepted on this shard.
  static void Accept(ImapServer* server, int slot, bool implicit_tls);
  // A connection handed over from another shard, with its login to finish.
  static void Arrive(ImapServer* server, int slot, SSL* ssl, std::string input,
                     PendingLogin login);

  // Shutdown: "* BYE" and close.
  void Shutdown(absl::string_view reason);

 private:
  enum class State { kNotAuthenticated, kSaslResponse, kLoggingIn, kAuthenticated, kClosing };
  enum class CommandMode { kNone, kLocal, kRelay, kSkip };
  // Reasons to stop reading the device (bits).
  enum Block : unsigned {
    kBlockLogin = 1,     // waiting for the store login
    kBlockStore = 2,     // the store's send queue is full
    kBlockOrdered = 4,   // a local command waits for relayed ones to complete
    kBlockHandover = 8,  // moving to the owner shard
    kBlockJob = 16,      // a P-IMAP store command is running
  };

  // `initial_input` and `initial_block` are in place before the transport's
  // handler is set: a handed-over TLS session may decrypt buffered bytes at once.
  ImapConnection(ImapServer* server, engine::Socket* socket,
                 engine::Transport* transport, bool tls_active,
                 std::string initial_input = "", unsigned initial_block = 0);
  ~ImapConnection() override;

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;
  // imap::Framer::Visitor
  bool OnLine(absl::string_view line, const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view chunk) override;
  bool OnEnd() override;
  bool OnError(const imap::FrameError& error) override;
  // session::StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override;
  void OnStoreDrained() override;
  void OnStoreClosed(absl::Status reason) override;

  void Greet();
  // Sets the transport's handler (reads start unless blocked).
  void Start();
  void ProcessInput();
  void SetBlocked(unsigned bit, bool on);
  bool StartCommand(absl::string_view line, const imap::LiteralHeader* literal);
  bool RelayLine(absl::string_view line, const imap::LiteralHeader* literal);
  bool HandleSaslResponse(absl::string_view line);
  void ExecuteLocal(const imap::Command& command);
  void DoStartTls(const std::string& tag);
  void DoAuthenticate(const imap::Command& command);
  void StartLogin(PendingLogin login);
  void StartStoreLogin(PendingLogin login);
  void HandOver(int owner, PendingLogin login);
  void OnStoreLogin(const std::string& tag, const std::string& user,
                    const std::string& device, const std::string& password,
                    absl::StatusOr<session::StoreLink*> link);

  // Writes a response of our own; held back while a store response is only
  // partly written, so that bytes never interleave inside one response.
  void WriteLocal(std::string bytes);
  void WriteBad(absl::string_view tag, absl::string_view message);
  void CheckOutputBound();
  void TouchActivity();
  void ArmActivityTimer(int64_t delay_ms);
  void OnActivityTimer();
  void Close();
  void Destroy();

  // ---- P-IMAP sessions (imap_connection_pimap.cc) ----
  // One store command at a time runs for a P-IMAP connection; `Job` says what
  // its responses mean and what to do when it completes.
  enum class Job { kNone, kEnable, kResumeSelect, kViewSearch, kRebuild,
                   kRebuildNew, kSelect, kSelectSearch, kMessages, kSearch,
                   kExpunge, kIdle, kPlain, kEvalSync, kEvalView, kEvalNotify,
                   kNewFetch, kOwnNew, kStatus, kCloseExpunge };
  void StartPimap(const std::string& login_tag, const std::string& password);
  void ExecutePimap(const imap::Command& command);
  void SendJob(Job job, const std::string& device_tag, std::string command);
  void FinishLogin();
  void OnJobDone(absl::string_view tagged_line);
  void OnPimapResponseStart(absl::string_view line);
  void OnPimapResponseEnd(absl::string_view completed_tag);
  void FinishCommand(absl::string_view status_rest);
  // Renders up to `max_events` undelivered journal events of the selected
  // folder against the device's view and marks them delivered.
  // `replay`: a resume, where events written before a disconnect come again and
  // the device may not have seen their EXISTS although the view has the UID.
  std::string RenderPending(bool allow_expunge, size_t max_events = SIZE_MAX,
                            bool replay = false);
  void ApplyViewSearch();
  bool IsPimapCommand(absl::string_view name) const;
  static bool IsMaintenanceJob(Job job);
  void OnEventsPending() override;
  void OnTakenOver() override;
  void OnFolderEvent(const session::StoreEvent& event) override;

  // Keeps this alive while a call from outside (transport, store, timer) runs;
  // Destroy() inside it only marks, the last scope out frees.
  class Busy {
   public:
    explicit Busy(ImapConnection* c) : c_(c) { ++c_->busy_; }
    ~Busy() {
      if (--c_->busy_ == 0 && c_->destroy_pending_) delete c_;
    }
   private:
    ImapConnection* c_;
  };

  ImapServer* server_;
  engine::Socket* socket_;        // the socket under transport_ (same or wrapped)
  engine::Transport* transport_;  // what we read and write
  bool tls_active_;
  State state_ = State::kNotAuthenticated;
  imap::Framer framer_;
  imap::CommandAssembler assembler_;
  std::string pending_input_;
  unsigned blocked_ = 0;

  CommandMode mode_ = CommandMode::kNone;
  std::string command_tag_;
  bool relay_started_ = false;
  std::optional<imap::Command> deferred_command_;
  std::string deferred_bad_;
  std::string sasl_tag_;

  session::StoreLink* link_ = nullptr;
  // Tags relayed, not yet completed (a vector: a deque costs a 512-byte block
  // per connection even when it holds one tag).
  std::vector<std::string> outstanding_;
  std::string idle_tag_;
  std::string logout_tag_;
  bool mid_response_ = false;
  bool store_paused_ = false;
  std::string deferred_output_;
  std::string user_;    // set once logged in
  std::string device_;

  int64_t last_activity_ms_ = 0;
  TimerWheel::TimerId activity_timer_ = 0;
  int busy_ = 0;
  bool destroy_pending_ = false;
  bool starttls_reset_ = false;  // STARTTLS answered: drop what was read in clear
  bool in_feed_ = false;         // inside framer_.Feed (no nested ProcessInput)
  TimerWheel::TimerId handover_timer_ = 0;
  bool device_done_sent_ = false;  // the device's DONE went to the store
  bool live_resync_ = false;       // the journal overflowed under a live device
  bool job_sort_ = false;          // the search job is a SORT (order matters)
  uint64_t snapshot_seq_ = 0;      // journal position when the store took a snapshot
  std::shared_ptr<bool> alive_;

  // P-IMAP state: null for a regular (non-#device) session.
  DeviceSession* pimap_ = nullptr;
  bool pimap_resumed_ = false;
  std::string login_tag_;
  Job job_ = Job::kNone;
  std::string job_device_tag_;
  std::string job_up_tag_;
  uint64_t next_up_tag_ = 0;
  bool job_uid_mode_ = false;
  std::string job_folder_;
  bool job_examine_ = false;
  std::string held_tagged_;      // a tagged store line held until the job ends
  enum class RespAction { kForward, kDrop, kCollect };
  RespAction resp_action_ = RespAction::kForward;
  bool resp_first_ = true;
  std::string collected_;        // a response collected for processing
  std::vector<uint32_t> search_uids_;
  bool idling_ = false;          // the device is in IDLE (store said "+")
  uint32_t resume_uidvalidity_ = 0;
  bool resync_pending_ = false;  // resume found the journal insufficient
  bool xfilter_resync_ = false;  // a view filter change rebuilds the view
  uint64_t job_modseq_ = 0;      // HIGHESTMODSEQ reported while selecting
  std::string rebuild_output_;   // an exact rebuild's responses, for the resume
  bool rebuilt_ = false;
  TimerWheel::TimerId keepalive_timer_ = 0;
  void ArmKeepalive();
  // Filter verdicts for new messages, asked of the store before rendering them.
  bool NeedsEval() const;
  void StartEval();
  void StartEvalSearch();
  void OnEvalDone();
  std::vector<uint32_t> eval_uids_;
  std::string held_finish_;      // the tagged answer waiting for verdicts
  Job held_job_ = Job::kNone;
  bool finish_after_eval_ = false;
  bool idle_interrupted_ = false;  // we left the store's IDLE to ask for verdicts
  bool device_done_ = false;       // the device said DONE meanwhile
  bool reidle_ = false;            // back into the store's IDLE: swallow its "+"
  bool idle_maintenance_ = false;  // rendering between two store IDLEs
  bool fetch_then_finish_ = false; // a command's answer waits for new-mail FETCH
  std::vector<uint32_t> rendered_new_;  // new mail just announced (EXISTS)
  bool NewFormatWanted() const;
  void FetchNewThen();             // PIMAP_INBAND_NEW_FORMAT: the FETCH after EXISTS
  void ReIdle();
  // News seen on the device's own store connection, for folders the user's watch
  // does not cover (it watches INBOX): journaled like the watch's events.
  void JournalOwn(session::EventKind kind, uint32_t uid, std::vector<std::string> flags);
  bool watched_folder() const;
  bool own_new_ = false;          // the store said EXISTS: look for new UIDs
  bool job_may_expunge_ = false;
  bool device_condstore_ = false; // the device itself ENABLEd CONDSTORE  // the device's command itself expunges (EXPUNGE, MOVE)
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_
